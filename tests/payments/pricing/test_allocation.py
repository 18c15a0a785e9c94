from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import select

from payments.clock import DAY_MS, HOUR_MS, MINUTE_MS, ManualClock
from payments.errors import NoFreeAmount
from payments.money import format_units, step_units, to_units
from payments.pricing.allocation import (
    AddressChoice,
    amount_candidates,
    cap_units_for,
    capacity,
    extend_hold,
    hold_address,
    release_address,
    reserve_amount,
    take_address,
)
from payments.pricing.quotes import crypto_amount
from payments.storage import Database, schema
from tests.helpers_db import add_invoices

USDT_STEP = Decimal("0.0001")
USDT_STEP_UNITS = 10_000  # 0.0001 at scale 8
BASE_29 = 2_900_000_000  # 29 USDT
CAP_29 = 14_500_000  # 0.5 % of 29 USDT = 0.145


def usdt(units: list[int]) -> list[str]:
    return [format_units(u, USDT_STEP) for u in units]


# --- pure ----------------------------------------------------------------------------------------


def test_usdt_29_amounts_never_end_in_zero() -> None:
    assert cap_units_for(BASE_29, Decimal("0.5"), USDT_STEP_UNITS) == CAP_29
    amounts = amount_candidates(BASE_29, USDT_STEP_UNITS, CAP_29)
    assert usdt(amounts[:11]) == [
        "29.0001",
        "29.0002",
        "29.0003",
        "29.0004",
        "29.0005",
        "29.0006",
        "29.0007",
        "29.0008",
        "29.0009",
        "29.0011",
        "29.0012",
    ]
    texts = usdt(amounts)
    assert "29.0000" not in texts and "29.0010" not in texts
    assert all(not t.endswith("0") for t in texts)
    assert texts[-1] == "29.1449"  # 29.1450 is the cap but ends in 0
    assert amounts == sorted(set(amounts))
    assert len(amounts) == capacity(BASE_29, USDT_STEP_UNITS, CAP_29) == 1305


def test_candidates_validate_their_inputs() -> None:
    with pytest.raises(ValueError):
        amount_candidates(BASE_29 + 1, USDT_STEP_UNITS, CAP_29)  # base off the step
    with pytest.raises(ValueError):
        amount_candidates(BASE_29, 0, CAP_29)
    assert amount_candidates(BASE_29, USDT_STEP_UNITS, 0) == []  # 29.0000 itself ends in 0
    assert amount_candidates(BASE_29 + USDT_STEP_UNITS, USDT_STEP_UNITS, 0) == [2_900_010_000]
    assert cap_units_for(BASE_29, Decimal("0.0003"), USDT_STEP_UNITS) == 0  # floors to steps


# Capacity at realistic prices with the default steps and a 0.5 % cap (the README's figures).
# BTC is bounded by the satoshi: 146 amounts for $29 at $90,000 (495 for $99).
CAPACITY = [
    # price, coin, USD rate, step, base amount, capacity
    ("29", "BTC", "90000", "0.00000001", "0.00032223", 146),
    ("29", "ETH", "3000", "0.00000001", "0.00966667", 4_350),
    ("29", "SOL", "150", "0.0000001", "0.1933334", 8_700),
    ("29", "BNB", "600", "0.00000001", "0.04833334", 21_750),
    ("29", "USDT", "1", "0.0001", "29.0000", 1_305),
    ("29", "USDC", "1", "0.0001", "29.0000", 1_305),
    ("99", "BTC", "90000", "0.00000001", "0.00110000", 495),
    ("99", "ETH", "3000", "0.00000001", "0.03300000", 14_850),
    ("99", "SOL", "150", "0.0000001", "0.6600000", 29_700),
    ("99", "BNB", "600", "0.00000001", "0.16500000", 74_250),
    ("99", "USDT", "1", "0.0001", "99.0000", 4_455),
    ("99", "USDC", "1", "0.0001", "99.0000", 4_455),
]


