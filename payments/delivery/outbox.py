"""The outbox: notifications written in the same transaction as the event they tell about.

:func:`enqueue` (the one way in) takes the caller's connection, so a message exists exactly when
its event committed; it takes messages from the catalogue (:mod:`payments.delivery.messages`)
and refuses, at once, one the catalogue does not know. :class:`Outbox` is the sending side with
its database bound (``payments.outbox``).
A sender job (on the replica holding the lease) claims a batch, sends it, and marks each message
sent / for retry / unreachable. A claim is a time-limited lease on the row plus a random token:
a sender that crashes after claiming simply lets the claim lapse and the message is sent again
later. A crash can repeat a message, never lose one.

Fencing: a sender hands its :class:`~payments.botstate.lease.Lease` to :func:`claim_batch` (checked
in the
claim's transaction) and to :func:`reassert` right before each outside call for a message (one
compare-and-set on the claim token and the lease). A sender that was paused past its lease
therefore claims nothing and skips what it had claimed; only the call it was inside when it
stopped can repeat. The outcome (:func:`mark_sent` ..., and :func:`mark_reached` for each admin
an alert reached) is recorded under the claim token alone: a message that went out is recorded
as sent even if the lease lapsed meanwhile.

Order: per recipient (a customer; the admins as one audience) a message is claimed only when no
earlier one to the same recipient is still pending (waiting for a retry, or claimed), so
messages arrive in the order they were written, across retries and senders. A message given up
(``failed``) or ``unreachable`` no longer holds the later ones.

Statuses: ``pending`` (to send, possibly waiting for ``next_attempt_at``), ``sent``, ``failed``
(gave up after :data:`GIVE_UP_AFTER_MS`, or refused outright), ``unreachable`` (the customer
blocked the bot).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, String, Update, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.botstate.lease import Lease, held_clause, holds
from payments.clock import DAY_MS, HOUR_MS
from payments.delivery import messages
from payments.delivery.messages import Audience, InvalidMessage, Message, check
from payments.invoicing.customers import set_unreachable
from payments.storage.db import Database
from payments.storage.schema import outbox

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
UNREACHABLE = "unreachable"
STATUSES = (PENDING, SENT, FAILED, UNREACHABLE)

RETRY_BASE_MS = 5_000  # first retry after 5 s, then 10 s, 20 s, ...
RETRY_CAP_MS = HOUR_MS  # ... never more than an hour apart
GIVE_UP_AFTER_MS = 3 * DAY_MS  # a message still failing 3 days after it was written -> failed

_KEY_MAX = cast(String, outbox.c.dedupe_key.type).length or 200
_KIND_MAX = cast(String, outbox.c.kind.type).length or 40
_ERROR_MAX = cast(String, outbox.c.last_error.type).length or 300


@dataclass(frozen=True)
class OutboxMessage:
    """One claimed message. ``claim_token`` proves the claim when marking the outcome."""

    id: int
    audience: Audience
    customer_id: int | None
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_at: int
    claim_token: str
    sent_to: frozenset[int] = frozenset()  # an admin alert: the admins it already reached


# --- writing ---------------------------------------------------------------------------------


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")  # "0.0000001", never "1E-7"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in an outbox payload")


def _reject_floats(value: object, path: str = "payload") -> None:
    """Money never travels as a float: refuse one anywhere in the payload."""
    if isinstance(value, float):
        raise TypeError(f"{path} is a float; use Decimal (sent as a string) or int")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _reject_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]")


def dump_payload(payload: Mapping[str, Any]) -> str:
    """The JSON text stored for a payload: Decimals as plain strings, floats refused."""
    _reject_floats(payload)
    return json.dumps(dict(payload), default=_json_default, sort_keys=True, ensure_ascii=False)


def message_row(message: Message, *, now_ms: int) -> dict[str, Any]:
    """The outbox row of ``message``, once it fits the catalogue (see :func:`enqueue`)."""
    kind = check(message)
    key = message.key
    if kind.audience == "customer" and message.customer_id is None:
        raise InvalidMessage(f"{kind} is a customer message: it needs a customer_id")
    if not key or len(key) > _KEY_MAX:
        raise InvalidMessage(f"dedupe key must be 1..{_KEY_MAX} characters")
    if len(kind) > _KIND_MAX:
        raise InvalidMessage(f"kind must be 1..{_KIND_MAX} characters")
    return {
        "dedupe_key": key,
        "audience": kind.audience,
        "customer_id": message.customer_id,
        "kind": str(kind),
        "payload": dump_payload(message.payload),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now_ms,
        "claimed_until": 0,
        "claim_token": None,
        "created_at": now_ms,
    }


async def enqueue(conn: AsyncConnection, *messages: Message, now_ms: int) -> int:
    """The one way into the outbox: write ``messages`` (from the catalogue,
    :mod:`payments.delivery.messages`) in the caller's transaction, in one statement per 500.
    Returns how many were written: a message whose key was already used is skipped, so writing
    the same event twice yields one message.

    Every message is checked before anything is written: an unknown kind, a payload that does
    not fit its kind, a customer message without its customer or a bad key raises
    :class:`~payments.delivery.messages.InvalidMessage` and writes nothing.
    """
    rows = [message_row(message, now_ms=now_ms) for message in messages]
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:  # the first message of a key is the one written, as on a retry
        unique.setdefault(row["dedupe_key"], row)
    written = 0
    batch = list(unique.values())
    for start in range(0, len(batch), 500):
        written += await _insert_new(conn, batch[start : start + 500])
    return written


async def _insert_new(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> int:
    """One multi-row INSERT skipping used keys; the rows written, counted by the ids it
    returns (exact on both databases, which an executemany's row count is not on asyncpg).
    The statement is built once per database and compiled once: SQLAlchemy sends the rows as
    one multi-row INSERT ("insertmanyvalues")."""
    if not rows:
        return 0
    stmt = _INSERT_NEW[conn.dialect.name == "postgresql"]
    return len((await conn.execute(stmt, list(rows))).all())


_INSERT_NEW = {
    pg: (postgresql.insert if pg else sqlite.insert)(outbox)
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(outbox.c.id)
    for pg in (False, True)
}


# --- sending ---------------------------------------------------------------------------------


def _held_back() -> ColumnElement[bool]:
    """An earlier message to the same recipient is still pending (waiting or claimed): this one
    waits for it. Customers are recipients one by one; the admins are one audience (every alert
    goes to all of them, one row each). Each branch is an index lookup on
    (audience, status, customer_id)."""
    earlier = outbox.alias("earlier")

    def pending_before(audience: Audience) -> ColumnElement[bool]:
        return and_(
            earlier.c.audience == audience,
            earlier.c.status == PENDING,
            earlier.c.id < outbox.c.id,
        )

    to_customer = exists().where(
        pending_before("customer"), earlier.c.customer_id == outbox.c.customer_id
    )
    return or_(
        and_(outbox.c.audience == "customer", to_customer),
        and_(outbox.c.audience == "admins", exists().where(pending_before("admins"))),
    )


async def claim_batch(
    db: Database,
    *,
    now_ms: int,
    limit: int = 50,
    lease_ms: int = 60_000,
    fence: Lease | None = None,
    lease_now_ms: int | None = None,
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages, oldest first, for ``lease_ms`` (own transaction): at
    most one per recipient, the earliest still pending (see the module's note on order).

    ``fence``: claim only while this lease is held (checked in the same transaction, at
    ``lease_now_ms``, the lease rows' clock; default ``now_ms``); nothing otherwise. PostgreSQL:
    ``FOR UPDATE SKIP LOCKED``, so concurrent claimers never get the same row; SQLite: the write
    transaction is exclusive. A claim that is never marked lapses after ``lease_ms`` and the
    message becomes claimable again. Claims are timed on the lease rows' clock (the host's):
    ``now_ms`` (the exchange's clock, which moves when its offset is measured again) only says
    what is due, so a jump of it never lets a second sender take a message that is being sent.
    """
    if limit <= 0 or lease_ms <= 0:
        raise ValueError("limit and lease_ms must be positive")
    token = secrets.token_hex(16)
    async with db.transaction() as conn:
        lease_now = now_ms if lease_now_ms is None else lease_now_ms
        if not await holds(conn, fence, now_ms=lease_now):
            return []
        stmt = (
            select(
                outbox.c.id,
                outbox.c.audience,
                outbox.c.customer_id,
                outbox.c.kind,
                outbox.c.payload,
                outbox.c.attempts,
                outbox.c.created_at,
                outbox.c.sent_to,
            )
            .where(
                outbox.c.status == PENDING,
                outbox.c.next_attempt_at <= now_ms,
                outbox.c.claimed_until <= lease_now,
                ~_held_back(),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=outbox)
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return []
        await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_([row.id for row in rows]))
            .values(claimed_until=lease_now + lease_ms, claim_token=token)
        )
    return [
        OutboxMessage(
            id=row.id,
            audience=row.audience,
            customer_id=row.customer_id,
            kind=row.kind,
            payload=json.loads(row.payload),
            attempts=row.attempts,
            created_at=row.created_at,
            claim_token=token,
            sent_to=frozenset(json.loads(row.sent_to)) if row.sent_to else frozenset(),
        )
        for row in rows
    ]


