"""One payment cycle, as the bot's minute job runs it: poll OKX, then expire what ran out.

It never raises for OKX trouble. A rate limit, an outage or a time-out skips this poll (nothing
was written) and the next one catches up; admins are told once per outage when it lasts, and
once more when OKX answers again. An authentication failure is told at once (it will not fix
itself). The outage state lives in the database, so a restart or another replica does not
repeat the alert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete

from payments.clock import MINUTE_MS
from payments.delivery import messages as msg
from payments.delivery.outbox import enqueue
from payments.deposits.poll import PollReport
from payments.errors import ExchangeAuthError, ExchangeError, UnsafeApiKey
from payments.ops.health import FAILING_KIND, FAILING_SINCE
from payments.storage.kv import get_int, get_value, set_value
from payments.storage.schema import kv

if TYPE_CHECKING:  # wiring builds on this package: imported for the annotations only
    from payments.wiring import Payments

log = logging.getLogger(__name__)

ALERTED = "okx.failing_alerted"  # the outage start that admins have been told about
ALERTED_KIND = "okx.failing_alerted_kind"  # what they were told it was


@dataclass(frozen=True)
class CycleReport:
    poll: PollReport | None  # None: the poll was skipped
    error: str | None  # what went wrong with OKX, in words safe to show an admin
    expired: int


class PaymentCycle:
    def __init__(self, payments: Payments, *, alert_after_ms: int = 5 * MINUTE_MS) -> None:
        self.payments = payments
        self.alert_after_ms = alert_after_ms

    async def run(self) -> CycleReport:
        poll: PollReport | None = None
        error: str | None = None
        if not self.payments.crypto:  # Telegram Stars only: no OKX to poll, nothing to expire
            return CycleReport(poll=None, error=None, expired=0)
        try:
            if self.payments.key_check_pending:  # it could not finish at start-up
                allow = self.payments.allow_unsafe_key
                for warning in await self.payments.check_key(allow_unsafe_key=allow):
                    log.warning("%s", warning)
            poll = await self.payments.poller.poll()
        except UnsafeApiKey as exc:  # refused as at start-up: no deposit is read with it
            error = str(exc)
            log.error("OKX API key refused: %s", exc)
            await self._failing("auth", error)
        except ExchangeAuthError as exc:
            error = str(exc)
            log.error("OKX refused the API key: %s", exc)
            await self._failing("auth", error)
        except ExchangeError as exc:
            error = str(exc)
            log.warning("poll skipped, OKX unavailable: %s", exc)
            await self._failing("unavailable", error)
        else:
            await self._recovered()
        expired = await self.payments.expire_due()
        return CycleReport(poll=poll, error=error, expired=expired)

    async def _failing(self, kind: str, error: str) -> None:
        now = self.payments.okx_clock.now_ms()
        async with self.payments.db.transaction() as conn:
            since = await get_int(conn, FAILING_SINCE)
            if since is None:
                since = now
                await set_value(conn, FAILING_SINCE, since, now)
            await set_value(conn, FAILING_KIND, kind, now)
            if await get_int(conn, ALERTED) == since and (
                kind != "auth" or await get_value(conn, ALERTED_KIND) == "auth"
            ):
                return  # told already (an outage that turns into a refused key is told again)
            if kind == "auth" or now - since >= self.alert_after_ms:
                await set_value(conn, ALERTED, since, now)
                await set_value(conn, ALERTED_KIND, kind, now)
                alert = msg.ADMIN_OKX_AUTH if kind == "auth" else msg.ADMIN_OKX_DOWN
                told = alert.message(
                    {"since": since, "error": error[:300]}, key=f"a:okx:{kind}:{since}"
                )
                await enqueue(conn, told, now_ms=now)

    async def _recovered(self) -> None:
        now = self.payments.okx_clock.now_ms()
        async with self.payments.db.transaction() as conn:
            since = await get_int(conn, FAILING_SINCE)
            if since is None:
                return
            if await get_int(conn, ALERTED) == since:
                kind = await get_value(conn, FAILING_KIND)
                recovered = msg.ADMIN_OKX_RECOVERED.message(
                    {"since": since, "failure": kind}, key=f"a:okx:recovered:{since}"
                )
                await enqueue(conn, recovered, now_ms=now)
            await conn.execute(
                delete(kv).where(kv.c.key.in_((FAILING_SINCE, FAILING_KIND, ALERTED_KIND)))
            )
