"""The exchange of a shop that sells for Telegram Stars only (no OKX keys): nothing calls it.

``Payments`` wired without an exchange holds this one, with ``crypto`` False: no poll, no key
check, no chain or address load, no price. Should a call reach it anyway, it raises the
exchange's own error (the caller handles that as OKX being away) and sends no request.
"""

from __future__ import annotations

from collections.abc import Sequence

from payments.errors import ExchangeUnavailable
from payments.exchange.base import ChainInfo, DepositRecord, KeyInfo, PoolAddress, Ticker

NO_EXCHANGE = "no OKX keys are set: this shop sells for Telegram Stars only"


class NoExchange:
    async def server_time_ms(self) -> int:
        raise ExchangeUnavailable(NO_EXCHANGE)

    async def fetch_tickers(self, currencies: Sequence[str]) -> dict[str, Ticker]:
        raise ExchangeUnavailable(NO_EXCHANGE)

    async def fetch_chains(self, currencies: Sequence[str]) -> list[ChainInfo]:
        raise ExchangeUnavailable(NO_EXCHANGE)

    async def fetch_deposit_addresses(self, currency: str) -> list[PoolAddress]:
        raise ExchangeUnavailable(NO_EXCHANGE)

    async def fetch_deposit_history(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
        dep_id: str | None = None,
        tx_id: str | None = None,
        currency: str | None = None,
    ) -> list[DepositRecord]:
        raise ExchangeUnavailable(NO_EXCHANGE)

    async def fetch_key_info(self) -> KeyInfo:
        raise ExchangeUnavailable(NO_EXCHANGE)

    async def close(self) -> None:
        return None