async def reassert(
    db: Database,
    message: OutboxMessage,
    *,
    now_ms: int,
    hold_ms: int,
    fence: Lease | None = None,
    lease_now_ms: int | None = None,
) -> bool:
    """Right before an outside call for ``message``: is the claim still ours (and, with
    ``fence``, the lease still held)? If so it now lasts ``hold_ms`` from ``now_ms``, long
    enough for the call; False means skip the message (another sender took it over, or this
    one lost the lease). One compare-and-set statement, in its own transaction."""
    if hold_ms <= 0:
        raise ValueError("hold_ms must be positive")
    lease_now = now_ms if lease_now_ms is None else lease_now_ms
    clauses = list(_claimed(message))
    if fence is not None:
        clauses.append(held_clause(fence, now_ms=lease_now))
    async with db.transaction() as conn:
        kept = (
            await conn.execute(
                update(outbox)
                .where(*clauses)
                .values(claimed_until=lease_now + hold_ms)
                .returning(outbox.c.id)
            )
        ).first()
    return kept is not None


async def release(db: Database, messages: Sequence[OutboxMessage]) -> None:
    """Give claims up unsent (a sender stopping early): claimable again at once. Only claims
    still ours are touched, so a stale release changes nothing."""
    if not messages:
        return
    async with db.transaction() as conn:
        for message in messages:
            await conn.execute(
                update(outbox).where(*_claimed(message)).values(claimed_until=0, claim_token=None)
            )


