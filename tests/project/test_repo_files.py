"""Files a reader of the repository relies on: the licence pyproject declares, pointers that
lead somewhere, and demo output that git does not pick up."""

from __future__ import annotations

import re
import subprocess
import tomllib

from tests.paths import REPO


def test_the_licence_is_the_mit_licence_pyproject_declares() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert declared["project"]["license"] == {"text": "MIT"}
    licence = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} the subsbot authors$", licence, re.M)
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in licence


def test_constraints_points_to_a_readme_section_that_says_how_to_refresh_it() -> None:
    head = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()[:2]
    pointer = re.search(r'Refresh: README\.md, section "([^"]+)"', " ".join(head))
    assert pointer, head
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", readme, flags=re.M)
    section = next((s for s in sections if s.startswith(pointer[1] + "\n")), None)
    assert section is not None, f"README.md has no section {pointer[1]!r}"
    assert "pip freeze --exclude-editable` into `constraints.txt`" in section


def test_the_demo_invoice_image_is_ignored_by_git() -> None:
    result = subprocess.run(
        ["git", "check-ignore", "-q", "subsbot-demo-invoice.png"],
        cwd=REPO,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
