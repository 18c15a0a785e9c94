"""The README's test command is exactly what CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "pip install -e '.[test]' && pytest"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"```sh\n{COMMAND}\n```" in readme
    assert [line for line in ci.splitlines() if line.strip() == COMMAND] == [COMMAND]
