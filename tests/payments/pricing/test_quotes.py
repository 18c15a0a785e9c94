from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import pytest

from fakes.stub_exchange import StubExchange
from payments.clock import ExchangeClock, ManualClock
from payments.errors import ExchangeUnavailable, QuoteUnavailable
from payments.exchange.base import Ticker
from payments.pricing.quotes import Quote, QuoteService, crypto_amount

CURRENCIES = ("BTC", "ETH", "USDT", "USDC", "SOL", "BNB")


class FakeTickers(StubExchange):
    """Implements the Exchange protocol; only fetch_tickers is used by quotes."""

    def __init__(self, clock: ManualClock, prices: dict[str, str]) -> None:
        self.clock = clock
        self.prices = prices
        self.age_ms: dict[str, int] = {}
        self.calls: list[tuple[str, ...]] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def fetch_tickers(self, currencies: Sequence[str]) -> dict[str, Ticker]:
        self.calls.append(tuple(currencies))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ExchangeUnavailable("OKX is down")
        now = self.clock.now_ms()
        return {
            c: Ticker(currency=c, last=Decimal(self.prices[c]), ts=now - self.age_ms.get(c, 0))
            for c in currencies
            if c in self.prices
        }


PRICES = {
    "BTC": "90000",
    "ETH": "3000",
    "USDC": "0.9998",
    "SOL": "150",
    "BNB": "600",
}


def make(clock: ManualClock) -> tuple[FakeTickers, QuoteService]:
    fake = FakeTickers(clock, dict(PRICES))
    return fake, QuoteService(fake, clock, currencies=CURRENCIES)


def test_29_dollars_in_btc_at_90000_rounds_up_to_the_satoshi() -> None:
    amount = crypto_amount(Decimal(29), Decimal(90000), Decimal("0.00000001"))
    assert str(amount) == "0.00032223"  # 29 / 90000 = 0.000322222...
    assert amount * Decimal(90000) >= Decimal(29)  # never below the price
    assert (amount - Decimal("0.00000001")) * Decimal(90000) < Decimal(29)


def test_crypto_amount_keeps_exact_results_and_the_step_precision() -> None:
    assert str(crypto_amount(Decimal(29), Decimal(1), Decimal("0.0001"))) == "29.0000"
    assert str(crypto_amount(Decimal(99), Decimal(150), Decimal("0.0000001"))) == "0.6600000"
    # 1 / 3 * 3 must not come out one step too high from a lost digit.
    assert str(crypto_amount(Decimal(99), Decimal(3), Decimal("0.00000001"))) == "33.00000000"
    # 36 significant digits: more than the default 28-digit context holds, still rounded UP.
    fine = crypto_amount(Decimal(1_000_000), Decimal(3), Decimal("1E-30"))
    assert str(fine) == "333333." + "3" * 29 + "4"
    with pytest.raises(ValueError):
        crypto_amount(Decimal(29), Decimal(0), Decimal("0.0001"))


