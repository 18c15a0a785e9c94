"""Access to the exchange: the :class:`Exchange` protocol, its data types and OKX."""

from payments.exchange.base import (
    ChainInfo,
    DepositRecord,
    Exchange,
    KeyInfo,
    PoolAddress,
    Ticker,
)

__all__ = ["ChainInfo", "DepositRecord", "Exchange", "KeyInfo", "PoolAddress", "Ticker"]
