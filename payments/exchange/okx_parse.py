"""Pure parsing of OKX v5 answers into the exchange data classes (no I/O, unit-testable).

Every amount is OKX's string parsed with ``Decimal`` (a float is refused: it would already have
lost digits). Malformed input raises :class:`payments.errors.ExchangeDataError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from payments.errors import ExchangeDataError, ExchangeError
from payments.exchange.base import ChainInfo, DepositRecord, KeyInfo, PoolAddress, Ticker

log = logging.getLogger(__name__)
T = TypeVar("T")


def _field(row: Mapping[str, Any], key: str) -> Any:
    if key not in row:
        raise ExchangeDataError(f"OKX row has no {key!r}")
    return row[key]


def _text(row: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    """A string field; optional fields may be missing (-> "")."""
    if key not in row and not required:
        return ""
    value = _field(row, key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ExchangeDataError(f"OKX field {key!r} is not text: {value!r}")
    text = str(value)
    if required and not text:
        raise ExchangeDataError(f"OKX field {key!r} is empty")
    return text


def _decimal(row: Mapping[str, Any], key: str) -> Decimal:
    """An amount given as a string (a float would already have lost digits: refused)."""
    value = _field(row, key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ExchangeDataError(f"OKX amount {key!r} is not a string: {value!r}")
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ExchangeDataError(f"OKX amount {key!r} is not a number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ExchangeDataError(f"OKX amount {key!r} is not a finite, non-negative number")
    return number


def _optional_decimal(row: Mapping[str, Any], key: str) -> Decimal | None:
    return _decimal(row, key) if row.get(key) not in (None, "") else None


def parse_integer(row: Mapping[str, Any], key: str) -> int:
    text = _text(row, key)
    if not text.isdigit():
        raise ExchangeDataError(f"OKX field {key!r} is not an integer: {text!r}")
    return int(text)


def _flag(row: Mapping[str, Any], key: str) -> bool:
    value = _field(row, key)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ExchangeDataError(f"OKX flag {key!r} is not a boolean: {value!r}")


def tick_from_wd_tick_sz(text: str) -> Decimal:
    """OKX's ``wdTickSz`` is a NUMBER OF DECIMALS ("4" -> 0.0001), as ccxt reads it too.

    A value with a decimal point is taken as the step itself (not documented; tolerated).
    """
    if text.isdigit():
        return Decimal(1).scaleb(-int(text))
    try:
        step = Decimal(text)
    except InvalidOperation:
        raise ExchangeDataError(f"OKX wdTickSz is not a number: {text!r}") from None
    if "." not in text or not step.is_finite() or step <= 0:
        raise ExchangeDataError(f"OKX wdTickSz is not a decimals count: {text!r}")
    return step


def parse_ticker(row: Mapping[str, Any]) -> Ticker:
    """A ``market/ticker(s)`` row of COIN-USDT."""
    base, _, quote = _text(row, "instId").partition("-")
    if not base or quote != "USDT":
        raise ExchangeDataError(f"not a COIN-USDT ticker: {row.get('instId')!r}")
    last = _decimal(row, "last")
    if last <= 0:
        raise ExchangeDataError(f"OKX ticker {base}-USDT has no positive last price")
    return Ticker(currency=base, last=last, ts=parse_integer(row, "ts"))


def parse_chain(row: Mapping[str, Any]) -> ChainInfo:
    """An ``asset/currencies`` row (one currency on one chain)."""
    tick = row.get("wdTickSz")
    confirmations = row.get("minDepArrivalConfirm")
    fee = _optional_decimal(row, "fee")
    return ChainInfo(
        currency=_text(row, "ccy"),
        chain=_text(row, "chain"),
        can_deposit=_flag(row, "canDep"),
        min_deposit=_decimal(row, "minDep"),
        need_tag=_flag(row, "needTag"),
        withdraw_fee=fee if fee is not None else _optional_decimal(row, "minFee"),
        withdraw_tick=tick_from_wd_tick_sz(str(tick)) if tick not in (None, "") else None,
        min_confirmations=(
            parse_integer(row, "minDepArrivalConfirm") if confirmations not in (None, "") else None
        ),
    )


def parse_address(row: Mapping[str, Any]) -> PoolAddress:
    """An ``asset/deposit-address`` row; the tag as ccxt reads it (tag, pmtId, memo, addrEx)."""
    tag: str | None = None
    extra = row.get("addrEx")
    candidates = [row.get("tag"), row.get("pmtId"), row.get("memo")]
    if isinstance(extra, Mapping):
        candidates.append(extra.get("comment"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            tag = candidate
            break
    selected = _flag(row, "selected") if "selected" in row else False
    return PoolAddress(
        currency=_text(row, "ccy"),
        chain=_text(row, "chain"),
        address=_text(row, "addr"),
        tag=tag,
        selected=selected,
    )


def parse_deposit(row: Mapping[str, Any]) -> DepositRecord:
    """An ``asset/deposit-history`` row. ``state`` stays OKX's raw string.

    OKX's rows carry no ``type`` (it is only a request filter): an internal transfer is
    recognised by its empty ``to`` (a ``type`` field, should OKX add one, wins).
    """
    amount_text = _text(row, "amt")
    to_address = _text(row, "to", required=False)
    raw_type = row.get("type")
    kind = raw_type if raw_type in ("3", "4") else ("3" if to_address == "" else "4")
    return DepositRecord(
        dep_id=_text(row, "depId"),
        currency=_text(row, "ccy"),
        chain=_text(row, "chain", required=False),
        amount=_decimal(row, "amt"),
        amount_text=amount_text,
        to_address=to_address,
        tx_id=_text(row, "txId", required=False),
        from_wd_id=_text(row, "fromWdId", required=False),
        type=str(kind),
        state=_text(row, "state"),
        ts=parse_integer(row, "ts"),
        raw=dict(row),
    )


def parse_key_info(row: Mapping[str, Any]) -> KeyInfo:
    """The ``account/config`` row: ``perm`` is a comma list (read_only, trade, withdraw)."""
    perm = _text(row, "perm")
    return KeyInfo(
        permissions=frozenset(p.strip() for p in perm.split(",") if p.strip()),
        ip_whitelist=_text(row, "ip", required=False),
        uid=_text(row, "uid", required=False),
        label=_text(row, "label", required=False),
    )


def envelope_rows(response: Any) -> list[dict[str, Any]]:
    """``data`` of an OKX envelope ``{"code": "0", "msg": "", "data": [...]}``."""
    if not isinstance(response, Mapping):
        raise ExchangeDataError(f"OKX answered something that is not JSON: {type(response)}")
    if str(response.get("code")) != "0":
        raise ExchangeError(f"OKX answered code {response.get('code')!r}")
    data = response.get("data")
    if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
        raise ExchangeDataError("OKX answered an envelope whose data is not a list of records")
    return [dict(r) for r in data]


def parse_lenient(
    rows: Iterable[Mapping[str, Any]], parse: Callable[[Any], T], what: str
) -> list[T]:
    """Parse rows, skipping (and logging) malformed ones; all of them malformed is an error.

    Used where leaving a row out is the safe direction (no price, no chain, no address: no
    invoice), never for deposits, where a skipped row would break paging.
    """
    parsed, errors = [], []
    for row in rows:
        try:
            parsed.append(parse(row))
        except ExchangeDataError as exc:
            errors.append(str(exc))
    if errors:
        log.warning("skipped %d malformed OKX %s row(s): %s", len(errors), what, errors[:3])
        if not parsed:
            raise ExchangeDataError(f"every OKX {what} row was malformed: {errors[0]}")
    return parsed
