"""What ``/healthz`` reports about the payments side: can the database be used, and is OKX
answering (as the payment cycle last recorded it, so every replica and every restart agree)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from payments.storage import Database
from payments.storage.kv import get_int, get_value
from payments.storage.schema import kv

OkxState = Literal["ok", "unavailable", "auth"]

# what the payment cycle records of an OKX outage, in the kv table (deposits/cycle.py writes it)
FAILING_SINCE = "okx.failing_since"  # OKX time of the first failed poll of this outage
FAILING_KIND = "okx.failing_kind"  # "auth" | "unavailable"
KEY_ACCEPTED = "okx.key_accepted_at"  # OKX time of the last key check OKX answered (wiring.py)


@dataclass(frozen=True)
class Health:
    database: bool
    database_error: str | None  # the error's type and first line (no URL, no password)
    okx: OkxState | None  # None: unknown (the database could not be read)
    okx_failing_since: int | None  # OKX time (ms) of the first failed poll of this outage


async def check_health(db: Database, *, timeout_s: float = 3.0) -> Health:
    """Read the project's own tables (a reachable server with no schema is not healthy)."""
    try:
        async with asyncio.timeout(timeout_s), db.read(fresh=True) as conn:
            await conn.execute(select(kv.c.key).limit(1))
            since = await get_int(conn, FAILING_SINCE)
            kind = await get_value(conn, FAILING_KIND)
    except Exception as exc:  # any driver error or a time-out means "cannot do its job"
        first_line = (str(exc).splitlines() or [""])[0][:160]
        return Health(False, f"{type(exc).__name__}: {first_line}".rstrip(": "), None, None)
    okx: OkxState = "ok"
    if since is not None:
        okx = "auth" if kind == "auth" else "unavailable"
    return Health(True, None, okx, since)
