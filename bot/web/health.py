"""``GET /healthz``: 503 only when this process cannot do its job (the database cannot be read,
the Telegram application is not running, or its singleton jobs have stalled). OKX trouble is
reported as "degraded" with 200: restarting the service would not fix OKX, and the admins are
told about it by the payment cycle.

Anyone may ask, so the answer says only ``status`` (ok, degraded, unavailable), ``database`` and
``telegram``. The details (the package ``version``, webhook or polling, this replica's role and
lease token, OKX's state and since when it fails, each job's last run, the problems behind a
503) need
``Authorization: Bearer <API_TOKEN>``: they tell an outsider whether the OKX key was refused
and when the shop stopped seeing payments (``okx`` is "off" in a shop selling for Telegram Stars
only, which never calls OKX and so is never degraded by it). The problems behind a 503 are
logged (when they change) for operators without the token.

``role``: "primary" when this replica holds the lease (it runs the poller, the outbox sender
and the other singleton jobs), else "standby" (it serves updates and the API only). A standby is
200 and is stalled only when its lease job stops running (it could never take over)."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from bot.config import Settings
from bot.jobs import LEASE, stall_limits
from bot.version import package_version
from bot.web.deps import Context

log = logging.getLogger(__name__)

router = APIRouter()

PUBLIC = ("status", "database", "telegram")


@router.get("/healthz", tags=["health"], summary="Health check for the hosting platform")
async def healthz(
    context: Context,
    authorization: Annotated[
        str | None, Header(description="Bearer <API_TOKEN>: the details as well")
    ] = None,
) -> JSONResponse:
    body, status = await _health(context)
    problems = body.get("problems", [])
    if problems != context.health_problems:
        if problems:
            log.warning("health check: unavailable: %s", "; ".join(problems))
        elif context.health_problems:
            log.info("health check: available again")
        context.health_problems = list(problems)
    if not _detailed(context.settings, authorization):
        body = {key: body[key] for key in PUBLIC if key in body}
    return JSONResponse(body, status_code=status)


def _detailed(settings: Settings, authorization: str | None) -> bool:
    """The caller sent this service's API token (compared in constant time)."""
    if settings.api_token is None or not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    expected = settings.api_token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)


async def _health(context: Context) -> tuple[dict[str, Any], int]:
    application, settings = context.application, context.settings
    services = application.bot_data.services
    problems: list[str] = []
    body: dict[str, Any] = {
        "version": package_version(),
        "mode": "webhook" if context.webhook else "polling",
        "telegram": "running" if application.running else "stopped",
    }
    if not application.running or services is None:
        problems.append("the Telegram application is not running")
        body["status"] = "unavailable"
        body["problems"] = problems
        return body, 503
    replica = services.replica
    body["role"] = replica.role
    if replica.primary and replica.lease is not None:
        body["lease_token"] = replica.lease.token
    health = await services.payments.health()
    body["database"] = "ok" if health.database else "unreachable"
    if not health.database:
        log.warning("health check: the database cannot be read (%s)", health.database_error)
        problems.append("the database cannot be read")
    crypto = services.payments.crypto
    if not crypto:  # Telegram Stars only: OKX is not used, so it cannot fail
        body["okx"] = "off"
    else:
        body["okx"] = health.okx or "unknown"
        if health.okx_failing_since is not None:
            body["okx_failing_since_ms"] = health.okx_failing_since
    limits = stall_limits(settings.payment_poll_seconds, services.timings, crypto=crypto)
    counted = limits if replica.primary else {LEASE: limits[LEASE]}
    stalled = services.heartbeats.stalled(counted)
    body["jobs"] = {
        job: {"seconds_since_last_run": round(services.heartbeats.age(job), 1)} for job in limits
    }
    if stalled:
        problems.append("jobs stalled: " + ", ".join(stalled))
    if problems:
        body["status"] = "unavailable"
        body["problems"] = problems
        return body, 503
    degraded = crypto and (health.okx != "ok" or not services.directory_ready)
    body["status"] = "degraded" if degraded else "ok"
    return body, 200
