"""The real OkxExchange (real ccxt) against the real FakeOkx over loopback HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from fakes.okx import FakeOkx
from payments.clock import HOUR_MS, ManualClock
from payments.errors import (
    ExchangeAuthError,
    ExchangeDataError,
    ExchangeRateLimited,
    ExchangeUnavailable,
    UnsafeApiKey,
)
from payments.exchange import OkxExchange, check_api_key

HISTORY = "/api/v5/asset/deposit-history"


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeOkx]:
    with FakeOkx(clock=clock) as server:
        yield server


def connect(fake: FakeOkx, clock: ManualClock | None = None, **overrides: str) -> OkxExchange:
    creds = {"api_key": fake.api_key, "secret": fake.secret, "passphrase": fake.passphrase}
    creds.update(overrides)
    return OkxExchange(
        creds["api_key"],
        creds["secret"],
        creds["passphrase"],
        base_url=fake.base_url,
        timeout_ms=2_000,
        clock=clock,
    )


@pytest.fixture
async def okx(fake: FakeOkx, clock: ManualClock) -> AsyncIterator[OkxExchange]:
    exchange = connect(fake, clock)
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_server_time_is_okx_clock(okx: OkxExchange, clock: ManualClock) -> None:
    clock.advance(1234)
    assert await okx.server_time_ms() == clock.now_ms()
    assert okx.time_offset_ms == 0


async def test_requests_are_signed_with_okx_time_when_the_host_clock_is_off(
    clock: ManualClock,
) -> None:
    """OKX is 45 s ahead of this host: the first private call is refused (50102), the client
    measures OKX's clock once and retries; later calls are signed with OKX time at once."""
    with FakeOkx(clock=lambda: clock.now_ms() + 45_000) as fake:
        async with connect(fake, clock) as okx:
            info = await okx.fetch_key_info()
            assert info.permissions == frozenset({"read_only"})
            assert okx.time_offset_ms == 45_000
            await okx.fetch_key_info()
        assert fake.count("/api/v5/public/time") == 1
        assert fake.count("/api/v5/account/config") == 3  # refused, retried, then straight


async def test_tickers_are_exact_decimals_with_okx_ts(
    fake: FakeOkx, okx: OkxExchange, clock: ManualClock
) -> None:
    fake.set_price("BTC", "91234.56789012")
    fake.set_price("SOL", "150.25", ts=clock.now_ms() - 120_000)  # a stale ticker stays stale
    tickers = await okx.fetch_tickers(["BTC", "ETH", "SOL", "BNB", "USDC", "USDT"])
    assert set(tickers) == {"BTC", "ETH", "SOL", "BNB", "USDC"}  # USDT is 1 USD, no pair
    assert tickers["BTC"].last == Decimal("91234.56789012")
    assert tickers["ETH"].last == Decimal("3000")
    assert tickers["USDC"].last == Decimal("1.0001")
    assert tickers["BTC"].ts == clock.now_ms()
    assert tickers["SOL"].ts == clock.now_ms() - 120_000
    assert fake.count("/api/v5/market/tickers") == 1  # one request for every coin
    assert fake.queries("/api/v5/market/tickers") == [{"instType": "SPOT"}]


async def test_a_coin_without_a_ticker_is_left_out(fake: FakeOkx, okx: OkxExchange) -> None:
    fake.remove_price("BNB")
    assert set(await okx.fetch_tickers(["BNB", "ETH"])) == {"ETH"}
    fake.reset_counts()
    assert await okx.fetch_tickers(["USDT"]) == {}
    assert fake.count() == 0


