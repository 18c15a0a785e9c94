"""An in-process stand-in for the Exchange protocol: every call refuses until a test's subclass
serves the one or two calls the code under test makes (no HTTP; for unit tests of one module)."""

from __future__ import annotations

from collections.abc import Sequence

from payments.exchange.base import ChainInfo, DepositRecord, KeyInfo, PoolAddress, Ticker


class StubExchange:
    async def server_time_ms(self) -> int:
        raise NotImplementedError

    async def fetch_tickers(self, currencies: Sequence[str]) -> dict[str, Ticker]:
        raise NotImplementedError

    async def fetch_chains(self, currencies: Sequence[str]) -> list[ChainInfo]:
        raise NotImplementedError

    async def fetch_deposit_addresses(self, currency: str) -> list[PoolAddress]:
        raise NotImplementedError

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
        raise NotImplementedError

    async def fetch_key_info(self) -> KeyInfo:
        raise NotImplementedError

    async def close(self) -> None:
        return None
