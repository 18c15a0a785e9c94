"""The data behind the fake OKX and the controls tests use to change it (thread-safe).

The HTTP layer (:mod:`fakes.okx`) reads rows from here; tests call the ``add_*`` /
``set_*`` methods from any thread while the server runs in its own.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fakes import okx_data
from payments.clock import Clock

ClockLike = Callable[[], int] | Clock  # a callable returning ms, or e.g. a ManualClock


class OkxParamError(Exception):
    """A request parameter OKX would refuse (answered with ``code`` / ``msg``)."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass
class _Deposit:
    type: str  # "3" internal transfer, "4" on-chain: a request filter, not a response field
    row: dict[str, Any]


def _money_text(value: str | Decimal | int) -> str:
    if isinstance(value, float):  # never floats, even in tests
        raise TypeError("amounts must be given as str, Decimal or int")
    return str(value)


def _real_now_ms() -> int:
    return time.time_ns() // 1_000_000


class OkxState:
    """Currencies, addresses, tickers, deposits and the API key of one fake OKX account."""

    def __init__(self, clock: ClockLike | None = None) -> None:
        self._clock: Callable[[], int]
        if clock is None:
            self._clock = _real_now_ms
        elif callable(clock):
            self._clock = clock
        else:
            self._clock = clock.now_ms
        self._lock = threading.RLock()
        self._currencies: dict[str, dict[str, Any]] = {
            spec.chain: okx_data.currency_row(spec) for spec in okx_data.CHAINS
        }
        self._addresses: list[dict[str, Any]] = okx_data.default_address_rows()
        self._prices: dict[str, tuple[str, int | None]] = {
            inst: (last, None) for inst, last in okx_data.PRICES.items()
        }
        self._deposits: list[_Deposit] = []
        self._next_dep_id = 180_000_001
        self._perm = "read_only"
        self._ip = "203.0.113.7"

    def now_ms(self) -> int:
        """The fake's clock (shared with the code under test when a clock was given)."""
        return int(self._clock())

    # --- controls ----------------------------------------------------------------------------

    def add_deposit(
        self,
        ccy: str,
        chain: str,
        amt: str | Decimal | int,
        *,
        to: str | None = None,
        tx_id: str | None = None,
        type: str = "4",
        state: str = "2",
        ts: int | None = None,
        from_wd_id: str | None = None,
        dep_id: str | None = None,
        sender: str | None = None,
        confirmations: int | None = None,
    ) -> str:
        """Add a deposit record; returns its ``depId``.

        On-chain (``type="4"``): ``to`` defaults to the chain's selected address, ``tx_id`` to a
        random hash. Internal transfer (``type="3"``): ``to`` is "", ``tx_id`` "", ``from`` a
        masked e-mail and ``fromWdId`` the sender's withdrawal id (random unless given).
        """
        if type not in ("3", "4"):
            raise ValueError("type must be '3' (internal) or '4' (on-chain)")
        internal = type == "3"
        with self._lock:
            if dep_id is None:
                dep_id = str(self._next_dep_id)
                self._next_dep_id += 1
            elif any(d.row["depId"] == dep_id for d in self._deposits):
                raise ValueError(f"depId {dep_id} already exists")
            if to is None:
                to = "" if internal else self._selected_address(ccy, chain)
            if tx_id is None:
                tx_id = "" if internal else secrets.token_hex(32)
            if from_wd_id is None:
                from_wd_id = str(secrets.randbelow(10**8) + 10**8) if internal else ""
            if sender is None:
                sender = "sub***@example.com" if internal else ""
            if confirmations is None:
                confirmations = self._confirmations(chain, state) if not internal else 0
            row = {
                "actualDepBlkConfirm": str(confirmations),
                "amt": _money_text(amt),
                "areaCodeFrom": "",
                "ccy": ccy,
                "chain": chain,
                "depId": dep_id,
                "from": sender,
                "fromWdId": from_wd_id,
                "state": state,
                "to": to,
                "ts": str(self.now_ms() if ts is None else ts),
                "txId": tx_id,
            }
            self._deposits.append(_Deposit(type=type, row=row))
            return dep_id

    def set_deposit(
        self,
        dep_id: str,
        *,
        state: str | None = None,
        amt: str | Decimal | int | None = None,
        confirmations: int | None = None,
        ts: int | None = None,
    ) -> None:
        """Change a deposit as OKX would (its state moves on; rarely its amount)."""
        with self._lock:
            row = self._deposit(dep_id).row
            if state is not None:
                row["state"] = state
            if amt is not None:
                row["amt"] = _money_text(amt)
            if confirmations is not None:
                row["actualDepBlkConfirm"] = str(confirmations)
            if ts is not None:
                row["ts"] = str(ts)

    def remove_deposit(self, dep_id: str) -> None:
        """OKX stops returning a record (a reorg, a reversed credit)."""
        with self._lock:
            self._deposits.remove(self._deposit(dep_id))

    def deposit_rows(self) -> list[dict[str, Any]]:
        """Copies of every deposit row, in insertion order."""
        with self._lock:
            return [copy.deepcopy(d.row) for d in self._deposits]

    def set_price(self, ccy: str, last: str | Decimal | int, ts: int | None = None) -> None:
        """Set the last price of ``ccy``-USDT (or of an instId like "ETH-BTC").

        ``ts=None``: the ticker's ``ts`` follows the fake's clock (a live ticker); an explicit
        ``ts`` freezes it (a stale ticker).
        """
        inst_id = ccy if "-" in ccy else f"{ccy}-USDT"
        with self._lock:
            self._prices[inst_id] = (_money_text(last), ts)

    def remove_price(self, ccy: str) -> None:
        inst_id = ccy if "-" in ccy else f"{ccy}-USDT"
        with self._lock:
            self._prices.pop(inst_id, None)

    def set_permissions(self, perm: str, ip: str = "") -> None:
        """The key's ``perm`` (e.g. "read_only,withdraw") and bound ``ip`` ("" = none)."""
        with self._lock:
            self._perm = perm
            self._ip = ip

    def set_chain(
        self,
        chain: str,
        *,
        can_dep: bool | None = None,
        can_wd: bool | None = None,
        min_dep: str | None = None,
        fee: str | None = None,
        wd_tick: str | None = None,
        need_tag: bool | None = None,
        min_confirm: str | None = None,
    ) -> None:
        """Change one chain's row of ``/asset/currencies`` (``wd_tick`` in decimals, e.g. "4")."""
        with self._lock:
            row = self._currencies[chain]
            updates: Mapping[str, Any] = {
                "canDep": can_dep,
                "canWd": can_wd,
                "minDep": min_dep,
                "fee": fee,
                "minFee": fee,
                "maxFee": fee,
                "wdTickSz": wd_tick,
                "needTag": need_tag,
                "minDepArrivalConfirm": min_confirm,
            }
            for key, value in updates.items():
                if value is not None:
                    row[key] = value

    def set_chain_field(self, chain: str, field: str, value: Any) -> None:
        """Set any raw field of a chain's row (e.g. to serve something malformed)."""
        with self._lock:
            self._currencies[chain][field] = value

    def add_address(
        self, ccy: str, chain: str, addr: str, selected: bool = False, tag: str | None = None
    ) -> None:
        """Add a deposit address; ``selected=True`` unselects the chain's other addresses."""
        with self._lock:
            if selected:
                for row in self._addresses:
                    if row["ccy"] == ccy and row["chain"] == chain:
                        row["selected"] = False
            ct_addr = str(self._currencies.get(chain, {}).get("ctAddr", ""))
            self._addresses.append(
                okx_data.address_row(ccy, chain, addr, selected=selected, tag=tag, ct_addr=ct_addr)
            )

    # --- what the endpoints serve -------------------------------------------------------------

    def currency_rows(self, ccys: set[str] | None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(row)
                for row in self._currencies.values()
                if ccys is None or row["ccy"] in ccys
            ]

    def address_rows(self, ccy: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(row) for row in self._addresses if row["ccy"] == ccy]

    def ticker_rows(self) -> list[dict[str, Any]]:
        now = self.now_ms()
        with self._lock:
            return [
                okx_data.ticker_row(inst, last, now if ts is None else ts)
                for inst, (last, ts) in self._prices.items()
            ]

    def instrument_rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [okx_data.instrument_row(inst) for inst in self._prices]

    def account_row(self) -> dict[str, Any]:
        with self._lock:
            return okx_data.account_config_row(self._perm, self._ip)

    def deposit_history(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v5/asset/deposit-history``: filters, then newest first, at most ``limit``."""
        limit = _int_param(params, "limit")
        limit = 100 if limit is None else limit
        if limit < 1:
            raise OkxParamError("51000", "Parameter limit error")
        limit = min(limit, 100)
        after = _int_param(params, "after")
        before = _int_param(params, "before")
        exact = {
            "ccy": params.get("ccy"),
            "depId": params.get("depId"),
            "fromWdId": params.get("fromWdId"),
            "txId": params.get("txId"),
            "state": params.get("state"),
        }
        wanted_type = params.get("type")
        with self._lock:
            rows = []
            for dep in self._deposits:
                row = dep.row
                if wanted_type and dep.type != wanted_type:
                    continue
                if any(value and row[key] != value for key, value in exact.items()):
                    continue
                ts = int(row["ts"])
                if after is not None and ts >= after:
                    continue
                if before is not None and ts <= before:
                    continue
                rows.append(copy.deepcopy(row))
        rows.sort(key=lambda r: (int(r["ts"]), int(r["depId"])), reverse=True)
        return rows[:limit]

    # --- helpers ------------------------------------------------------------------------------

    def _deposit(self, dep_id: str) -> _Deposit:
        for dep in self._deposits:
            if dep.row["depId"] == dep_id:
                return dep
        raise KeyError(f"no deposit with depId {dep_id}")

    def _selected_address(self, ccy: str, chain: str) -> str:
        for row in self._addresses:
            if row["ccy"] == ccy and row["chain"] == chain and row["selected"]:
                return str(row["addr"])
        return okx_data.fake_address(okx_data.address_kind(chain), f"unknown/{chain}")

    def _confirmations(self, chain: str, state: str) -> int:
        row = self._currencies.get(chain)
        if row is None or state == "0":
            return 0
        return int(row["minWdUnlockConfirm"] if state == "2" else row["minDepArrivalConfirm"])


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise OkxParamError("51000", f"Parameter {name} error") from None