@pytest.mark.parametrize(("price", "coin", "rate", "step", "base", "expected"), CAPACITY)
def test_capacity_at_realistic_prices(
    price: str, coin: str, rate: str, step: str, base: str, expected: int
) -> None:
    amount = crypto_amount(Decimal(price), Decimal(rate), Decimal(step))
    assert str(amount) == base
    base_units = to_units(amount)
    assert base_units is not None
    units = step_units(Decimal(step))
    cap = cap_units_for(base_units, Decimal("0.5"), units)
    got = capacity(base_units, units, cap)
    assert got == expected == len(amount_candidates(base_units, units, cap))
    if coin != "BTC":
        assert got >= 1_000


# --- reservations --------------------------------------------------------------------------------


async def reserve(
    db: Database,
    invoice_id: str,
    now_ms: int,
    *,
    cap_units: int = CAP_29,
    held_for: int = 2 * HOUR_MS + DAY_MS,
    kind: str = "main",
) -> int:
    async with db.transaction() as conn:
        return await reserve_amount(
            conn,
            currency="USDT",
            base_units=BASE_29,
            step_units=USDT_STEP_UNITS,
            cap_units=cap_units,
            invoice_id=invoice_id,
            kind=kind,
            address="TAddr1",
            now_ms=now_ms,
            held_until=now_ms + held_for,
        )


async def holders(db: Database) -> dict[int, tuple[str, int]]:
    r = schema.reservations.c
    async with db.read() as conn:
        rows = await conn.execute(select(r.amount_units, r.invoice_id, r.held_until))
        return {int(a): (str(i), int(h)) for a, i, h in rows.all()}


