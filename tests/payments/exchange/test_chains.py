from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select

from fakes.stub_exchange import StubExchange
from payments.catalog import Catalog, load_catalog
from payments.clock import HOUR_MS, ManualClock
from payments.exchange.base import ChainInfo, PoolAddress
from payments.exchange.chains import (
    ChainStatus,
    get_chain_status,
    known_addresses,
    refresh_addresses,
    refresh_chains,
)
from payments.pricing.allocation import take_address
from payments.storage import Database, schema


def chain(
    currency: str, name: str, *, can: bool = True, min_dep: str = "1", tick: str | None = "0.0001"
) -> ChainInfo:
    return ChainInfo(
        currency=currency,
        chain=name,
        can_deposit=can,
        min_deposit=Decimal(min_dep),
        need_tag=False,
        withdraw_fee=Decimal("1.5"),
        withdraw_tick=None if tick is None else Decimal(tick),
        min_confirmations=1,
    )


def addr(currency: str, chain_name: str, address: str, *, selected: bool = False) -> PoolAddress:
    return PoolAddress(
        currency=currency, chain=chain_name, address=address, tag=None, selected=selected
    )


class FakeDirectory(StubExchange):
    """Implements the Exchange protocol; serves chains and deposit addresses from lists."""

    def __init__(self) -> None:
        self.chains: list[ChainInfo] = []
        self.addresses: dict[str, list[PoolAddress]] = {}
        self.chain_calls: list[tuple[str, ...]] = []
        self.address_calls: list[str] = []

    async def fetch_chains(self, currencies: Sequence[str]) -> list[ChainInfo]:
        self.chain_calls.append(tuple(currencies))
        return [c for c in self.chains if c.currency in currencies]

    async def fetch_deposit_addresses(self, currency: str) -> list[PoolAddress]:
        self.address_calls.append(currency)
        return list(self.addresses.get(currency, []))


CATALOG: Catalog = load_catalog()


async def status(db: Database, currency: str, chain_name: str) -> ChainStatus | None:
    async with db.read() as conn:
        return await get_chain_status(conn, currency, chain_name)


async def test_refresh_chains_stores_the_catalogue_chains(db: Database, clock: ManualClock) -> None:
    fake = FakeDirectory()
    fake.chains = [
        chain("USDT", "USDT-TRC20", min_dep="0.1"),
        chain("USDT", "USDT-ERC20", can=False),
        chain("USDT", "USDT-Polygon"),  # not in the catalogue
        chain("BTC", "BTC-Bitcoin", min_dep="0.00005", tick="1E-8"),
        chain("ETH", "ETH-ERC20", tick=None),
    ]
    now = clock.now_ms()
    got = await refresh_chains(db, fake, CATALOG, now_ms=now)
    assert fake.chain_calls == [("BTC", "ETH", "USDT", "USDC", "SOL", "BNB")]
    assert {(c.currency, c.chain) for c in got} == {
        ("USDT", "USDT-TRC20"),
        ("USDT", "USDT-ERC20"),
        ("BTC", "BTC-Bitcoin"),
        ("ETH", "ETH-ERC20"),
    }
    assert await status(db, "BTC", "BTC-Bitcoin") == ChainStatus(
        currency="BTC",
        chain="BTC-Bitcoin",
        can_deposit=True,
        min_deposit=Decimal("0.00005"),
        need_tag=False,
        withdraw_fee=Decimal("1.5"),
        withdraw_tick=Decimal("0.00000001"),
        refreshed_at=now,
    )
    trc = await status(db, "USDT", "USDT-TRC20")
    assert trc is not None and str(trc.min_deposit) == "0.1"
    erc = await status(db, "USDT", "USDT-ERC20")
    assert erc is not None and not erc.can_deposit
    eth = await status(db, "ETH", "ETH-ERC20")
    assert eth is not None and eth.withdraw_tick is None
    assert await status(db, "USDT", "USDT-Polygon") is None
    assert await status(db, "SOL", "SOL-Solana") is None


async def test_a_second_refresh_updates_and_closes_vanished_chains(
    db: Database, clock: ManualClock
) -> None:
    fake = FakeDirectory()
    fake.chains = [chain("USDT", "USDT-TRC20"), chain("USDT", "USDT-ERC20")]
    await refresh_chains(db, fake, CATALOG, now_ms=clock.now_ms())
    clock.advance(HOUR_MS)
    fake.chains = [chain("USDT", "USDT-TRC20", can=False, min_dep="2")]
    await refresh_chains(db, fake, CATALOG, now_ms=clock.now_ms())
    trc = await status(db, "USDT", "USDT-TRC20")
    assert trc is not None
    assert (trc.can_deposit, trc.min_deposit, trc.refreshed_at) == (
        False,
        Decimal(2),
        clock.now_ms(),
    )
    erc = await status(db, "USDT", "USDT-ERC20")  # OKX no longer lists it: no new invoices
    assert erc is not None and not erc.can_deposit


