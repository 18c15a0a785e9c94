"""``python -m bot check`` (filled in by the CLI work)."""

from __future__ import annotations

from bot.config import Settings


async def run_check(settings: Settings) -> int:
    raise NotImplementedError