async def test_50_concurrent_reservations_get_50_distinct_amounts(
    db: Database, clock: ManualClock
) -> None:
    ids = [f"inv{i:03d}" for i in range(50)]
    await add_invoices(db, *ids)
    now = clock.now_ms()
    got = await asyncio.gather(*(reserve(db, i, now) for i in ids))
    assert len(set(got)) == 50
    assert all(BASE_29 < a <= BASE_29 + CAP_29 for a in got)
    assert all((a // USDT_STEP_UNITS) % 10 != 0 for a in got)
    # The smallest offsets were used: exactly the first 50 candidates.
    assert sorted(got) == amount_candidates(BASE_29, USDT_STEP_UNITS, CAP_29)[:50]
    rows = await holders(db)
    assert {amount: invoice for amount, (invoice, _) in rows.items()} == dict(
        zip(got, ids, strict=True)
    )


async def test_an_exhausted_range_raises_no_free_amount(db: Database, clock: ManualClock) -> None:
    await add_invoices(db, "a", "b", "c")
    now = clock.now_ms()
    cap = 2 * USDT_STEP_UNITS  # 29.0001 and 29.0002 only
    assert usdt([await reserve(db, "a", now, cap_units=cap)]) == ["29.0001"]
    assert usdt([await reserve(db, "b", now, cap_units=cap)]) == ["29.0002"]
    with pytest.raises(NoFreeAmount, match="busy, try again in a few minutes"):
        await reserve(db, "c", now, cap_units=cap)
    with pytest.raises(NoFreeAmount):  # 29.0000 alone is no candidate at all
        await reserve(db, "c", now, cap_units=0)


async def test_a_released_amount_waits_24_hours_then_the_longest_released_comes_first(
    db: Database, clock: ManualClock
) -> None:
    await add_invoices(db, "a", "b", "c", "d", "e", "f")
    t0 = clock.now_ms()
    cap = 3 * USDT_STEP_UNITS  # 29.0001, 29.0002, 29.0003
    a = await reserve(db, "a", t0, cap_units=cap, held_for=2 * HOUR_MS)  # released at t0+2h
    b = await reserve(db, "b", t0, cap_units=cap, held_for=1 * HOUR_MS)  # released at t0+1h
    c = await reserve(db, "c", t0, cap_units=cap, held_for=3 * HOUR_MS)  # released at t0+3h
    assert usdt([a, b, c]) == ["29.0001", "29.0002", "29.0003"]

    # Released 24 h minus 1 ms ago: still quarantined.
    with pytest.raises(NoFreeAmount):
        await reserve(db, "d", t0 + HOUR_MS + DAY_MS - 1, cap_units=cap)

    now = t0 + 2 * HOUR_MS + DAY_MS  # b released 25 h ago, a exactly 24 h ago, c 23 h ago
    assert await reserve(db, "d", now, cap_units=cap) == b
    assert await reserve(db, "e", now, cap_units=cap) == a
    with pytest.raises(NoFreeAmount):
        await reserve(db, "f", now, cap_units=cap)
    rows = await holders(db)
    assert rows[b][0] == "d" and rows[a][0] == "e" and rows[c][0] == "c"
    assert rows[b][1] > now


async def test_never_used_amounts_come_before_released_ones(
    db: Database, clock: ManualClock
) -> None:
    await add_invoices(db, "a", "b")
    t0 = clock.now_ms()
    first = await reserve(db, "a", t0, held_for=HOUR_MS)
    later = t0 + HOUR_MS + 2 * DAY_MS
    second = await reserve(db, "b", later)
    assert usdt([first, second]) == ["29.0001", "29.0002"]


async def test_concurrent_takes_of_released_amounts_never_share_one(
    db: Database, clock: ManualClock
) -> None:
    await add_invoices(db, "a", "b", "c", "n1", "n2", "n3", "n4", "n5")
    t0 = clock.now_ms()
    cap = 3 * USDT_STEP_UNITS
    for invoice in ("a", "b", "c"):
        await reserve(db, invoice, t0, cap_units=cap, held_for=MINUTE_MS)
    now = t0 + MINUTE_MS + DAY_MS
    results = await asyncio.gather(
        *(reserve(db, i, now, cap_units=cap) for i in ("n1", "n2", "n3", "n4", "n5")),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, int)]
    assert sorted(usdt(won)) == ["29.0001", "29.0002", "29.0003"]
    assert sum(isinstance(r, NoFreeAmount) for r in results) == 2
    assert {inv for inv, _ in (await holders(db)).values()} <= {"n1", "n2", "n3", "n4", "n5"}


async def test_extend_hold_only_ever_raises(db: Database, clock: ManualClock) -> None:
    await add_invoices(db, "a", "b")
    now = clock.now_ms()
    main = await reserve(db, "a", now, held_for=HOUR_MS)
    topup = await reserve(db, "a", now, held_for=3 * HOUR_MS, kind="topup")
    other = await reserve(db, "b", now, held_for=HOUR_MS)
    async with db.transaction() as conn:
        assert await extend_hold(conn, invoice_id="a", held_until=now + 2 * HOUR_MS) == 1
    rows = await holders(db)
    assert rows[main][1] == now + 2 * HOUR_MS
    assert rows[topup][1] == now + 3 * HOUR_MS  # never lowered
    assert rows[other][1] == now + HOUR_MS  # another invoice's hold is untouched


async def test_reserve_refuses_bad_arguments(db: Database, clock: ManualClock) -> None:
    await add_invoices(db, "a")
    with pytest.raises(ValueError):
        await reserve(db, "a", clock.now_ms(), kind="other")
    with pytest.raises(ValueError):
        await reserve(db, "a", clock.now_ms(), held_for=0)


# --- the address pool ----------------------------------------------------------------------------


async def add_pool(db: Database, *addresses: str, chain: str = "USDT-TRC20") -> None:
    async with db.transaction() as conn:
        for n, address in enumerate(addresses):
            await conn.execute(
                schema.pool_addresses.insert().values(
                    currency="USDT",
                    chain=chain,
                    address=address,
                    tag="",
                    selected=n == 1,
                    active=True,
                    held_until=0,
                    assigned_at=0,
                    refreshed_at=0,
                )
            )


async def take(db: Database, invoice_id: str, now: int, chain: str = "USDT-TRC20") -> AddressChoice:
    async with db.transaction() as conn:
        choice = await take_address(
            conn,
            currency="USDT",
            chain=chain,
            invoice_id=invoice_id,
            now_ms=now,
            held_until=now + 2 * HOUR_MS,
        )
    assert choice is not None
    return choice


async def test_concurrent_invoices_take_free_addresses_then_share(
    db: Database, clock: ManualClock
) -> None:
    await add_pool(db, "T1", "T2", "T3")
    now = clock.now_ms()
    got = await asyncio.gather(*(take(db, f"inv{i}", now) for i in range(4)))
    exclusive = [c for c in got if c.exclusive]
    shared = [c for c in got if not c.exclusive]
    assert sorted(c.address for c in exclusive) == ["T1", "T2", "T3"]
    assert shared == [AddressChoice(address="T2", tag=None, exclusive=False)]  # the selected one
    r = schema.pool_addresses.c
    async with db.read() as conn:
        rows = (await conn.execute(select(r.holder_invoice_id, r.held_until))).all()
    assert len({holder for holder, _ in rows}) == 3
    assert all(until == now + 2 * HOUR_MS for _, until in rows)


async def test_a_released_or_expired_address_is_taken_again_after_its_quarantine(
    db: Database, clock: ManualClock
) -> None:
    await add_pool(db, "T1", "T2")
    t0 = clock.now_ms()
    quarantine = 30 * 60_000
    assert (await take(db, "a", t0)).address == "T1"
    assert (await take(db, "b", t0 + 1)).address == "T2"
    assert not (await take(db, "c", t0 + 2)).exclusive
    async with db.transaction() as conn:
        await release_address(conn, invoice_id="a", now_ms=t0 + 3, quarantine_ms=quarantine)
        # holds nothing: no-op
        await release_address(conn, invoice_id="c", now_ms=t0 + 3, quarantine_ms=quarantine)
    # a's payer may still send a second payment to T1: nobody else's own address yet
    assert not (await take(db, "d", t0 + 4)).exclusive
    assert await take(db, "d", t0 + 3 + quarantine) == AddressChoice("T1", None, exclusive=True)
    # b's hold runs out by time alone (it expired without a release).
    later = t0 + 1 + 2 * HOUR_MS
    assert await take(db, "e", later) == AddressChoice("T2", None, exclusive=True)
    # a's late release does not free the address that d holds now.
    async with db.transaction() as conn:
        await release_address(conn, invoice_id="a", now_ms=later, quarantine_ms=0)
    assert not (await take(db, "f", later)).exclusive


async def test_a_part_paid_invoice_keeps_its_address_until_its_window_ends(
    db: Database, clock: ManualClock
) -> None:
    await add_pool(db, "T1")
    t0 = clock.now_ms()
    assert (await take(db, "a", t0)).address == "T1"  # held for 2 h
    window_end = t0 + 26 * HOUR_MS
    async with db.transaction() as conn:
        assert await hold_address(conn, invoice_id="a", until=window_end) == 1
        assert await hold_address(conn, invoice_id="a", until=t0 + HOUR_MS) == 0  # never shorter
        assert await hold_address(conn, invoice_id="b", until=window_end) == 0  # not b's
    assert not (await take(db, "b", t0 + 3 * HOUR_MS)).exclusive  # its top-up names T1
    assert (await take(db, "b", window_end)).exclusive


async def test_least_recently_assigned_address_comes_first(
    db: Database, clock: ManualClock
) -> None:
    await add_pool(db, "T1", "T2", "T3")
    t0 = clock.now_ms()
    for n, invoice in enumerate(("a", "b", "c")):
        await take(db, invoice, t0 + n)
    async with db.transaction() as conn:
        for invoice in ("c", "a", "b"):
            await release_address(conn, invoice_id=invoice, now_ms=t0 + 10, quarantine_ms=0)
    assert (await take(db, "d", t0 + 11)).address == "T1"  # assigned at t0, the oldest
    assert (await take(db, "e", t0 + 12)).address == "T2"


async def test_no_active_address_means_none(db: Database, clock: ManualClock) -> None:
    await add_pool(db, "E1", chain="USDT-ERC20")
    async with db.transaction() as conn:
        await conn.execute(schema.pool_addresses.update().values(active=False))
        choice = await take_address(
            conn,
            currency="USDT",
            chain="USDT-ERC20",
            invoice_id="a",
            now_ms=clock.now_ms(),
            held_until=clock.now_ms() + HOUR_MS,
        )
        assert choice is None
        none_at_all = await take_address(
            conn,
            currency="USDT",
            chain="USDT-TRC20",
            invoice_id="a",
            now_ms=clock.now_ms(),
            held_until=clock.now_ms() + HOUR_MS,
        )
        assert none_at_all is None
