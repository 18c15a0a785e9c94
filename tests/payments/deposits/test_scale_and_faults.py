"""Scale (poll cost follows deposits, not invoices), OKX faults, the key check, the layering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from payments import states as st
from payments.clock import MINUTE_MS
from payments.errors import ExchangeError, ExchangeUnavailable, UnsafeApiKey
from payments.storage import Database, schema
from payments.wiring import Payments
from tests.conftest import open_database
from tests.shop import Shop, bulk_invoices, open_shop

HISTORY = "/api/v5/asset/deposit-history"


@pytest.fixture
async def shop(db: Database) -> AsyncIterator[Shop]:
    async with open_shop(db) as opened:
        yield opened


def _deposits(shop: Shop, paid: list[tuple[str, int]], unrelated: int) -> None:
    start = shop.clock.now_ms()
    for n, (_, units) in enumerate(paid):
        amount = Decimal(units).scaleb(-8).quantize(Decimal("0.0001"))
        shop.okx.add_deposit("USDT", "USDT-TRC20", amount, to="TBulkAddress", ts=start + n)
    for n in range(unrelated):
        shop.okx.add_deposit("USDT", "USDT-TRC20", f"{500 + n}.5", ts=start + len(paid) + n)
    shop.clock.advance(MINUTE_MS)


async def _paid_ids(shop: Shop) -> set[str]:
    async with shop.db.read() as conn:
        rows = await conn.execute(
            select(schema.invoices.c.id).where(schema.invoices.c.status == st.PAID)
        )
        return {r[0] for r in rows}


async def test_poll_requests_follow_deposits_not_open_invoices(shop: Shop, tmp_path: Path) -> None:
    made = await bulk_invoices(shop, 10_000)
    await shop.poll()  # the first poll (a sweep) over an empty history
    paid = made[::20]  # 500 of the 10,000 get paid, plus 500 deposits nobody ordered
    _deposits(shop, paid, 500)
    shop.okx.reset_counts()
    report = await shop.poll()
    busy_requests = shop.okx.count(HISTORY)
    assert report.fetched == 1_000
    assert await _paid_ids(shop) == {invoice_id for invoice_id, _ in paid}
    async with shop.db.read() as conn:
        unmatched = (
            await conn.execute(
                select(func.count()).where(schema.deposits.c.disposition == st.DEP_UNMATCHED)
            )
        ).scalar_one()
    assert unmatched == 500

    # the same 1,000 deposits with a single open invoice: the same number of requests
    quiet_db, _ = await open_database("sqlite", tmp_path / "quiet")
    try:
        async with open_shop(quiet_db) as quiet:
            one = await bulk_invoices(quiet, 1)
            await quiet.poll()
            _deposits(quiet, one, 999)
            quiet.okx.reset_counts()
            await quiet.poll()
            assert quiet.okx.count(HISTORY) == busy_requests
    finally:
        await quiet_db.close()
    assert busy_requests == 11  # 1,000 rows: ten full pages of 100 and one short page


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "timeout"])
async def test_okx_faults_leave_every_row_as_it_was_and_the_next_poll_recovers(
    shop: Shop, fault: str
) -> None:
    invoice = await shop.buy(1)
    shop.pay(invoice)
    before = {name: await shop.table(name) for name in ("invoices", "deposits", "outbox")}
    shop.okx.fail_next(1, fault, path_prefix=HISTORY)
    with pytest.raises(ExchangeUnavailable):
        await shop.poll()
    after = {name: await shop.table(name) for name in ("invoices", "deposits", "outbox")}
    assert after == before

    shop.clock.advance(MINUTE_MS)
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID


async def test_a_key_that_can_withdraw_is_refused(shop: Shop) -> None:
    shop.okx.set_permissions("read_only,withdraw")
    with pytest.raises(UnsafeApiKey, match="withdraw"):
        await shop.payments.start_checks(allow_unsafe_key=False)
    shop.okx.set_permissions("read_only,trade")
    with pytest.raises(UnsafeApiKey, match="trade"):
        await shop.payments.start_checks(allow_unsafe_key=False)
    shop.okx.set_permissions("read_only")
    assert isinstance(await shop.payments.start_checks(allow_unsafe_key=False), list)


async def test_errors_are_typed(shop: Shop) -> None:
    shop.okx.fail_next(1, "rate_limit")
    with pytest.raises(ExchangeError):
        await shop.payments.exchange.server_time_ms()


async def test_a_record_that_cannot_be_decided_goes_to_an_admin_and_others_settle(
    shop: Shop,
) -> None:
    invoice = await shop.buy(1)
    now = shop.clock.now_ms()
    async with shop.db.transaction() as conn:  # a corrupt row, as a bad migration might leave
        await conn.execute(
            schema.deposits.insert().values(
                dep_id="poison-1",
                currency="USDT",
                chain="USDT-TRC20",
                amount="NaN",
                amount_units=None,
                to_address="TXsomewhere",
                tx_id="",
                from_wd_id="",
                type="4",
                state="2",
                ts=now,
                raw="{}",
                first_seen_at=now,
                updated_at=now,
                needs_decision=True,
                disposition=st.DEP_NEW,
                note="",
            )
        )
    shop.pay(invoice)
    await shop.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID
    poison = await shop.deposit("poison-1")
    assert (poison["disposition"], poison["note"]) == (st.DEP_UNMATCHED, "decision_error")
    alerts = await shop.messages("admin.deposit_unmatched")
    assert [m["payload"]["dep_id"] for m in alerts] == ["poison-1"]


async def test_a_crash_between_storing_and_deciding_loses_nothing(shop: Shop) -> None:
    invoice = await shop.buy(1)
    dep = shop.pay(invoice)
    # the poller stored the deposit, then the process died before deciding it
    [record] = await shop.payments.exchange.fetch_deposit_history(dep_id=dep)
    async with shop.db.transaction() as conn:
        await shop.payments.poller._store(conn, [record], shop.clock.now_ms())
    assert (await shop.deposit(dep))["needs_decision"]

    # a new process over the same database: the next poll decides it, exactly once
    restarted = Payments.wire(
        shop.db, shop.payments.exchange, shop.payments.catalog, shop.payments.settings, shop.clock
    )
    await restarted.poller.poll()
    await restarted.poller.poll()
    assert (await shop.invoice(invoice.id)).status == st.PAID
    assert len(await shop.messages("invoice.paid")) == 1
    assert len(await shop.periods()) == 1
