"""The README is the front page: its test command is exactly what CI runs, it stays short and
points at the docs, and the docs it points at hold what moved out of it (every setting)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.paths import REPO

ROOT = REPO
VENV = "python3 -m venv .venv && . .venv/bin/activate && "
COMMAND = f"{VENV}pip install -e '.[test]' -c constraints.txt && pytest"
DEMO = f"{VENV}pip install -e . && python -m bot demo"
RUN = f"{VENV}pip install -e . && python -m bot run"
FAST = '. .venv/bin/activate && python -m pytest -m "not e2e and not soak"'


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command() -> None:
    readme = text(ROOT / "README.md")
    ci = text(ROOT / ".ci" / "run")
    assert f"```sh\n{COMMAND}\n```" in readme
    assert [line for line in ci.splitlines() if line.strip() == COMMAND] == [COMMAND]


def test_ci_runs_the_readme_demo_and_run_commands_verbatim() -> None:
    """The quick start's two commands, exactly as written, on CI's fresh clone: the demo runs
    to the end, and ``run`` without settings stops naming every missing one."""
    readme = text(ROOT / "README.md")
    ci = text(ROOT / ".ci" / "run")
    for command in (DEMO, RUN):
        assert f"```sh\n{command}\n```" in readme
    assert [line for line in ci.splitlines() if line.strip() == DEMO] == [DEMO]
    assert f'bash -c "{RUN}"' in ci


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


def _commands(markdown: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", markdown, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_readme_commands_make_and_use_a_venv() -> None:
    """Stock Debian 12 / Ubuntu 24.04: a bare ``pip install`` stops with
    externally-managed-environment and there is no ``python``: every command that installs
    makes the venv first, and every ``python`` runs inside it."""
    readme = text(ROOT / "README.md")
    commands = [c for c in _commands(readme) if re.search(r"\b(pip|python|pytest)\b", c)]
    assert len(commands) >= 5
    for command in commands:
        if "pip install" in command:
            assert command.startswith(VENV), command
        else:
            assert command.startswith(". .venv/bin/activate && "), command
    for name in ("demo", "run"):
        assert f"```sh\n{VENV}pip install -e . && python -m bot {name}\n```" in readme
    assert "about 35 minutes on 2 cores" in readme
    assert readme.index("python -m bot run") < readme.index("about 35 minutes")


_INLINE = re.compile(r"^#?\s?[A-Z][A-Z0-9_]*=\S*[ \t]+#", re.M)


def test_settings_samples_keep_comments_on_their_own_lines() -> None:
    """``docker run --env-file`` keeps ``  # ...`` after a value as part of the value."""
    pages = [ROOT / "README.md", ROOT / ".env.example", *sorted((ROOT / "docs").glob("*.md"))]
    found = [f"{p.name}: {m.group()}" for p in pages for m in _INLINE.finditer(text(p))]
    assert found == []
    assert _INLINE.search("ADMIN_IDS=1   # your id") and _INLINE.search("#PORT=  # a port")