def _claimed(message: OutboxMessage) -> Sequence[Any]:
    """WHERE clauses: the row is still ours (same claim) and still pending."""
    return (
        outbox.c.id == message.id,
        outbox.c.claim_token == message.claim_token,
        outbox.c.status == PENDING,
    )


async def mark_sent(db: Database, message: OutboxMessage, *, now_ms: int) -> bool:
    """Record delivery; False if the claim was lost (another sender took it over meanwhile)."""
    async with db.transaction() as conn:
        result = await conn.execute(
            update(outbox)
            .where(*_claimed(message))
            .values(status=SENT, sent_at=now_ms, claimed_until=0, claim_token=None)
        )
    return int(result.rowcount or 0) == 1


async def mark_reached(db: Database, message: OutboxMessage, sent_to: Collection[int]) -> bool:
    """Record the admins an alert has reached so far (under the claim token, like an outcome):
    whoever sends it next, after a retry, a crash or a take-over, skips them. False if the
    claim was lost."""
    async with db.transaction() as conn:
        result = await conn.execute(
            update(outbox).where(*_claimed(message)).values(sent_to=json.dumps(sorted(sent_to)))
        )
    return int(result.rowcount or 0) == 1


def backoff_ms(attempts: int) -> int:
    """Delay before the next try after ``attempts`` earlier failed ones: 5 s doubling, max 1 h."""
    if attempts >= 20:  # 5 s * 2^20 is far past the cap; avoid giant integers
        return RETRY_CAP_MS
    return min(RETRY_BASE_MS << max(attempts, 0), RETRY_CAP_MS)


