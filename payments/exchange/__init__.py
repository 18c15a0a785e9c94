"""Access to the exchange: the :class:`Exchange` protocol, its data types and OKX."""

from payments.exchange.absent import NoExchange
from payments.exchange.base import (
    ChainInfo,
    DepositRecord,
    Exchange,
    KeyInfo,
    PoolAddress,
    Ticker,
)
from payments.exchange.okx import OkxExchange, check_api_key
from payments.exchange.simulated import SimulatedExchange

__all__ = [
    "ChainInfo",
    "DepositRecord",
    "Exchange",
    "KeyInfo",
    "NoExchange",
    "OkxExchange",
    "PoolAddress",
    "SimulatedExchange",
    "Ticker",
    "check_api_key",
]
