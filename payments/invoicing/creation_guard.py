"""Refusing invoice creations cheaply: in memory, before any database work.

A refused creation (no free amount, too many held amounts) used to cost a write transaction that
was rolled back, did not count towards the customer's hourly limit and started another capacity
check; a burst of them slowed every other customer down. This guard remembers, per process:

* each customer's refusals in the last hour: once they reach the hourly invoice limit the
  customer is refused at once (their creations are counted by the database, as before);
* each (coin, base amount) range found full, for a minute (an admin's /block may free amounts
  sooner than their holds end): everyone asking for it meanwhile hears "busy", with the same
  honest estimate of when an amount is free again, without a transaction.

Creations of one range take turns in this process (:meth:`turn`): a burst for a full range then
costs one refused transaction, not one each, and does not queue everyone else's purchases
behind it (SQLite has one writer). It is an optimisation with limits, never the rule: the
database decides every creation it lets through. Memory is bounded (old entries are dropped).
"""

from __future__ import annotations

import asyncio
from collections import deque

from payments.clock import HOUR_MS, MINUTE_MS
from payments.errors import InvoiceRateLimited, NoFreeAmount

MAX_CUSTOMERS = 10_000  # refusal histories kept; the oldest are dropped beyond this
MAX_RANGES = 1_000
RANGE_MEMORY_MS = MINUTE_MS  # a full range is believed full for at most this long


class CreationGuard:
    def __init__(self, *, refusals_per_hour: int) -> None:
        self.refusals_per_hour = refusals_per_hour
        self._refused: dict[int, deque[int]] = {}
        # (currency, base units) -> (believed full until, first amount free again), in ms
        self._full: dict[tuple[str, int], tuple[int, int | None]] = {}
        self._turns: dict[tuple[str, int], asyncio.Lock] = {}

    def turn(self, currency: str, base_units: int) -> asyncio.Lock:
        """The lock creations of this (coin, base amount) range take turns on."""
        key = (currency, base_units)
        lock = self._turns.get(key)
        if lock is None:
            if len(self._turns) >= MAX_RANGES:  # drop the idle ones
                for idle in [k for k, v in self._turns.items() if not v.locked()]:
                    del self._turns[idle]
            lock = self._turns[key] = asyncio.Lock()
        return lock

    def check_customer(self, customer_id: int, now_ms: int) -> None:
        """Raise InvoiceRateLimited when the customer was refused too often in the last hour."""
        times = self._refused.get(customer_id)
        if times is None:
            return
        while times and times[0] <= now_ms - HOUR_MS:
            times.popleft()
        if len(times) >= self.refusals_per_hour:
            raise InvoiceRateLimited(
                "too many refused invoices in the last hour: try again later",
                retry_after_ms=times[0] + HOUR_MS - now_ms,
            )

    def refused(self, customer_id: int, now_ms: int) -> None:
        times = self._refused.pop(customer_id, None) or deque(maxlen=self.refusals_per_hour)
        times.append(now_ms)
        self._refused[customer_id] = times  # most recently refused last
        while len(self._refused) > MAX_CUSTOMERS:
            self._refused.pop(next(iter(self._refused)))

    def check_range(self, currency: str, base_units: int, now_ms: int) -> None:
        """Raise NoFreeAmount when this range was found full moments ago."""
        known = self._full.get((currency, base_units))
        if known is None:
            return
        until, free_at = known
        if until <= now_ms:
            del self._full[(currency, base_units)]
            return
        retry = None if free_at is None else max(1, free_at - now_ms)
        raise NoFreeAmount("busy, try again in a few minutes", retry_after_ms=retry)

    def forget_full(self) -> None:
        """Amounts were freed by hand (/block): look again."""
        self._full.clear()

    def full(self, currency: str, base_units: int, now_ms: int, retry_after_ms: int | None) -> None:
        free_at = None if retry_after_ms is None else now_ms + retry_after_ms
        until = now_ms + min(retry_after_ms or RANGE_MEMORY_MS, RANGE_MEMORY_MS)
        self._full.pop((currency, base_units), None)
        self._full[(currency, base_units)] = (until, free_at)
        while len(self._full) > MAX_RANGES:
            self._full.pop(next(iter(self._full)))
