"""The README is the front page: its test command is exactly what CI runs, it stays short and
points at the docs, and the docs it points at hold what moved out of it (every setting)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.paths import REPO

ROOT = REPO
COMMAND = "pip install -e '.[test]' -c constraints.txt && pytest"
FAST = 'python -m pytest -m "not e2e and not soak"'


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command() -> None:
    readme = text(ROOT / "README.md")
    ci = text(ROOT / ".ci" / "run")
    assert f"```sh\n{COMMAND}\n```" in readme
    assert [line for line in ci.splitlines() if line.strip() == COMMAND] == [COMMAND]


def test_the_readme_is_a_front_page_that_links_every_docs_page() -> None:
    readme = text(ROOT / "README.md")
    assert len(readme.splitlines()) < 200
    assert f"```sh\n{FAST}\n```" in readme
    assert readme.index("python -m bot demo") < readme.index("python -m bot run")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f"(docs/{p}" not in readme] == []


def test_every_setting_is_documented_in_the_configuration_page_and_env_example() -> None:
    from bot.config import Settings

    rows = re.findall(r"^\| ([^|]+) \|", text(ROOT / "docs" / "configuration.md"), re.M)
    documented = {name.strip() for row in rows for name in row.split(",")}
    example = text(ROOT / ".env.example")
    names = [name.upper() for name in Settings.model_fields]
    assert len(names) > 20
    assert [n for n in names if n not in documented] == []
    assert [n for n in names if f"{n}=" not in example] == []


def anchors(markdown: str) -> set[str]:
    """GitHub's ids for the headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.DOTALL), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_in_the_readme_and_docs_leads_somewhere() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", text(page)):
            if re.match(r"[a-z]+:", target):
                continue  # an absolute URL: not followed (no test touches the internet)
            name, _, anchor = target.partition("#")
            linked = (page.parent / name).resolve() if name else page
            missing = not linked.exists()
            if missing or (anchor and anchor not in anchors(text(linked))):
                broken.append(f"{page.name}: {target}")
    assert broken == []