async def test_quote_uses_one_request_for_every_configured_coin(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    btc = await quotes.quote("BTC")
    assert btc == Quote(currency="BTC", rate=Decimal(90000), ts=clock.now_ms())
    assert fake.calls == [("BTC", "ETH", "USDC", "SOL", "BNB")]  # USDT has no ticker


async def test_usdt_is_exactly_one_dollar_without_asking_the_exchange(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    assert await quotes.quote("USDT") == Quote("USDT", Decimal(1), clock.now_ms())
    assert fake.calls == []


async def test_usdc_is_priced_from_its_usdt_ticker(clock: ManualClock) -> None:
    _, quotes = make(clock)
    assert (await quotes.quote("USDC")).rate == Decimal("0.9998")


async def test_a_ticker_older_than_60_seconds_is_refused(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    fake.age_ms = {"BTC": 61_000, "ETH": 60_000}
    with pytest.raises(QuoteUnavailable, match="prices are unavailable, try again shortly"):
        await quotes.quote("BTC")
    assert (await quotes.quote("ETH")).rate == Decimal(3000)  # exactly 60 s is still fresh


async def test_a_cached_ticker_goes_stale_with_time(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    fake.age_ms = {"BTC": 55_000}
    await quotes.quote("BTC")
    clock.advance(6_000)  # still cached (10 s), but now 61 s old
    with pytest.raises(QuoteUnavailable):
        await quotes.quote("BTC")
    assert len(fake.calls) == 1


async def test_staleness_is_judged_by_okx_time(clock: ManualClock) -> None:
    okx = ExchangeClock(clock)
    okx.observe(clock.now_ms() - 30_000, clock.now_ms(), clock.now_ms())  # OKX is 30 s behind
    fake = FakeTickers(clock, dict(PRICES))
    fake.age_ms = {"BTC": 70_000}  # 70 s old by the host, 40 s by OKX
    quotes = QuoteService(fake, okx, currencies=CURRENCIES)
    assert (await quotes.quote("BTC")).rate == Decimal(90000)


async def test_the_cache_is_reused_within_cache_ms(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    await quotes.quote("BTC")
    clock.advance(9_999)
    await quotes.quote("ETH")
    await quotes.quote("SOL")
    assert len(fake.calls) == 1
    clock.advance(1)
    await quotes.quote("BTC")
    assert len(fake.calls) == 2


async def test_concurrent_quotes_share_one_request(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    fake.gate = asyncio.Event()
    tasks = [asyncio.create_task(quotes.quote(c)) for c in ("BTC", "ETH", "SOL", "BNB") * 5]
    await asyncio.sleep(0)
    fake.gate.set()
    got = await asyncio.gather(*tasks)
    assert len(fake.calls) == 1
    assert {q.currency: q.rate for q in got} == {
        "BTC": Decimal(90000),
        "ETH": Decimal(3000),
        "SOL": Decimal(150),
        "BNB": Decimal(600),
    }


async def test_callers_waiting_on_a_failed_request_share_the_failure(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    fake.gate = asyncio.Event()
    fake.fail = True
    tasks = [asyncio.create_task(quotes.quote("BTC")) for _ in range(5)]
    await asyncio.sleep(0)
    fake.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, QuoteUnavailable) for r in results)
    assert len(fake.calls) == 1
    # A later caller asks again, and gets a price once OKX is back.
    fake.fail = False
    fake.gate = None
    assert (await quotes.quote("BTC")).rate == Decimal(90000)
    assert len(fake.calls) == 2


async def test_exchange_errors_become_quote_unavailable(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    fake.fail = True
    with pytest.raises(QuoteUnavailable, match="try again shortly") as info:
        await quotes.quote("ETH")
    assert isinstance(info.value.__cause__, ExchangeUnavailable)


async def test_missing_and_non_positive_tickers_are_refused(clock: ManualClock) -> None:
    fake, quotes = make(clock)
    del fake.prices["SOL"]
    fake.prices["BNB"] = "0"
    with pytest.raises(QuoteUnavailable):
        await quotes.quote("SOL")
    with pytest.raises(QuoteUnavailable):
        await quotes.quote("BNB")
    assert (await quotes.quote("BTC")).rate == Decimal(90000)


async def test_an_unconfigured_currency_is_a_programming_error(clock: ManualClock) -> None:
    _, quotes = make(clock)
    with pytest.raises(ValueError):
        await quotes.quote("DOGE")


def test_a_clock_sample_with_a_long_round_trip_keeps_the_offset() -> None:
    """A time request that stalled, or during which the host's clock stepped, says little: the
    offset measured before stays (else a jump of a day would shift OKX time by half a day)."""
    local = ManualClock(1_000_000)
    clock = ExchangeClock(local)
    assert clock.observe(1_000_600, 1_000_000, 1_000_200) == 500  # 200 ms round trip
    assert clock.observe(5_000_000_000, 1_000_000, 1_000_000 + 86_400_000) == 500
    assert clock.observe(1_000_600, 1_000_000, 999_000) == 500  # the local clock stepped back
    assert clock.observe(1_010_000, 1_000_000, 1_009_000) == 5_500  # 9 s: still trusted