def pool() -> dict[str, list[PoolAddress]]:
    return {
        "USDT": [
            addr("USDT", "USDT-TRC20", "T1", selected=True),
            addr("USDT", "USDT-TRC20", "T2"),
            addr("USDT", "USDT-TRC20", "T3"),
            addr("USDT", "USDT-ERC20", "0xE1", selected=True),
            addr("USDT", "USDT-Polygon", "0xP1"),  # not in the catalogue
        ],
        "BTC": [addr("BTC", "BTC-Bitcoin", "bc1q", selected=True)],
    }


async def active_rows(db: Database) -> dict[str, tuple[bool, str | None, int]]:
    c = schema.pool_addresses.c
    async with db.read() as conn:
        rows = await conn.execute(select(c.address, c.active, c.holder_invoice_id, c.held_until))
        return {str(a): (bool(active), h, int(u)) for a, active, h, u in rows.all()}


async def test_refresh_addresses_keeps_holders_and_retires_removed_addresses(
    db: Database, clock: ManualClock
) -> None:
    fake = FakeDirectory()
    fake.addresses = pool()
    t0 = clock.now_ms()
    counts = await refresh_addresses(db, fake, CATALOG, now_ms=t0)
    assert fake.address_calls == ["BTC", "ETH", "USDT", "USDC", "SOL", "BNB"]
    assert counts[("USDT", "USDT-TRC20")] == 3
    assert counts[("USDT", "USDT-ERC20")] == 1
    assert counts[("BTC", "BTC-Bitcoin")] == 1
    assert counts[("ETH", "ETH-ERC20")] == 0  # a catalogue chain without any address
    assert ("USDT", "USDT-Polygon") not in counts

    async with db.transaction() as conn:
        choice = await take_address(
            conn,
            currency="USDT",
            chain="USDT-TRC20",
            invoice_id="inv1",
            now_ms=t0,
            held_until=t0 + 2 * HOUR_MS,
        )
    assert choice is not None and choice.exclusive
    held = choice.address
    assert held == "T1"  # least recently assigned, then the lowest id

    clock.advance(60_000)
    counts = await refresh_addresses(db, fake, CATALOG, now_ms=clock.now_ms())
    assert counts[("USDT", "USDT-TRC20")] == 3
    rows = await active_rows(db)
    assert rows[held] == (True, "inv1", t0 + 2 * HOUR_MS)  # the hold survives a refresh
    assert "0xP1" not in rows

    # OKX stops returning the held address and T3: they go inactive, the hold is untouched.
    fake.addresses["USDT"] = [
        a for a in pool()["USDT"] if a.address not in (held, "T3") and a.chain != "USDT-Polygon"
    ]
    counts = await refresh_addresses(db, fake, CATALOG, now_ms=clock.now_ms())
    assert counts[("USDT", "USDT-TRC20")] == 1
    rows = await active_rows(db)
    assert rows[held] == (False, "inv1", t0 + 2 * HOUR_MS)
    assert rows["T3"][0] is False

    async with db.read() as conn:
        ours = await known_addresses(conn)
    assert ours == {"T1", "T2", "T3", "0xE1", "bc1q"}  # retired addresses are still ours

    # Back again: active once more, still held by the same invoice.
    fake.addresses = pool()
    await refresh_addresses(db, fake, CATALOG, now_ms=clock.now_ms())
    rows = await active_rows(db)
    assert rows[held] == (True, "inv1", t0 + 2 * HOUR_MS)
    assert rows["T3"][0] is True


async def test_memo_tags_are_kept_and_duplicates_collapse(db: Database, clock: ManualClock) -> None:
    fake = FakeDirectory()
    fake.addresses = {
        "USDT": [
            PoolAddress("USDT", "USDT-TRC20", "T1", tag="12345", selected=False),
            PoolAddress("USDT", "USDT-TRC20", "T1", tag="12345", selected=True),
            PoolAddress("USDT", "USDT-TRC20", "T1", tag=None, selected=False),
        ]
    }
    counts = await refresh_addresses(db, fake, CATALOG, now_ms=clock.now_ms())
    assert counts[("USDT", "USDT-TRC20")] == 2
    c = schema.pool_addresses.c
    async with db.read() as conn:
        rows = (await conn.execute(select(c.address, c.tag, c.selected).order_by(c.tag))).all()
    assert [tuple(r) for r in rows] == [("T1", "", False), ("T1", "12345", True)]