async def test_chains_with_min_deposit_fee_and_tick(fake: FakeOkx, okx: OkxExchange) -> None:
    fake.set_chain("USDT-ERC20", can_dep=False, min_dep="2.5", fee="4.2", wd_tick="6")
    chains = {c.chain: c for c in await okx.fetch_chains(["USDT", "BTC", "TON"])}
    assert set(chains) == {
        "USDT-TRC20",
        "USDT-ERC20",
        "USDT-BSC",
        "USDT-Solana",
        "BTC-Bitcoin",
        "TON-TON",
    }
    trc20 = chains["USDT-TRC20"]
    assert (trc20.currency, trc20.can_deposit, trc20.need_tag) == ("USDT", True, False)
    assert trc20.min_deposit == Decimal("0.1")
    assert trc20.withdraw_fee == Decimal("1.5")
    assert trc20.withdraw_tick == Decimal("0.0001")  # OKX's wdTickSz "4" = four decimals
    assert trc20.min_confirmations == 19
    erc20 = chains["USDT-ERC20"]
    assert erc20.can_deposit is False
    assert (erc20.min_deposit, erc20.withdraw_fee) == (Decimal("2.5"), Decimal("4.2"))
    assert erc20.withdraw_tick == Decimal("0.000001")
    assert chains["BTC-Bitcoin"].withdraw_tick == Decimal("0.00000001")
    assert chains["TON-TON"].need_tag is True
    assert fake.queries("/api/v5/asset/currencies") == [{"ccy": "BTC,TON,USDT"}]


async def test_every_address_including_non_selected(fake: FakeOkx, okx: OkxExchange) -> None:
    before = await okx.fetch_deposit_addresses("USDT")
    (old,) = [a for a in before if a.chain == "USDT-TRC20"]
    assert old.selected and old.tag is None and old.address.startswith("T")
    fake.add_address("USDT", "USDT-TRC20", "TXpoolAddressNumberTwo00000000000a")
    fake.add_address("USDT", "USDT-TRC20", "TXpoolAddressNumberThree000000000b", selected=True)
    trc20 = {
        a.address: a.selected
        for a in await okx.fetch_deposit_addresses("USDT")
        if a.chain == "USDT-TRC20"
    }
    assert trc20 == {
        old.address: False,
        "TXpoolAddressNumberTwo00000000000a": False,
        "TXpoolAddressNumberThree000000000b": True,
    }
    (ton,) = await okx.fetch_deposit_addresses("TON")
    assert ton.tag == "104729433"


