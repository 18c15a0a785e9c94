"""Pure parts of the OKX adapter: row parsing, ccxt error mapping, the API key check."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from payments.errors import (
    ExchangeAuthError,
    ExchangeDataError,
    ExchangeError,
    ExchangeRateLimited,
    ExchangeUnavailable,
    UnsafeApiKey,
)
from payments.exchange import KeyInfo, check_api_key
from payments.exchange.okx import map_ccxt_error
from payments.exchange.okx_parse import (
    envelope_rows,
    parse_address,
    parse_chain,
    parse_deposit,
    parse_key_info,
    parse_lenient,
    parse_ticker,
    tick_from_wd_tick_sz,
)

DEPOSIT: dict[str, Any] = {
    "actualDepBlkConfirm": "19",
    "amt": "29.00370",
    "areaCodeFrom": "",
    "ccy": "USDT",
    "chain": "USDT-TRC20",
    "depId": "180000001",
    "from": "",
    "fromWdId": "",
    "state": "17",
    "to": "TN4hGjVXMzy5qQ3dTz8cWKT3d3Ya9b4N1a",
    "ts": "1790000000000",
    "txId": "fee235b3e812aa",
}


def test_deposit_keeps_okx_strings() -> None:
    record = parse_deposit(DEPOSIT)
    assert record.amount == Decimal("29.0037") and record.amount_text == "29.00370"
    assert (record.state, record.type, record.ts) == ("17", "4", 1_790_000_000_000)
    assert record.raw == DEPOSIT and record.raw is not DEPOSIT


def test_deposit_without_to_is_an_internal_transfer() -> None:
    record = parse_deposit({**DEPOSIT, "to": "", "txId": "", "fromWdId": "123"})
    assert (record.type, record.from_wd_id) == ("3", "123")


@pytest.mark.parametrize(
    "broken",
    [
        {"amt": 29.0037},  # a float: digits may already be lost
        {"amt": ""},
        {"amt": "NaN"},
        {"amt": "-1"},
        {"depId": ""},
        {"ts": "17900e9"},
        {"state": None},
    ],
)
def test_malformed_deposit_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ExchangeDataError):
        parse_deposit({**DEPOSIT, **broken})


def test_missing_required_field_is_refused() -> None:
    row = dict(DEPOSIT)
    del row["depId"]
    with pytest.raises(ExchangeDataError, match="depId"):
        parse_deposit(row)


@pytest.mark.parametrize(
    ("text", "step"),
    [("8", "0.00000001"), ("4", "0.0001"), ("0", "1"), ("0.001", "0.001")],
)
def test_wd_tick_sz_is_a_decimals_count(text: str, step: str) -> None:
    assert tick_from_wd_tick_sz(text) == Decimal(step)


@pytest.mark.parametrize("text", ["abc", "-2", "1e-4"])
def test_bad_wd_tick_sz(text: str) -> None:
    with pytest.raises(ExchangeDataError):
        tick_from_wd_tick_sz(text)


def test_chain_without_optional_fields() -> None:
    row = {"ccy": "ETH", "chain": "ETH-ERC20", "canDep": "false", "minDep": "0.001"}
    chain = parse_chain({**row, "needTag": False})
    assert chain.can_deposit is False
    assert (chain.withdraw_fee, chain.withdraw_tick, chain.min_confirmations) == (None, None, None)
    with pytest.raises(ExchangeDataError, match="needTag"):
        parse_chain(row)


@pytest.mark.parametrize(
    ("extra", "tag"),
    [
        ({}, None),
        ({"tag": "", "memo": ""}, None),
        ({"pmtId": "77", "memo": "88"}, "77"),
        ({"memo": "88"}, "88"),
        ({"addrEx": {"comment": "123456"}}, "123456"),
    ],
)
def test_address_tag_like_ccxt(extra: dict[str, Any], tag: str | None) -> None:
    row = {"ccy": "TON", "chain": "TON-TON", "addr": "UQabc", "selected": True, **extra}
    assert parse_address(row).tag == tag


def test_ticker_must_be_coin_usdt_with_a_positive_price() -> None:
    row = {"instId": "BTC-USDT", "last": "90000.1", "ts": "1790000000000"}
    assert parse_ticker(row).last == Decimal("90000.1")
    for bad in ({"instId": "ETH-BTC"}, {"last": "0"}, {"last": ""}):
        with pytest.raises(ExchangeDataError):
            parse_ticker({**row, **bad})


def test_lenient_parsing_skips_bad_rows_but_not_all() -> None:
    good = {"instId": "BTC-USDT", "last": "1", "ts": "1"}
    bad = {"instId": "ETH-USDT", "last": "x", "ts": "1"}
    assert [t.currency for t in parse_lenient([good, bad], parse_ticker, "ticker")] == ["BTC"]
    with pytest.raises(ExchangeDataError):
        parse_lenient([bad], parse_ticker, "ticker")
    assert parse_lenient([], parse_ticker, "ticker") == []


def test_key_info() -> None:
    info = parse_key_info({"perm": "read_only, withdraw", "ip": "", "uid": "1", "label": "x"})
    assert info.permissions == frozenset({"read_only", "withdraw"})
    with pytest.raises(ExchangeDataError):
        parse_key_info({"ip": ""})


@pytest.mark.parametrize(
    "response",
    ["<html>", None, {"code": "0", "data": {}}, {"code": "0", "data": ["x"]}, {"code": "0"}],
)
def test_envelope_must_hold_a_list_of_records(response: Any) -> None:
    with pytest.raises(ExchangeDataError):
        envelope_rows(response)


def test_envelope_with_error_code() -> None:
    with pytest.raises(ExchangeError):
        envelope_rows({"code": "51000", "msg": "Parameter limit error", "data": []})


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ccxt.RateLimitExceeded, ExchangeRateLimited),
        (ccxt.DDoSProtection, ExchangeRateLimited),
        (ccxt.RequestTimeout, ExchangeUnavailable),
        (ccxt.ExchangeNotAvailable, ExchangeUnavailable),
        (ccxt.OnMaintenance, ExchangeUnavailable),
        (ccxt.NetworkError, ExchangeUnavailable),
        (ccxt.InvalidNonce, ExchangeUnavailable),
        (ccxt.AuthenticationError, ExchangeAuthError),
        (ccxt.PermissionDenied, ExchangeAuthError),
        (ccxt.AccountSuspended, ExchangeAuthError),
        (ccxt.BadResponse, ExchangeDataError),
        (ccxt.BadRequest, ExchangeError),
        (ccxt.ExchangeError, ExchangeError),
        (RuntimeError, ExchangeError),
    ],
)
def test_ccxt_errors_map_to_payments_errors(
    error: type[Exception], expected: type[ExchangeError]
) -> None:
    mapped = map_ccxt_error(error('okx {"code":"50000","msg":"x","data":[]}'))
    assert type(mapped) is expected


def test_mapped_messages_are_redacted_and_readable() -> None:
    exc = ccxt.AuthenticationError('okx s3cret-p4ss {"code":"50113","msg":"Invalid Sign"}')
    mapped = map_ccxt_error(exc, ("s3cret-p4ss",))
    assert "s3cret-p4ss" not in str(mapped)
    assert "OKX code 50113: Invalid Sign" in str(mapped)
    long = map_ccxt_error(ccxt.ExchangeNotAvailable("okx GET http://x 500 " + "y" * 5000))
    assert "ExchangeNotAvailable" in str(long) and len(str(long)) < 400


def key(perm: str, ip: str = "203.0.113.7") -> KeyInfo:
    return KeyInfo(permissions=frozenset(perm.split(",")), ip_whitelist=ip, uid="1", label="l")


def test_check_api_key_refuses_money_moving_permissions() -> None:
    with pytest.raises(UnsafeApiKey) as refused:
        check_api_key(key("read_only,withdraw,trade"), allow_unsafe=False)
    message = str(refused.value)
    assert '"withdraw"' in message and '"trade"' in message
    assert "ALLOW_UNSAFE_API_KEY" in message


def test_check_api_key_warnings() -> None:
    assert check_api_key(key("read_only"), allow_unsafe=False) == []
    unsafe = check_api_key(key("read_only,withdraw", ip=""), allow_unsafe=True)
    assert len(unsafe) == 2
    assert "withdraw" in unsafe[0] and "IP whitelist" in unsafe[1]
    assert "unknown" in check_api_key(key("read_only,earn"), allow_unsafe=False)[0]
