"""USD prices of the configured coins from OKX tickers, and price -> crypto amount.

"USD" is USDT: every ticker is a COIN-USDT pair, 1 USDT counts as exactly 1 USD, and USDC is
priced from USDC-USDT like any other coin. One ``fetch_tickers`` request covers every configured
currency; the answer is cached for ``cache_ms`` and concurrent callers share one request. A quote
never uses a ticker older than ``max_age_ms`` by the exchange's clock: it says "prices are
unavailable, try again shortly" rather than lock a stale rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from payments.clock import Clock, ExchangeClock
from payments.errors import ExchangeError, QuoteUnavailable
from payments.exchange.base import Exchange, Ticker
from payments.money import round_up

UNAVAILABLE = "prices are unavailable, try again shortly"
USD = "USDT"  # the coin that is the unit of account: 1 USDT = 1 USD
_PRECISION = 50  # digits for price / rate, far more than any step needs


@dataclass(frozen=True)
class Quote:
    """``rate``: USD per one coin; ``ts``: OKX's timestamp of the ticker (ms)."""

    currency: str
    rate: Decimal
    ts: int


def crypto_amount(price_usd: Decimal, rate: Decimal, step: Decimal) -> Decimal:
    """``price_usd / rate`` rounded UP to the coin's ``step`` ($29 at 90000 -> 0.00032223 BTC)."""
    if price_usd <= 0:
        raise ValueError("price must be positive")
    if not rate.is_finite() or rate <= 0:
        raise ValueError("rate must be positive")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return round_up(price_usd / rate, step)


@dataclass(frozen=True)
class _Fetch:
    """One completed request: when (exchange clock) and what came back, or why it failed."""

    at_ms: int
    tickers: dict[str, Ticker]
    failure: ExchangeError | None


class QuoteService:
    """Cached USD prices for ``currencies``; pass the ExchangeClock (OKX time) as ``clock``."""

    def __init__(
        self,
        exchange: Exchange,
        clock: Clock,
        *,
        currencies: Sequence[str],
        cache_ms: int = 10_000,
        max_age_ms: int = 60_000,
    ) -> None:
        if cache_ms < 0 or max_age_ms <= 0:
            raise ValueError("cache_ms must be >= 0 and max_age_ms > 0")
        self._exchange = exchange
        self._clock = clock
        self._currencies = tuple(dict.fromkeys(currencies))
        self._priced = tuple(c for c in self._currencies if c != USD)
        self._cache_ms = cache_ms
        self._max_age_ms = max_age_ms
        self._lock = asyncio.Lock()
        self._last: _Fetch | None = None
        self._generation = 0  # counts completed requests

    @property
    def currencies(self) -> tuple[str, ...]:
        return self._currencies

    async def quote(self, currency: str) -> Quote:
        """The USD price of one ``currency``; raises QuoteUnavailable when it is not fresh."""
        if currency not in self._currencies:
            raise ValueError(f"{currency!r} is not a configured currency")
        if currency == USD:
            return Quote(currency=USD, rate=Decimal(1), ts=self._clock.now_ms())
        tickers = await self._tickers()
        return self._check(currency, tickers.get(currency))

    def invalidate(self) -> None:
        """Forget the cached tickers (the next quote asks the exchange again)."""
        self._last = None

    async def _tickers(self) -> dict[str, Ticker]:
        cached = self._cached()
        if cached is not None:
            return cached
        seen = self._generation
        async with self._lock:
            cached = self._cached()
            if cached is not None:
                return cached
            last = self._last
            if last is not None and last.failure is not None and self._generation != seen:
                # We queued behind a request that just failed: share its answer instead of
                # sending the exchange one more request per waiting customer.
                raise QuoteUnavailable(UNAVAILABLE) from last.failure
            return await self._fetch()

    def _cached(self) -> dict[str, Ticker] | None:
        last = self._last
        if last is None or last.failure is not None:
            return None
        age = self._clock.now_ms() - last.at_ms
        if 0 <= age < self._cache_ms:
            return last.tickers
        return None

    async def _fetch(self) -> dict[str, Ticker]:
        try:
            if isinstance(self._clock, ExchangeClock) and not self._clock.synced:
                # every invoice is priced first: none is ever stamped with the host's clock
                await self._clock.sync(self._exchange.server_time_ms)
            tickers = await self._exchange.fetch_tickers(self._priced)
        except ExchangeError as exc:
            self._store(_Fetch(at_ms=self._clock.now_ms(), tickers={}, failure=exc))
            raise QuoteUnavailable(UNAVAILABLE) from exc
        got = dict(tickers)
        self._store(_Fetch(at_ms=self._clock.now_ms(), tickers=got, failure=None))
        return got

    def _store(self, fetch: _Fetch) -> None:
        self._last = fetch
        self._generation += 1

    def _check(self, currency: str, ticker: Ticker | None) -> Quote:
        if ticker is None or ticker.currency != currency:
            raise QuoteUnavailable(UNAVAILABLE)
        rate = ticker.last
        if not rate.is_finite() or rate <= 0:
            raise QuoteUnavailable(UNAVAILABLE)
        if self._clock.now_ms() - ticker.ts > self._max_age_ms:
            raise QuoteUnavailable(UNAVAILABLE)
        return Quote(currency=currency, rate=rate, ts=ticker.ts)
