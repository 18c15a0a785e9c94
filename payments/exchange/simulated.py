"""The exchange of a shop in test mode (``OKX_MODE=simulated``): no OKX, no keys, no money.

It implements the same :class:`~payments.exchange.base.Exchange` protocol as ``OkxExchange``,
in process: every coin and chain of the plans file can take deposits, each chain has a few
stable, obviously fake deposit addresses (``TEST-USDT-TRC20-1``), prices are fixed, and the
deposit history is exactly what admins simulated with ``/simulate_deposit``
(:meth:`add_deposit`), stored in the ``simulated_deposits`` table so a rehearsal survives a
restart. The poll reads that history like OKX's and settles it like a real deposit.

    exchange = SimulatedExchange(catalog)
    payments = await Payments.open(database_url=..., exchange=exchange, catalog=catalog)
    record = await exchange.add_deposit(currency="USDT", chain="USDT-TRC20", ...)
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from decimal import Decimal

from sqlalchemy import select

from payments.catalog import Catalog
from payments.clock import Clock, SystemClock
from payments.errors import ExchangeUnavailable
from payments.exchange.base import ChainInfo, DepositRecord, KeyInfo, PoolAddress, Ticker
from payments.rails import SIMULATED_LINE
from payments.storage import Database
from payments.storage.schema import simulated_deposits

ADDRESS_PREFIX = "TEST"
TX_PREFIX = "test-"
ADDRESSES_PER_CHAIN = 5
CREDITED = "2"  # OKX's state of a credited deposit
ON_CHAIN = "4"
# fixed USD prices; a coin not listed costs 1 USD (USDT itself needs no ticker)
PRICES: dict[str, Decimal] = {
    "USDC": Decimal(1),
    "DAI": Decimal(1),
    "BTC": Decimal(60000),
    "ETH": Decimal(3000),
    "SOL": Decimal(150),
    "BNB": Decimal(600),
    "TON": Decimal(5),
    "TRX": Decimal("0.25"),
    "LTC": Decimal(80),
}


def test_address(chain: str, number: int) -> str:
    """``TEST-USDT-TRC20-1``: a deposit address nobody could mistake for a real one."""
    return f"{ADDRESS_PREFIX}-{chain.upper()}-{number}"


class SimulatedExchange:
    """The in-process exchange of test mode; :meth:`bind` gives it the shop's database (the
    composition root does it), where the simulated deposits live."""

    def __init__(self, catalog: Catalog, *, clock: Clock | None = None) -> None:
        self.catalog = catalog
        self.clock = clock or SystemClock()
        self._db: Database | None = None

    def bind(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        if self._db is None:
            raise ExchangeUnavailable("the simulated exchange has no database yet")
        return self._db

    async def server_time_ms(self) -> int:
        return self.clock.now_ms()

    async def fetch_tickers(self, currencies: Sequence[str]) -> dict[str, Ticker]:
        now = self.clock.now_ms()
        return {
            currency: Ticker(currency=currency, last=PRICES.get(currency, Decimal(1)), ts=now)
            for currency in currencies
            if currency != "USDT"
        }

    async def fetch_chains(self, currencies: Sequence[str]) -> list[ChainInfo]:
        wanted = set(currencies)
        return [
            ChainInfo(
                currency=coin.symbol,
                chain=network.chain,
                can_deposit=True,
                min_deposit=coin.step,
                need_tag=False,
                withdraw_fee=None,
                withdraw_tick=coin.step,
                min_confirmations=1,
            )
            for coin in self.catalog.coins
            if coin.symbol in wanted
            for network in coin.networks
        ]

    async def fetch_deposit_addresses(self, currency: str) -> list[PoolAddress]:
        coin = self.catalog.coin(currency)
        if coin is None:
            return []
        return [
            PoolAddress(
                currency=currency,
                chain=network.chain,
                address=test_address(network.chain, number),
                tag=None,
                selected=number == 1,
            )
            for network in coin.networks
            for number in range(1, ADDRESSES_PER_CHAIN + 1)
        ]

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
        c = simulated_deposits.c
        query = select(simulated_deposits).order_by(c.ts.desc(), c.dep_id.desc()).limit(limit)
        if after is not None:
            query = query.where(c.ts < after)
        if before is not None:
            query = query.where(c.ts > before)
        if dep_id is not None:
            query = query.where(c.dep_id == dep_id)
        if tx_id is not None:
            query = query.where(c.tx_id == tx_id)
        if currency is not None:
            query = query.where(c.currency == currency)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_record(dict(row)) for row in rows]

    async def fetch_key_info(self) -> KeyInfo:
        return KeyInfo(
            permissions=frozenset({"read_only"}),
            ip_whitelist="127.0.0.1",
            uid="simulated",
            label=SIMULATED_LINE,
        )

    async def add_deposit(
        self,
        *,
        currency: str,
        chain: str,
        amount: Decimal,
        to_address: str,
        memo: str | None = None,
    ) -> DepositRecord:
        """A credited on-chain deposit, as if someone had paid ``amount`` to ``to_address``;
        the next poll reads it. A generated tx hash starting with ``test-``."""
        now = self.clock.now_ms()
        row = {
            "dep_id": f"sim{now}{secrets.token_hex(4)}",
            "currency": currency,
            "chain": chain,
            "amount": str(amount),
            "to_address": to_address,
            "memo": memo,
            "tx_id": TX_PREFIX + secrets.token_hex(29),
            "ts": now,
        }
        async with self.db.transaction() as conn:
            await conn.execute(simulated_deposits.insert().values(**row))
        return _record(row)

    async def close(self) -> None:
        return None


def _record(row: Mapping[str, object]) -> DepositRecord:
    amount = str(row["amount"])
    ts = int(str(row["ts"]))
    raw: dict[str, object] = {
        "amt": amount,
        "ccy": row["currency"],
        "chain": row["chain"],
        "depId": row["dep_id"],
        "state": CREDITED,
        "to": row["to_address"],
        "ts": str(ts),
        "txId": row["tx_id"],
        "fromWdId": "",
        "actualDepBlkConfirm": "1",
    }
    if row.get("memo"):
        raw["memo"] = row["memo"]
    return DepositRecord(
        dep_id=str(row["dep_id"]),
        currency=str(row["currency"]),
        chain=str(row["chain"]),
        amount=Decimal(amount),
        amount_text=amount,
        to_address=str(row["to_address"]),
        tx_id=str(row["tx_id"]),
        from_wd_id="",
        type=ON_CHAIN,
        state=CREDITED,
        ts=ts,
        raw=raw,
    )
