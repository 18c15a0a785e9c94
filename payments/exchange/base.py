"""The one small interface the payments core needs from an exchange, and its data types.

Everything here is plain data: amounts are Decimal (parsed from OKX's strings, never floats),
timestamps are integer milliseconds since the epoch as OKX gives them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True)
class Ticker:
    """Last price of COIN-USDT; ``ts`` is OKX's timestamp of the ticker (ms)."""

    currency: str
    last: Decimal
    ts: int


@dataclass(frozen=True)
class ChainInfo:
    """One row of ``GET /api/v5/asset/currencies``: a currency on one chain."""

    currency: str  # "USDT"
    chain: str  # "USDT-TRC20"
    can_deposit: bool
    min_deposit: Decimal
    need_tag: bool
    withdraw_fee: Decimal | None  # OKX's own withdrawal fee on this chain (shown as an example)
    withdraw_tick: Decimal | None  # wdTickSz as a step, e.g. Decimal("0.0001")
    min_confirmations: int | None = None


@dataclass(frozen=True)
class PoolAddress:
    """One deposit address from the raw ``GET /api/v5/asset/deposit-address`` (all of them)."""

    currency: str
    chain: str
    address: str
    tag: str | None  # memo / tag / pmtId / addrEx.comment when the chain needs one
    selected: bool


@dataclass(frozen=True)
class DepositRecord:
    """One row of ``GET /api/v5/asset/deposit-history``.

    ``amount`` is OKX's canonical string parsed as Decimal (``amt``); ``state`` stays OKX's raw
    string (``"0"``, ``"2"``, ``"17"`` ...); ``type`` is ``"3"`` (internal transfer) or ``"4"``
    (on-chain). ``raw`` is the record exactly as OKX returned it.
    """

    dep_id: str
    currency: str
    chain: str
    amount: Decimal
    amount_text: str
    to_address: str
    tx_id: str
    from_wd_id: str
    type: str
    state: str
    ts: int
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class KeyInfo:
    """``GET /api/v5/account/config``: what the API key may do."""

    permissions: frozenset[str]  # {"read_only", "trade", "withdraw"}
    ip_whitelist: str  # "" when the key is not bound to any IP
    uid: str
    label: str


class Exchange(Protocol):
    """What the payments core needs from OKX. ``OkxExchange`` implements it over ccxt.

    Every method raises only :class:`payments.errors.ExchangeError` subclasses.
    """

    async def server_time_ms(self) -> int:
        """OKX's clock (``GET /api/v5/public/time``), ms since the epoch."""
        ...

    async def fetch_tickers(self, currencies: Sequence[str]) -> dict[str, Ticker]:
        """One request for the COIN-USDT tickers of ``currencies`` (USDT itself is skipped)."""
        ...

    async def fetch_chains(self, currencies: Sequence[str]) -> list[ChainInfo]:
        """Deposit status, minimum deposit, fee and tick of every chain of ``currencies``."""
        ...

    async def fetch_deposit_addresses(self, currency: str) -> list[PoolAddress]:
        """Every deposit address of ``currency`` on every chain, selected or not."""
        ...

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
        """ONE request to the deposit history, newest first (OKX's order), at most ``limit`` rows.

        ``after``: only records with ts EARLIER than this; ``before``: only records NEWER than it.
        """
        ...

    async def fetch_key_info(self) -> KeyInfo:
        """Permissions and IP binding of the API key."""
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...
