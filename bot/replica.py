"""Which replica runs the singleton jobs: the one holding the "jobs" lease.

The deposit poll (and the "check now" polls of :class:`bot.services.PollGate`), the outbox
sender, subscription expiry and reminders, chat access and the merchant webhooks run only while
this process holds a live lease; on a standby they return at once, and a standby passes a
"check now" tap on to the primary (:class:`StandbyNudge`). Chat rights and the directory
refresh run on every replica (they fill this process's memory).

Timing, with P = PAYMENT_POLL_SECONDS: every replica tries to take or renew the lease every
R = P / 4 seconds (at least :data:`MIN_RENEW_S`); a lease lasts TTL = 1.5 P (at least 6 R).
A holder that dies just after renewing leaves a lease that lapses TTL later; a standby's next
attempt comes at most R after that, so it takes over within TTL + R = 1.75 P of the dead
holder's last renewal (under two poll intervals) and polls at once. A live holder would have to
miss five renewals in a row to lose it. A graceful stop releases the lease: the other replica
takes over at its next attempt (within R). With the floors (P under 1 s, tests only) the
take-over bound is TTL + R = 7 R instead.

The holder counts itself primary until R before its row lapses, timed by its own monotonic
clock from the start of the renewal that succeeded; with the hosts' clocks in step it stops
starting singleton runs before anyone else may take over. That alone does not stop a run already
going, nor a process paused in the middle of one (it notices nothing when it wakes up), so a run
whose repeats would be seen outside (a message sent twice) is fenced by the lease
(:mod:`payments.botstate.lease`).

The outbox sender (:mod:`bot.sender`) starts a run only when it stays primary for the run's
time budget plus one call (together at most R), claims its messages in a transaction that checks
the lease, and right before each Bot API call checks :meth:`Replica.live` and re-asserts the
message's claim together with the lease in one compare-and-set
(:func:`payments.delivery.outbox.reassert`);
a message whose claim or lease was lost is skipped and given back. Two senders therefore never
send the same message, except the one call a process was inside when it was paused past its
lease: once that message's claim lapses the next holder sends it again, and the customer may see
it twice. (An admin alert goes to every admin; the admins it reached are recorded with it, so
the next holder completes a half-sent alert rather than repeating it.)

The deposit poll is not fenced (it would put the lease row in every poll transaction) and does
not need to be: deposits are stored once by OKX's id (INSERT ... ON CONFLICT DO NOTHING), every
invoice transition is a compare-and-set that rolls back and decides again from fresh rows when
another writer got there first, an invoice credits at most one subscription period (unique),
and messages and merchant events are written once per dedupe key. An overlap costs an extra OKX
request.

SQLite means one process, which always takes the lease at start-up (its own lapsed lease too).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from payments.botstate import POLL, Lease, LeaseStore, Signals
from payments.clock import Clock

log = logging.getLogger(__name__)

MIN_RENEW_S = 0.25
HOLDER_MAX = 80  # leases.holder is String(80)


@dataclass(frozen=True)
class LeaseTimes:
    renew_s: float  # how often every replica tries to take or renew the lease
    ttl_s: float  # how long a taken or renewed lease lasts

    @classmethod
    def for_poll(cls, poll_seconds: float) -> LeaseTimes:
        renew = max(poll_seconds / 4, MIN_RENEW_S)
        return cls(renew_s=renew, ttl_s=max(1.5 * poll_seconds, 6 * renew))

    @property
    def takeover_s(self) -> float:
        """The longest a dead holder's lease waits for a new holder after its last renewal."""
        return self.ttl_s + self.renew_s


def holder_id() -> str:
    """Unique per process and per application: host, pid and a random suffix."""
    suffix = f":{os.getpid()}:{secrets.token_hex(4)}"
    return socket.gethostname()[: HOLDER_MAX - len(suffix)] + suffix


