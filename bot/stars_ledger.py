"""Telegram's Stars ledger read for reconciliation: ``getStarTransactions`` page by page, newest
first, back to the window the rail compares, as the plain :class:`payments.stars.LedgerEntry`
lines the rail takes (an incoming payment from a user, or a refund to one)."""

from __future__ import annotations

import datetime as dt

from telegram import Bot, StarTransaction, TransactionPartnerUser

from payments.stars import LedgerEntry, ReconcileReport, StarsRail

PAGE = 100  # the most getStarTransactions returns at once
MAX_PAGES = 50  # 5,000 lines a run at most; the next run reads the newest again
WINDOW_MS = 7 * 86_400_000  # how far back each run compares


def entry(line: StarTransaction) -> LedgerEntry | None:
    """The rail's view of one ledger line; None for lines that are not a user's payment or
    refund (withdrawals, ads, other partners)."""
    date = int(line.date.timestamp() * 1000)
    source, receiver = line.source, line.receiver
    if isinstance(source, TransactionPartnerUser):
        return LedgerEntry(
            id=line.id,
            stars=int(line.amount),
            date=date,
            user_id=source.user.id,
            incoming=True,
            payload=source.invoice_payload,
            subscription_period=_seconds(source.subscription_period),
        )
    if isinstance(receiver, TransactionPartnerUser):
        return LedgerEntry(
            id=line.id,
            stars=int(line.amount),
            date=date,
            user_id=receiver.user.id,
            incoming=False,
        )
    return None


def _seconds(period: object) -> int | None:
    """PTB gives the period as a timedelta (or, by its settings, an int of seconds)."""
    if isinstance(period, dt.timedelta):
        return int(period.total_seconds())
    return period if isinstance(period, int) else None


async def read(bot: Bot, *, since_ms: int) -> tuple[list[LedgerEntry], int]:
    """The ledger's lines back to ``since_ms`` (or to its start), and from when on the lines
    read are complete (``since_ms``, or the oldest line read when the page limit stopped the
    run first)."""
    lines: list[LedgerEntry] = []
    offset = 0
    for _ in range(MAX_PAGES):
        page = (await bot.get_star_transactions(offset=offset, limit=PAGE)).transactions
        for line in page:
            found = entry(line)
            if found is not None:
                lines.append(found)
        offset += len(page)
        oldest = int(page[-1].date.timestamp() * 1000) if page else None
        if len(page) < PAGE or oldest is None or oldest < since_ms:
            return lines, since_ms
    return lines, min((e.date for e in lines), default=since_ms)


async def reconcile(bot: Bot, rail: StarsRail, *, now_ms: int) -> ReconcileReport:
    """One reconciliation run: read the last :data:`WINDOW_MS` of the ledger (``now_ms``: when
    the read begins, on the shop's clock), hand it over."""
    lines, covered = await read(bot, since_ms=now_ms - WINDOW_MS)
    return await rail.reconcile(lines, covered_since=covered, read_at=now_ms)
