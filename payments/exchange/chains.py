"""What OKX says about the catalogue's chains and deposit addresses, cached in the database.

``refresh_chains`` keeps ``chain_status`` (can deposit, minimum deposit, memo, fee, tick) and
``refresh_addresses`` keeps the address pool (every address OKX returns, selected or not). Both
call the exchange first and write in one short transaction afterwards; an ExchangeError leaves
the database as it was. A refresh never touches who holds an address (``holder_invoice_id``,
``held_until``, ``assigned_at``): it only adds addresses, updates their flags and marks the ones
OKX no longer returns inactive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.catalog import Catalog
from payments.exchange.base import ChainInfo, Exchange, PoolAddress
from payments.storage.db import Database
from payments.storage.schema import chain_status, pool_addresses


@dataclass(frozen=True)
class ChainStatus:
    """The stored ``chain_status`` row of one (currency, chain), amounts as Decimal."""

    currency: str
    chain: str
    can_deposit: bool
    min_deposit: Decimal
    need_tag: bool
    withdraw_fee: Decimal | None
    withdraw_tick: Decimal | None
    refreshed_at: int


def _text(value: Decimal | None) -> str | None:
    """Plain decimal text, never exponent notation (``1E-8`` -> ``0.00000001``)."""
    return None if value is None else format(value, "f")


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    values: Mapping[str, Any],
    key: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """INSERT, or UPDATE only ``update_columns`` when a row with the same ``key`` exists."""
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(**values)
    else:
        stmt = sqlite.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={name: stmt.excluded[name] for name in update_columns},
    )
    await conn.execute(stmt)


def _catalog_chains(catalog: Catalog) -> set[tuple[str, str]]:
    return {(coin.symbol, network.chain) for coin in catalog.coins for network in coin.networks}


# --- chains ------------------------------------------------------------------------------------


async def refresh_chains(
    db: Database, exchange: Exchange, catalog: Catalog, *, now_ms: int
) -> list[ChainInfo]:
    """Fetch the chains of the catalogue's currencies (one request) and store them.

    Returns OKX's rows for the catalogue's chains. A catalogue chain that OKX no longer lists is
    stored as ``can_deposit = false``: no invoice is created on a chain OKX does not confirm.
    """
    wanted = _catalog_chains(catalog)
    infos = await exchange.fetch_chains(list(catalog.currencies))
    found: dict[tuple[str, str], ChainInfo] = {}
    for info in infos:
        if (info.currency, info.chain) in wanted:
            found[(info.currency, info.chain)] = info
    async with db.transaction() as conn:
        for info in found.values():
            await _upsert(
                conn,
                chain_status,
                {
                    "currency": info.currency,
                    "chain": info.chain,
                    "can_deposit": info.can_deposit,
                    "min_deposit": _text(info.min_deposit),
                    "need_tag": info.need_tag,
                    "withdraw_fee": _text(info.withdraw_fee),
                    "withdraw_tick": _text(info.withdraw_tick),
                    "refreshed_at": now_ms,
                },
                ["currency", "chain"],
                [
                    "can_deposit",
                    "min_deposit",
                    "need_tag",
                    "withdraw_fee",
                    "withdraw_tick",
                    "refreshed_at",
                ],
            )
        for currency, chain in sorted(wanted - found.keys()):
            await conn.execute(
                update(chain_status)
                .where(chain_status.c.currency == currency, chain_status.c.chain == chain)
                .values(can_deposit=False, refreshed_at=now_ms)
            )
    return list(found.values())


async def get_chain_status(conn: AsyncConnection, currency: str, chain: str) -> ChainStatus | None:
    """The stored status of one chain, or None when it was never refreshed."""
    c = chain_status.c
    row = (
        await conn.execute(select(chain_status).where(c.currency == currency, c.chain == chain))
    ).first()
    if row is None:
        return None
    return ChainStatus(
        currency=row.currency,
        chain=row.chain,
        can_deposit=bool(row.can_deposit),
        min_deposit=Decimal(row.min_deposit),
        need_tag=bool(row.need_tag),
        withdraw_fee=None if row.withdraw_fee is None else Decimal(row.withdraw_fee),
        withdraw_tick=None if row.withdraw_tick is None else Decimal(row.withdraw_tick),
        refreshed_at=int(row.refreshed_at),
    )


# --- addresses ---------------------------------------------------------------------------------


async def refresh_addresses(
    db: Database, exchange: Exchange, catalog: Catalog, *, now_ms: int
) -> dict[tuple[str, str], int]:
    """Fetch every deposit address of each catalogue currency (one request per currency) and
    store the pool. Returns the number of active addresses per catalogue (currency, chain),
    0 included: a chain without an address cannot take invoices.
    """
    wanted = _catalog_chains(catalog)
    fetched: dict[str, list[PoolAddress]] = {}
    for currency in catalog.currencies:
        fetched[currency] = await exchange.fetch_deposit_addresses(currency)

    async with db.transaction() as conn:
        for currency, addresses in fetched.items():
            await _store_pool(conn, currency, addresses, wanted, now_ms)
        c = pool_addresses.c
        rows = await conn.execute(
            select(c.currency, c.chain).where(
                c.active.is_(True), c.currency.in_(list(catalog.currencies))
            )
        )
        counts = dict.fromkeys(sorted(wanted), 0)
        for currency, chain in rows.all():
            if (currency, chain) in counts:
                counts[(currency, chain)] += 1
    return counts


async def _store_pool(
    conn: AsyncConnection,
    currency: str,
    addresses: Sequence[PoolAddress],
    wanted: set[tuple[str, str]],
    now_ms: int,
) -> None:
    returned: dict[tuple[str, str, str], bool] = {}  # (chain, address, tag) -> selected
    for item in addresses:
        if item.currency != currency or (currency, item.chain) not in wanted or not item.address:
            continue
        key = (item.chain, item.address, item.tag or "")
        returned[key] = returned.get(key, False) or item.selected
    for (chain, address, tag), selected in returned.items():
        await _upsert(
            conn,
            pool_addresses,
            {
                "currency": currency,
                "chain": chain,
                "address": address,
                "tag": tag,
                "selected": selected,
                "active": True,
                "holder_invoice_id": None,
                "held_until": 0,
                "assigned_at": 0,
                "refreshed_at": now_ms,
            },
            ["currency", "chain", "address", "tag"],
            ["selected", "active", "refreshed_at"],
        )
    c = pool_addresses.c
    existing = await conn.execute(
        select(c.id, c.chain, c.address, c.tag).where(c.currency == currency, c.active.is_(True))
    )
    gone = [row.id for row in existing.all() if (row.chain, row.address, row.tag) not in returned]
    if gone:
        await conn.execute(update(pool_addresses).where(c.id.in_(gone)).values(active=False))


async def known_addresses(conn: AsyncConnection) -> set[str]:
    """Every deposit address we have ever had (inactive ones too): "is this deposit to ours?"."""
    rows = await conn.execute(select(pool_addresses.c.address).distinct())
    return {str(address) for (address,) in rows.all()}