async def test_history_pages_newest_first_without_losing_shared_milliseconds(
    fake: FakeOkx, okx: OkxExchange, clock: ManualClock
) -> None:
    start = clock.now_ms() - 10 * HOUR_MS
    for i in range(150):  # three deposits per millisecond
        fake.add_deposit("USDT", "USDT-TRC20", f"29.{i:04d}", ts=start + (i // 3) * 1000)
    first = await okx.fetch_deposit_history()
    assert len(first) == 100  # OKX's cap
    assert [r.ts for r in first] == sorted((r.ts for r in first), reverse=True)
    assert first[0].ts == start + 49_000
    seen = {r.dep_id: r for r in first}
    page = first
    while len(page) == 100:  # the design's paging: after = oldest ts seen + 1, dedupe by depId
        page = await okx.fetch_deposit_history(after=min(r.ts for r in page) + 1)
        assert all(r.ts <= min(seen[d].ts for d in seen) for r in page)
        seen.update((r.dep_id, r) for r in page)
    assert len(seen) == 150
    assert {r.amount for r in seen.values()} == {Decimal(f"29.{i:04d}") for i in range(150)}
    assert all(q["limit"] == "100" for q in fake.queries(HISTORY))


async def test_history_after_before_and_limit(
    fake: FakeOkx, okx: OkxExchange, clock: ManualClock
) -> None:
    now = clock.now_ms()
    ids = [fake.add_deposit("ETH", "ETH-ERC20", "0.01", ts=now - k * 1000) for k in range(5)]
    assert [r.dep_id for r in await okx.fetch_deposit_history(after=now - 1000)] == ids[2:]
    assert [r.dep_id for r in await okx.fetch_deposit_history(before=now - 3000)] == ids[:3]
    both = await okx.fetch_deposit_history(after=now - 1000, before=now - 4000)
    assert [r.dep_id for r in both] == ids[2:4]
    assert [r.dep_id for r in await okx.fetch_deposit_history(limit=2)] == ids[:2]
    await okx.fetch_deposit_history(limit=500)
    assert fake.queries(HISTORY)[-1]["limit"] == "100"


async def test_history_filters_by_dep_id_tx_id_and_currency(
    fake: FakeOkx, okx: OkxExchange
) -> None:
    fake.add_deposit("USDT", "USDT-TRC20", "10", tx_id="aa" * 32)
    wanted = fake.add_deposit("USDT", "USDT-ERC20", "20", tx_id="bb" * 32)
    fake.add_deposit("BTC", "BTC-Bitcoin", "0.001")
    (by_id,) = await okx.fetch_deposit_history(dep_id=wanted)
    (by_tx,) = await okx.fetch_deposit_history(tx_id="bb" * 32)
    assert by_id == by_tx
    assert (by_id.chain, by_id.amount) == ("USDT-ERC20", Decimal("20"))
    assert {r.currency for r in await okx.fetch_deposit_history(currency="BTC")} == {"BTC"}
    assert await okx.fetch_deposit_history(dep_id="999") == []


async def test_internal_transfer_has_empty_to_and_type_3(fake: FakeOkx, okx: OkxExchange) -> None:
    dep = fake.add_deposit("USDT", "USDT-TRC20", "29.0037", type="3", from_wd_id="87654321")
    fake.add_deposit("USDT", "USDT-TRC20", "29.0041")
    records = {r.dep_id: r for r in await okx.fetch_deposit_history()}
    internal = records.pop(dep)
    assert (internal.type, internal.to_address, internal.from_wd_id) == ("3", "", "87654321")
    assert internal.amount == Decimal("29.0037")
    assert "type" not in internal.raw  # OKX's rows carry no type; it is inferred from `to`
    assert [r.type for r in records.values()] == ["4"]


async def test_raw_states_and_amount_text_are_kept(
    fake: FakeOkx, okx: OkxExchange, clock: ManualClock
) -> None:
    states = ["0", "1", "2", "8", "11", "12", "13", "14", "17"]
    ids = {
        fake.add_deposit("ETH", "ETH-ERC20", "0.123456789012", state=s, ts=clock.now_ms() - i): s
        for i, s in enumerate(states)
    }
    records = await okx.fetch_deposit_history()
    assert {r.dep_id: r.state for r in records} == ids
    assert {r.amount_text for r in records} == {"0.123456789012"}
    assert {r.amount for r in records} == {Decimal("0.123456789012")}
    assert records[0].raw["actualDepBlkConfirm"] == "0"  # state 0: no confirmations yet
    held = next(d for d, s in ids.items() if s == "17")
    fake.set_deposit(held, state="2")
    (record,) = await okx.fetch_deposit_history(dep_id=held)
    assert record.state == "2"


async def test_key_info_and_check_api_key(fake: FakeOkx, okx: OkxExchange) -> None:
    info = await okx.fetch_key_info()
    assert info.permissions == frozenset({"read_only"})
    assert check_api_key(info, allow_unsafe=False) == []

    fake.set_permissions("read_only", ip="")
    warnings = check_api_key(await okx.fetch_key_info(), allow_unsafe=False)
    assert len(warnings) == 1 and "IP whitelist" in warnings[0]

    fake.set_permissions("read_only,withdraw", ip="198.51.100.4")
    with pytest.raises(UnsafeApiKey, match="withdraw") as refused:
        check_api_key(await okx.fetch_key_info(), allow_unsafe=False)
    assert "ALLOW_UNSAFE_API_KEY" in str(refused.value)

    fake.set_permissions("read_only,trade", ip="198.51.100.4")
    with pytest.raises(UnsafeApiKey, match="trade"):
        check_api_key(await okx.fetch_key_info(), allow_unsafe=False)


@pytest.mark.parametrize(
    ("field", "code"),
    [("secret", "50113"), ("passphrase", "50105"), ("api_key", "50111")],
)
async def test_wrong_credentials_are_refused_without_leaking_them(
    fake: FakeOkx, clock: ManualClock, field: str, code: str
) -> None:
    wrong = {"secret": "s3cr3t-WRONG-value", "passphrase": "pa55-WRONG", "api_key": "key-WRONG"}
    async with connect(fake, clock, **{field: wrong[field]}) as okx:
        with pytest.raises(ExchangeAuthError) as refused:
            await okx.fetch_deposit_history()
    text = f"{refused.value} {refused.value!r}"
    assert code in text
    for secret in (wrong[field], fake.secret, fake.passphrase):
        assert secret not in text
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert fake.count(HISTORY) == 1  # the fake saw and refused it


async def test_ccxt_debug_log_does_not_leak_the_passphrase(
    fake: FakeOkx, okx: OkxExchange, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="payments.exchange.okx")
    await okx.fetch_key_info()
    assert "OK-ACCESS-PASSPHRASE" in caplog.text  # ccxt does log request headers
    assert fake.passphrase not in caplog.text and fake.secret not in caplog.text
    assert "'OK-ACCESS-SIGN': '***'" in caplog.text


async def test_rate_limit_is_typed_and_transient(fake: FakeOkx, okx: OkxExchange) -> None:
    fake.fail_next(1, "rate_limit", HISTORY)
    with pytest.raises(ExchangeRateLimited, match="50011"):
        await okx.fetch_deposit_history()
    assert await okx.fetch_deposit_history() == []


@pytest.mark.parametrize("kind", ["server_error", "unavailable", "maintenance"])
async def test_server_trouble_is_unavailable(fake: FakeOkx, okx: OkxExchange, kind: str) -> None:
    fake.fail_next(1, kind)
    with pytest.raises(ExchangeUnavailable) as failed:
        await okx.fetch_chains(["USDT"])
    assert not isinstance(failed.value, ExchangeRateLimited)
    assert len(await okx.fetch_chains(["USDT"])) == 4


async def test_timeout_is_unavailable(fake: FakeOkx, clock: ManualClock) -> None:
    fake.fail_next(1, "timeout", hang_s=5)
    started = time.monotonic()
    async with OkxExchange(
        fake.api_key, fake.secret, fake.passphrase, base_url=fake.base_url, timeout_ms=300
    ) as okx:
        with pytest.raises(ExchangeUnavailable, match="RequestTimeout"):
            await okx.server_time_ms()
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("kind", ["malformed", "garbage"])
async def test_malformed_answers_are_data_errors(
    fake: FakeOkx, okx: OkxExchange, kind: str
) -> None:
    fake.fail_next(1, kind)
    with pytest.raises(ExchangeDataError):
        await okx.fetch_deposit_history()


async def test_malformed_deposit_row_is_an_error_not_a_gap(fake: FakeOkx, okx: OkxExchange) -> None:
    dep = fake.add_deposit("USDT", "USDT-TRC20", "10")
    fake.set_deposit(dep, amt="ten")
    with pytest.raises(ExchangeDataError, match=dep):
        await okx.fetch_deposit_history()


async def test_unreachable_host_is_unavailable(clock: ManualClock) -> None:
    with FakeOkx(clock=clock) as fake:
        url = fake.base_url
    async with OkxExchange("k", "s", "p", base_url=url, timeout_ms=1_000, clock=clock) as okx:
        with pytest.raises(ExchangeUnavailable):
            await okx.server_time_ms()


async def test_no_markets_are_loaded(fake: FakeOkx, okx: OkxExchange) -> None:
    await okx.server_time_ms()
    await okx.fetch_tickers(["BTC"])
    await okx.fetch_chains(["BTC"])
    await okx.fetch_deposit_addresses("BTC")
    await okx.fetch_deposit_history()
    await okx.fetch_key_info()
    assert fake.count("/api/v5/public/instruments") == 0
    assert fake.count() == 6  # exactly one request per call
