"""What the shop window reads: offered coins and networks, a customer's subscriptions and
invoice history (with the Telegram Stars payments beside the crypto invoices). Read-only; the
Telegram layer and the HTTP API use it instead of SQL."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from payments.catalog import Catalog, Network
from payments.clock import Clock
from payments.invoicing.invoices import InvoiceService, InvoiceView
from payments.stars import StarsPayment, StarsRail
from payments.storage import Database
from payments.storage.schema import chain_status, deposits
from payments.subscriptions.periods import SubscriptionView, get_subscriptions


@dataclass(frozen=True)
class OfferedNetwork:
    """A network taking deposits now, and whether OKX needs a memo (tag) on deposits to it."""

    network: Network
    needs_memo: bool


@dataclass(frozen=True)
class HistoryEntry:
    invoice: InvoiceView
    tx_ids: tuple[str, ...]  # on-chain hashes of the deposits attached to it (may be empty)


class Storefront:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        invoices: InvoiceService,
        clock: Clock,
        stars: StarsRail | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.invoices = invoices
        self.clock = clock
        self.stars = stars

    async def offered(self) -> dict[str, list[Network]]:
        """Coin symbol -> the networks that take deposits now (OKX ``canDep``), in catalogue
        order; coins with none are left out. A chain never refreshed is not offered."""
        return {
            symbol: [o.network for o in networks]
            for symbol, networks in (await self.offered_networks()).items()
        }

    async def offered_networks(self) -> dict[str, list[OfferedNetwork]]:
        """:meth:`offered`, each network with whether deposits to it need a memo."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(
                    chain_status.c.currency, chain_status.c.chain, chain_status.c.need_tag
                ).where(chain_status.c.can_deposit.is_(True))
            )
            open_chains = {(currency, chain): bool(need_tag) for currency, chain, need_tag in rows}
        offered: dict[str, list[OfferedNetwork]] = {}
        for coin in self.catalog.coins:
            for network in coin.networks:
                memo = open_chains.get((coin.symbol, network.chain))
                if memo is not None:
                    offered.setdefault(coin.symbol, []).append(OfferedNetwork(network, memo))
        return offered

    async def subscriptions(self, customer_id: int) -> list[SubscriptionView]:
        async with self.db.read() as conn:
            return await get_subscriptions(conn, customer_id)

    async def history(self, customer_id: int, *, limit: int = 10) -> list[HistoryEntry]:
        """The customer's newest invoices with the tx hashes that paid them."""
        views = await self.invoices.list_for_customer(customer_id, limit=limit)
        if not views:
            return []
        txs = await self._tx_ids([v.id for v in views])
        return [HistoryEntry(v, txs.get(v.id, ())) for v in views]

    async def timeline(
        self, customer_id: int, *, limit: int = 10
    ) -> list[HistoryEntry | StarsPayment]:
        """Both rails, newest first: the crypto invoices (by when they were made) and the
        Telegram Stars charges (by when Telegram made them, renewals included), ``limit`` in
        all."""
        entries: list[HistoryEntry | StarsPayment] = list(
            await self.history(customer_id, limit=limit)
        )
        if self.stars is not None:
            entries += await self.stars.payments_of(customer_id, limit=limit)
        entries.sort(key=_when, reverse=True)
        return entries[:limit]

    async def tx_ids(self, invoice_id: str) -> tuple[str, ...]:
        """The on-chain hashes of the deposits attached to one invoice, oldest first."""
        return (await self._tx_ids([invoice_id])).get(invoice_id, ())

    async def _tx_ids(self, invoice_ids: list[str]) -> dict[str, tuple[str, ...]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(deposits.c.invoice_id, deposits.c.tx_id)
                .where(deposits.c.invoice_id.in_(invoice_ids))
                .order_by(deposits.c.ts)
            )
            txs: dict[str, list[str]] = {}
            for invoice_id, tx_id in rows:
                if tx_id:
                    txs.setdefault(invoice_id, []).append(tx_id)
        return {invoice_id: tuple(ids) for invoice_id, ids in txs.items()}


def _when(entry: HistoryEntry | StarsPayment) -> int:
    return entry.paid_at if isinstance(entry, StarsPayment) else entry.invoice.created_at