async def mark_retry(
    db: Database,
    message: OutboxMessage,
    *,
    now_ms: int,
    error: str,
    retry_after_ms: int | None = None,
) -> None:
    """A send failed (network, 5xx, 429): try again later, or give up after three days.

    ``retry_after_ms`` (Telegram's ``retry_after`` on a 429) replaces the exponential backoff.
    ``error`` is stored (truncated) for the admins: callers must never put secrets in it.
    """
    delay = backoff_ms(message.attempts) if retry_after_ms is None else max(retry_after_ms, 0)
    gave_up = now_ms - message.created_at >= GIVE_UP_AFTER_MS
    async with db.transaction() as conn:
        await conn.execute(
            update(outbox)
            .where(*_claimed(message))
            .values(
                status=FAILED if gave_up else PENDING,
                attempts=outbox.c.attempts + 1,
                next_attempt_at=now_ms + delay,
                claimed_until=0,
                claim_token=None,
                last_error=error[:_ERROR_MAX],
            )
        )


def _give_up(message: OutboxMessage, *, now_ms: int, error: str) -> Update:
    """The compare-and-set that gives a claimed message up for good."""
    return (
        update(outbox)
        .where(*_claimed(message))
        .values(
            status=FAILED,
            attempts=outbox.c.attempts + 1,
            next_attempt_at=now_ms,
            claimed_until=0,
            claim_token=None,
            last_error=error[:_ERROR_MAX],
        )
    )


async def mark_failed(db: Database, message: OutboxMessage, *, now_ms: int, error: str) -> None:
    """Telegram refused the message outright (a bad request no retry can fix): give up now, so
    it does not hold the recipient's later messages for days. ``error`` as for
    :func:`mark_retry`."""
    async with db.transaction() as conn:
        await conn.execute(_give_up(message, now_ms=now_ms, error=error))


async def mark_unrenderable(db: Database, message: OutboxMessage, *, now_ms: int) -> bool:
    """The bot cannot render ``message`` (a kind this version does not know: written by a newer
    replica, or left over from an older one): give it up now rather than retry it for days,
    and tell the admins in the same transaction. False (and nothing written) if the claim was
    lost."""
    error = f"cannot render kind {message.kind}"
    async with db.transaction() as conn:
        result = await conn.execute(_give_up(message, now_ms=now_ms, error=error))
        if int(result.rowcount or 0) != 1:
            return False
        alert = messages.ADMIN_UNRENDERABLE.message(
            {"message_id": message.id, "kind": message.kind, "audience": message.audience},
            key=f"a:unrenderable:{message.id}",
            customer_id=message.customer_id,
        )
        await enqueue(conn, alert, now_ms=now_ms)
    return True


async def mark_unreachable(db: Database, message: OutboxMessage, *, now_ms: int) -> None:
    """The recipient blocked the bot (Forbidden): close the message and flag the customer.

    For an admin message only the message is closed (the admins are not customers).
    """
    async with db.transaction() as conn:
        result = await conn.execute(
            update(outbox)
            .where(*_claimed(message))
            .values(
                status=UNREACHABLE,
                attempts=outbox.c.attempts + 1,
                claimed_until=0,
                claim_token=None,
                last_error="unreachable: the bot was blocked",
            )
        )
        # An admin message may carry the customer it is about: only flag the actual recipient.
        if (
            int(result.rowcount or 0) == 1
            and message.audience == "customer"
            and message.customer_id is not None
        ):
            await set_unreachable(conn, message.customer_id, True)


# --- monitoring ------------------------------------------------------------------------------