class Replica:
    """This process's side of the lease: take or renew it (:meth:`renew`, every R seconds),
    tell whether this process may run the singleton jobs (:attr:`primary`), give it up at a
    graceful stop (:meth:`release`)."""

    def __init__(
        self,
        store: LeaseStore,
        clock: Clock,
        times: LeaseTimes,
        *,
        holder: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.name = store.name
        self.clock = clock  # the lease row's times (the host's clock; a ManualClock in tests)
        self.times = times
        self.holder = holder or holder_id()
        self._monotonic = monotonic
        self.lease: Lease | None = None  # as of the last renewal that succeeded
        self._valid_until = -math.inf  # monotonic: primary until then
        self._failing = False

    @property
    def primary(self) -> bool:
        """Whether this process holds a live lease (may run the singleton jobs now)."""
        return self.lease is not None and self._monotonic() < self._valid_until

    def live(self, needed_s: float = 0.0) -> bool:
        """Primary for at least ``needed_s`` more seconds: checked by a singleton run before
        each outside call, with ``needed_s`` that call's longest time, so the call ends before
        anyone else may take over (a paused process fails the check when it wakes up)."""
        return self.lease is not None and self._monotonic() + needed_s < self._valid_until

    @property
    def fence(self) -> Lease | None:
        """The lease to fence this run's writes with (None on a standby: nothing to run)."""
        return self.lease if self.primary else None

    @property
    def role(self) -> str:
        return "primary" if self.primary else "standby"

    async def renew(self) -> bool:
        """Take the lease or renew it; True when this call made a standby primary. A database
        error keeps the state as it is (a held lease then lapses by itself) and is logged once
        until a renewal works again."""
        was_primary, before = self.primary, self.lease
        started = self._monotonic()
        ttl_ms = max(1, int(self.times.ttl_s * 1000))
        try:
            taken = await self.store.acquire(
                holder=self.holder, now_ms=self.clock.now_ms(), ttl_ms=ttl_ms
            )
        except Exception as exc:
            if not self._failing:
                log.warning("could not renew the %r lease: %s", self.name, exc)
            self._failing = True
            return False
        self._failing = False
        if taken is None:
            if before is not None:
                log.info(
                    "lost the %r lease (token %d) to another replica: this replica (%s) is now"
                    " a standby",
                    self.name,
                    before.token,
                    self.holder,
                )
            self.lease, self._valid_until = None, -math.inf
            return False
        self.lease = taken
        self._valid_until = started + self.times.ttl_s - self.times.renew_s
        if not was_primary or before is None or before.token != taken.token:
            log.info(
                "this replica (%s) is now primary: it holds the %r lease with token %d",
                self.holder,
                self.name,
                taken.token,
            )
        return not was_primary

    async def release(self) -> None:
        """Give the lease up (graceful stop): another replica takes over at its next attempt."""
        held, self.lease, self._valid_until = self.lease, None, -math.inf
        if held is None:
            return
        try:
            await self.store.release(held)
        except Exception as exc:  # the database is gone: the lease lapses by itself
            log.warning("could not release the %r lease: %s", self.name, exc)
            return
        log.info("released the %r lease (token %d)", self.name, held.token)


class StandbyNudge:
    """A "check now" tap on a standby reaches the primary (a tap asks for at
    most one debounced poll, whichever replica Telegram delivered it to). The standby raises the
    "poll" signal in the database, at most once per ``min_gap_s``; the primary looks every few
    seconds (the "poll-requests" job) and asks its own PollGate, which debounces as for its
    own taps."""

    def __init__(
        self,
        signals: Signals,
        clock: Clock,
        *,
        min_gap_s: float = 15.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signals = signals
        self.clock = clock
        self.min_gap_s = min_gap_s
        self._monotonic = monotonic
        self._last_ask = -math.inf
        self._seen: int | None = None  # the count the primary last acted on

    async def ask(self) -> bool:
        """Standby side: raise the signal unless this replica did within ``min_gap_s``."""
        now = self._monotonic()
        if now - self._last_ask < self.min_gap_s:
            return False
        self._last_ask = now
        await self.signals.raise_signal(POLL, self.clock.now_ms())
        return True

    async def asked(self) -> bool:
        """Primary side: was the signal raised since this replica last looked? (At the first
        look, if it was ever raised: one extra poll request, which the gate debounces.)"""
        raised = await self.signals.raised(POLL)
        seen, self._seen = self._seen or 0, raised
        return raised > seen
