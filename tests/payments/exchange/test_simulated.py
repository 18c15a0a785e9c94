"""The simulated exchange of test mode: the plans' coins and chains, stable TEST addresses, fixed
prices, and a deposit history of exactly what was simulated, kept in the database (a restart
keeps it); and the core paying an invoice with it, outside test mode refusing to."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from fakes.stub_exchange import StubExchange
from payments.catalog import load_catalog
from payments.clock import MINUTE_MS, ManualClock
from payments.config import PaymentSettings
from payments.errors import BadSimulatedAmount, InvoiceNotFound, SimulationRefused
from payments.exchange import SimulatedExchange
from payments.storage import Database
from payments.storage.schema import simulated_deposits
from payments.wiring import Payments

CATALOG = load_catalog(None)


async def test_it_offers_every_coin_and_chain_of_the_plans_with_test_addresses() -> None:
    exchange = SimulatedExchange(CATALOG, clock=ManualClock())
    chains = await exchange.fetch_chains(list(CATALOG.currencies))
    wanted = {(c.symbol, n.chain) for c in CATALOG.coins for n in c.networks}
    assert {(c.currency, c.chain) for c in chains} == wanted
    assert all(c.can_deposit and not c.need_tag for c in chains)
    first = await exchange.fetch_deposit_addresses("USDT")
    again = await exchange.fetch_deposit_addresses("USDT")
    assert first == again  # stable across calls and restarts
    assert all(a.address.startswith("TEST-USDT-") and a.tag is None for a in first)
    assert "TEST-USDT-TRC20-1" in {a.address for a in first if a.selected}
    assert await exchange.fetch_deposit_addresses("NOPE") == []
    tickers = await exchange.fetch_tickers(["USDT", "BTC", "USDC"])
    assert set(tickers) == {"BTC", "USDC"}
    assert tickers["USDC"].last == Decimal(1)
    key = await exchange.fetch_key_info()
    assert key.permissions == frozenset({"read_only"})


async def test_the_history_is_what_was_simulated_newest_first_and_survives_a_restart(
    db: Database,
) -> None:
    clock = ManualClock()
    exchange = SimulatedExchange(CATALOG, clock=clock)
    exchange.bind(db)
    assert await exchange.fetch_deposit_history() == []
    first = await exchange.add_deposit(
        currency="USDT", chain="USDT-TRC20", amount=Decimal("29.0001"), to_address="TEST-A"
    )
    clock.advance(MINUTE_MS)
    second = await exchange.add_deposit(
        currency="BTC", chain="BTC-Bitcoin", amount=Decimal("0.0005"), to_address="TEST-B"
    )
    assert first.state == "2" and first.type == "4" and first.tx_id.startswith("test-")
    assert first.amount == Decimal("29.0001") and first.amount_text == "29.0001"

    restarted = SimulatedExchange(CATALOG, clock=clock)
    restarted.bind(db)
    assert await restarted.fetch_deposit_history() == [second, first]
    assert await restarted.fetch_deposit_history(limit=1) == [second]
    assert await restarted.fetch_deposit_history(after=second.ts) == [first]
    assert await restarted.fetch_deposit_history(before=first.ts) == [second]
    assert await restarted.fetch_deposit_history(currency="USDT") == [first]
    assert await restarted.fetch_deposit_history(dep_id=second.dep_id) == [second]
    assert await restarted.fetch_deposit_history(tx_id=first.tx_id) == [first]


async def test_a_simulated_deposit_pays_the_invoice_at_the_next_poll(db: Database) -> None:
    clock = ManualClock()
    payments = Payments.wire(
        db, SimulatedExchange(CATALOG, clock=clock), CATALOG, _settings(), clock
    )
    assert payments.simulated
    await payments.start_checks(allow_unsafe_key=False)
    invoice = await payments.invoices.create(101, "pro", "USDT", "TRC20")
    assert invoice.address.startswith("TEST-USDT-TRC20-")

    for bad in (Decimal(0), Decimal(-1), Decimal("0.00001"), Decimal("NaN"), Decimal(10) ** 13):
        with pytest.raises(BadSimulatedAmount):
            await payments.simulate_deposit(invoice.id, bad)
    with pytest.raises(InvoiceNotFound):
        await payments.simulate_deposit("NOSUCH")
    assert await _rows(db) == []

    record = await payments.simulate_deposit(invoice.id)
    assert record.amount_text == invoice.amount_text and record.to_address == invoice.address
    clock.advance(MINUTE_MS)
    await payments.poller.poll()
    view = await payments.invoices.get(invoice.id)
    assert view.status == "paid"


async def test_outside_test_mode_nothing_is_simulated(db: Database) -> None:
    payments = Payments.wire(db, StubExchange(), CATALOG, _settings(), ManualClock())
    assert not payments.simulated
    with pytest.raises(SimulationRefused, match="OKX_MODE=simulated"):
        await payments.simulate_deposit("ANY")
    assert await _rows(db) == []


def _settings() -> PaymentSettings:
    return PaymentSettings()


async def _rows(db: Database) -> list[object]:
    async with db.read() as conn:
        return list((await conn.execute(select(simulated_deposits))).all())
