"""Delivering webhooks over HTTP: fan out, claim what is due, POST it signed, record the attempt.

One run keeps going until nothing is due or its time budget is spent, so a backlog drains
quickly once a receiver answers again. Different URLs and order keys go concurrently (a bounded
number at once); one order key goes one event at a time (see :mod:`payments.webhooks.store`).
No redirect is followed; only a 2xx answer counts as delivered. Logs name a URL by scheme, host
and path only (its query string may carry a token); nothing stored contains the secret.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from payments.clock import Clock
from payments.storage.db import Database
from payments.webhooks import monitor, signing, store
from payments.webhooks.events import iso_utc

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
CONCURRENCY = 8
BUDGET_S = 30.0


@dataclass
class RunReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class WebhookSender:
    """Delivers the merchant events to ``urls``, signed with ``secret``."""

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
    ) -> None:
        if not secret:
            raise ValueError("a webhook secret is required")
        self.db = db
        self.urls = tuple(urls)
        self._secret = secret
        self.clock = clock
        self.concurrency = concurrency
        self.budget_s = budget_s
        self.batch = batch
        self.client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Fan out before the first run: a URL seen for the first time starts here."""
        await store.fan_out(self.db, self.urls, now_ms=self.clock.now_ms())

    async def run(self) -> RunReport:
        """Fan out, then deliver what is due until nothing is or the budget is spent. A run
        while another is working returns at once (empty report)."""
        report = RunReport()
        if self._lock.locked() or not self.urls:
            return report
        async with self._lock:
            deadline = time.monotonic() + self.budget_s
            await store.fan_out(self.db, self.urls, now_ms=self.clock.now_ms())
            gate = asyncio.Semaphore(self.concurrency)
            while time.monotonic() < deadline:
                claimed = await store.claim_due(
                    self.db, self.urls, now_ms=self.clock.now_ms(), limit=self.batch
                )
                if not claimed:
                    break
                outcomes = await asyncio.gather(*(self._send(c, gate) for c in claimed))
                report.delivered += outcomes.count(store.DELIVERED)
                report.retried += outcomes.count(store.PENDING)
                report.failed += outcomes.count(store.FAILED)
        return report

    async def _send(self, claimed: store.Claimed, gate: asyncio.Semaphore) -> str:
        async with gate:
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

    async def close(self) -> None:
        await self.client.aclose()


def _describe(exc: httpx.HTTPError, url: str) -> str:
    """``ConnectError: ...`` without the URL's query string (it may carry a token)."""
    text = str(exc) or "no answer"
    if url in text:
        text = text.replace(url, store.safe_url(url))
    return f"{type(exc).__name__}: {text}"
