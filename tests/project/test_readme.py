"""The README's test command is exactly what CI runs."""

from __future__ import annotations

from tests.paths import REPO

ROOT = REPO
COMMAND = "pip install -e '.[test]' -c constraints.txt && pytest"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"```sh\n{COMMAND}\n```" in readme
    assert [line for line in ci.splitlines() if line.strip() == COMMAND] == [COMMAND]


def test_every_setting_is_documented_in_the_readme_and_env_example() -> None:
    from bot.config import Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = [name.upper() for name in Settings.model_fields]
    assert len(names) > 20
    assert [n for n in names if n not in readme] == []
    assert [n for n in names if f"{n}=" not in example] == []
