"""The installed package's version (pyproject's ``version``), as ``/healthz`` and the start-up
log name it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """``0.1.0``; ``unknown`` when run from a source tree that was never installed."""
    try:
        return version("subsbot")
    except PackageNotFoundError:
        return "unknown"
