"""Where the repository is, for tests at any depth of the tests folder."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
