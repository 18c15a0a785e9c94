"""``python -m bot demo`` (filled in by the CLI work)."""

from __future__ import annotations


def run_demo(*, image: str) -> int:
    raise NotImplementedError
