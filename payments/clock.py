"""Time as integer milliseconds since the epoch (UTC), injectable for tests."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """The host's wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start_ms: int = 1_790_000_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, ms: int) -> None:
        self._now = ms

    def advance(self, ms: int) -> None:
        self._now += ms


class ExchangeClock:
    """The exchange's clock: a local clock plus the measured offset to OKX's server time.

    Every comparison with a deposit's or ticker's ``ts`` uses this clock, never the host's.
    """

    def __init__(self, local: Clock) -> None:
        self.local = local
        self.offset_ms = 0

    def now_ms(self) -> int:
        return self.local.now_ms() + self.offset_ms

    async def sync(self, server_time: Callable[[], Awaitable[int]]) -> int:
        """Ask the exchange for its time once and record the offset; returns it (ms)."""
        sent = self.local.now_ms()
        server = await server_time()
        return self.observe(server, sent, self.local.now_ms())

    def observe(self, server_ms: int, sent_local_ms: int, received_local_ms: int) -> int:
        """Record OKX's time from one request; returns the new offset (ms)."""
        midpoint = (sent_local_ms + received_local_ms) // 2
        self.offset_ms = server_ms - midpoint
        return self.offset_ms
