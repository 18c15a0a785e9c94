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
        self.synced = False  # measured at least once (until then it is the host's clock)

    def now_ms(self) -> int:
        return self.local.now_ms() + self.offset_ms

    async def sync(self, server_time: Callable[[], Awaitable[int]]) -> int:
        """Ask the exchange for its time once and record the offset; returns it (ms)."""
        sent = self.local.now_ms()
        server = await server_time()
        return self.observe(server, sent, self.local.now_ms())

    def observe(self, server_ms: int, sent_local_ms: int, received_local_ms: int) -> int:
        """Record OKX's time from one request; returns the new offset (ms).

        A sample whose round trip took longer than MAX_SAMPLE_RTT_MS says little (the answer
        could come from anywhere in it: a stalled request, or the host's clock stepping while
        it was in flight) and leaves the offset as it was."""
        self.offset_ms = offset_from(server_ms, sent_local_ms, received_local_ms, self.offset_ms)
        self.synced = True
        return self.offset_ms


MAX_SAMPLE_RTT_MS = 10_000


def offset_from(server_ms: int, sent_local_ms: int, received_local_ms: int, previous: int) -> int:
    """Server time minus the local midpoint of the request, or ``previous`` for a sample whose
    round trip is too long (or negative: the local clock stepped back) to trust."""
    if not 0 <= received_local_ms - sent_local_ms <= MAX_SAMPLE_RTT_MS:
        return previous
    return server_ms - (sent_local_ms + received_local_ms) // 2
