"""Delivering webhooks over HTTP: fan out, claim what is due, POST it signed, record the attempt.

One run keeps going until nothing is due or its time budget is spent, so a backlog drains
quickly once a receiver answers again. Different URLs and order keys go concurrently (a bounded
number at once); one order key goes one event at a time (see
:mod:`payments.delivery.webhooks.store`).
No redirect is followed; only a 2xx answer counts as delivered. Logs name a URL by scheme, host
and path only (its query string may carry a token); nothing stored contains the secret.

Fencing (several replicas): a run is given the replica's lease and a ``live(needed_s)`` check.
It claims only while the lease is held, checks ``live(timeout)`` before each POST (so the POST
ends before another replica may take over) and re-asserts each claim together with the lease
right before sending it; a claim that fails either is not sent (given back or left to lapse).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from payments.botstate.lease import Lease
from payments.clock import Clock
from payments.delivery.webhooks import monitor, signing, store
from payments.delivery.webhooks.events import iso_utc
from payments.storage.db import Database

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
CONCURRENCY = 8
BUDGET_S = 30.0
CLAIM_MS = 60_000  # a claim lasts this long; re-asserted (and so extended) right before its POST
SKIPPED = "skipped"  # not sent: the lease or the claim was lost, or the lease runs out too soon


@dataclass(frozen=True)
class WebhookSettings:
    """What :class:`~payments.wiring.Payments` builds its sender from: MERCHANT_WEBHOOK_URLS
    (none: it only serves the admins' view of what was left), MERCHANT_WEBHOOK_SECRET, and how
    long one POST and one run may take (the bot fits them in its lease)."""

    urls: tuple[str, ...] = ()
    secret: str = field(default="", repr=False)
    timeout_s: float = TIMEOUT_S
    budget_s: float = BUDGET_S


@dataclass
class RunReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0  # claimed, not sent: the lease was lost or ran short


class WebhookSender:
    """Delivers the merchant events to ``urls``, signed with ``secret``. Without URLs (none
    configured) it sends nothing, and serves the admins' view of what was left behind."""

    def __init__(
        self,
        db: Database,
        urls: Sequence[str],
        secret: str,
        clock: Clock,
        *,
        timeout_s: float = TIMEOUT_S,
        concurrency: int = CONCURRENCY,
        budget_s: float = BUDGET_S,
        batch: int = 50,
        lease_clock: Clock | None = None,
    ) -> None:
        """``lease_clock``: the clock the replica's lease is timed by (default ``clock``)."""
        if urls and not secret:
            raise ValueError("a webhook secret is required")
        self.db = db
        self.urls = tuple(urls)
        self._secret = secret
        self.clock = clock
        self.lease_clock = lease_clock or clock
        self.concurrency = concurrency
        self.budget_s = budget_s
        self.batch = batch
        self.timeout_s = timeout_s
        self.client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._lock = asyncio.Lock()

    async def start(self) -> list[store.GoneUrl]:
        """Before the jobs: make these the URLs in force (a URL seen for the first time gets
        the events from now on; one that is gone is forgotten) and return what is still pending
        for URLs that are gone (the admins are told once, through the outbox)."""
        return await store.sync_urls(self.db, self.urls, now_ms=self.clock.now_ms())

    async def run(
        self,
        *,
        fence: Lease | None = None,
        live: Callable[[float], bool] | None = None,
    ) -> RunReport:
        """Deliver what is due until nothing is or the budget is spent. ``fence``: the
        replica's lease, checked by every claim; ``live(needed_s)``: whether this replica stays
        primary that much longer, checked before each POST. A run while another is working
        returns at once (empty report)."""
        report = RunReport()
        if self._lock.locked() or not self.urls:
            return report
        alive = live or (lambda _needed_s: True)
        async with self._lock:
            deadline = time.monotonic() + self.budget_s
            gate = asyncio.Semaphore(self.concurrency)
            while time.monotonic() < deadline and alive(self.timeout_s):
                claimed = await store.claim_due(
                    self.db,
                    self.urls,
                    now_ms=self.clock.now_ms(),
                    limit=self.batch,
                    lease_ms=CLAIM_MS,
                    lease=fence,
                    lease_now_ms=self.lease_clock.now_ms(),
                )
                if not claimed:
                    break
                outcomes = await asyncio.gather(
                    *(self._send(c, gate, fence, alive) for c in claimed)
                )
                report.delivered += outcomes.count(store.DELIVERED)
                report.retried += outcomes.count(store.PENDING)
                report.failed += outcomes.count(store.FAILED)
                report.skipped += outcomes.count(SKIPPED)
                if SKIPPED in outcomes:
                    break
        return report

    async def _send(
        self,
        claimed: store.Claimed,
        gate: asyncio.Semaphore,
        fence: Lease | None,
        live: Callable[[float], bool],
    ) -> str:
        async with gate:
            if not live(self.timeout_s):  # the POST could outlast the lease: leave it
                await store.release(self.db, [claimed])
                return SKIPPED
            if not await store.reassert(
                self.db,
                claimed,
                now_ms=self.clock.now_ms(),
                lease_ms=CLAIM_MS,
                lease=fence,
                lease_now_ms=self.lease_clock.now_ms(),
            ):
                log.info(
                    "webhook delivery #%d not sent: its claim or the lease was lost", claimed.id
                )
                return SKIPPED
            timestamp = self.clock.now_ms() // 1000
            body = signing.build_body(
                public_id=claimed.public_id,
                type=claimed.type,
                created_at=iso_utc(claimed.created_at) or "",
                timestamp=timestamp,
                data=claimed.data,
            )
            headers = signing.headers(
                self._secret,
                body,
                event_type=claimed.type,
                delivery_id=claimed.id,
                timestamp=timestamp,
            )
            started = time.monotonic()
            status_code: int | None = None
            error: str | None = None
            try:
                response = await self.client.post(claimed.url, content=body, headers=headers)
                status_code = response.status_code
                if not 200 <= status_code < 300:
                    error = f"HTTP {status_code}"
            except httpx.HTTPError as exc:
                error = _describe(exc, claimed.url)
            duration_ms = int((time.monotonic() - started) * 1000)
        outcome = await store.record_attempt(
            self.db,
            claimed,
            now_ms=self.clock.now_ms(),
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
        if outcome != store.DELIVERED:
            log.warning(
                "webhook %s %s to %s: %s (%s)",
                claimed.type,
                claimed.public_id,
                store.safe_url(claimed.url),
                error,
                "gave up" if outcome == store.FAILED else "will retry",
            )
        return outcome

    async def overview(self, *, limit: int = 5) -> list[monitor.UrlOverview]:
        return await monitor.overview(self.db, self.urls, limit=limit)

    async def redeliver(self, delivery_id: int | None = None) -> int:
        """One delivery again (any status), or with None every failed one; how many."""
        return await monitor.redeliver(
            self.db, self.urls, now_ms=self.clock.now_ms(), delivery_id=delivery_id
        )

    async def gone(self) -> list[store.GoneUrl]:
        """What is pending to URLs no longer configured (/webhooks lists it)."""
        return await monitor.gone(self.db, self.urls)

    async def move(self, old_id: str, new_id: str) -> tuple[int, int]:
        """``/webhooks move``: see :func:`monitor.move`."""
        return await monitor.move(self.db, self.urls, old_id, new_id, now_ms=self.clock.now_ms())

    async def drop(self, old_id: str) -> int:
        """``/webhooks drop``: see :func:`monitor.drop`."""
        return await monitor.drop(self.db, self.urls, old_id)

    async def close(self) -> None:
        await self.client.aclose()


def _describe(exc: httpx.HTTPError, url: str) -> str:
    """``ConnectError: ...`` without the URL's query string (it may carry a token)."""
    text = str(exc) or "no answer"
    if url in text:
        text = text.replace(url, store.safe_url(url))
    return f"{type(exc).__name__}: {text}"