async def stats(conn: AsyncConnection) -> dict[str, int]:
    """Number of messages per status (every status present, zero when none)."""
    counts = dict.fromkeys(STATUSES, 0)
    rows = await conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    for status, count in rows:
        counts[str(status)] = int(count)
    return counts


@dataclass(frozen=True)
class FailedMessage:
    id: int
    audience: str
    customer_id: int | None
    kind: str
    attempts: int
    created_at: int
    last_error: str | None


async def list_failed(conn: AsyncConnection, *, limit: int = 50) -> list[FailedMessage]:
    """The most recent messages that were given up on, newest first (for an admin view)."""
    rows = await conn.execute(
        select(
            outbox.c.id,
            outbox.c.audience,
            outbox.c.customer_id,
            outbox.c.kind,
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.last_error,
        )
        .where(outbox.c.status == FAILED)
        .order_by(outbox.c.id.desc())
        .limit(limit)
    )
    return [
        FailedMessage(
            id=row.id,
            audience=row.audience,
            customer_id=row.customer_id,
            kind=row.kind,
            attempts=row.attempts,
            created_at=row.created_at,
            last_error=row.last_error,
        )
        for row in rows
    ]


# --- the service -----------------------------------------------------------------------------


class Outbox:
    """The outbox on one database, as the sender uses it (``payments.outbox``): the functions
    above with the database bound. Fencing and claims work exactly as the module describes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim_batch(
        self,
        *,
        now_ms: int,
        limit: int = 50,
        lease_ms: int = 60_000,
        fence: Lease | None = None,
        lease_now_ms: int | None = None,
    ) -> list[OutboxMessage]:
        """See :func:`claim_batch`."""
        return await claim_batch(
            self._db,
            now_ms=now_ms,
            limit=limit,
            lease_ms=lease_ms,
            fence=fence,
            lease_now_ms=lease_now_ms,
        )

    async def reassert(
        self,
        message: OutboxMessage,
        *,
        now_ms: int,
        hold_ms: int,
        fence: Lease | None = None,
        lease_now_ms: int | None = None,
    ) -> bool:
        """See :func:`reassert`."""
        return await reassert(
            self._db,
            message,
            now_ms=now_ms,
            hold_ms=hold_ms,
            fence=fence,
            lease_now_ms=lease_now_ms,
        )

    async def release(self, messages: Sequence[OutboxMessage]) -> None:
        """See :func:`release`."""
        await release(self._db, messages)

    async def mark_sent(self, message: OutboxMessage, *, now_ms: int) -> bool:
        """See :func:`mark_sent`."""
        return await mark_sent(self._db, message, now_ms=now_ms)

    async def mark_reached(self, message: OutboxMessage, sent_to: Collection[int]) -> bool:
        """See :func:`mark_reached`."""
        return await mark_reached(self._db, message, sent_to)

    async def mark_retry(
        self,
        message: OutboxMessage,
        *,
        now_ms: int,
        error: str,
        retry_after_ms: int | None = None,
    ) -> None:
        """See :func:`mark_retry`."""
        await mark_retry(
            self._db, message, now_ms=now_ms, error=error, retry_after_ms=retry_after_ms
        )

    async def mark_failed(self, message: OutboxMessage, *, now_ms: int, error: str) -> None:
        """See :func:`mark_failed`."""
        await mark_failed(self._db, message, now_ms=now_ms, error=error)

    async def mark_unrenderable(self, message: OutboxMessage, *, now_ms: int) -> bool:
        """See :func:`mark_unrenderable`."""
        return await mark_unrenderable(self._db, message, now_ms=now_ms)

    async def mark_unreachable(self, message: OutboxMessage, *, now_ms: int) -> None:
        """See :func:`mark_unreachable`."""
        await mark_unreachable(self._db, message, now_ms=now_ms)

    async def stats(self) -> dict[str, int]:
        """See :func:`stats`."""
        async with self._db.read() as conn:
            return await stats(conn)

    async def list_failed(self, *, limit: int = 50) -> list[FailedMessage]:
        """See :func:`list_failed`."""
        async with self._db.read() as conn:
            return await list_failed(conn, limit=limit)
