"""Default data of the fake OKX: currencies per chain, deposit addresses, spot tickers.

Every row uses OKX v5's real field names and types: numbers are strings, flags (``canDep``,
``needTag``, ``selected`` ...) are JSON booleans. ``wdTickSz`` is what OKX documents: the NUMBER OF
DECIMALS allowed for withdrawals ("4" means steps of 0.0001), not the step itself.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _chars(label: str, alphabet: str, length: int) -> str:
    """Deterministic pseudo-random text over ``alphabet`` (looks like a real address)."""
    out: list[str] = []
    counter = 0
    while len(out) < length:
        digest = hashlib.sha256(f"{label}/{counter}".encode()).digest()
        out.extend(alphabet[b % len(alphabet)] for b in digest)
        counter += 1
    return "".join(out[:length])


def fake_address(kind: str, label: str) -> str:
    """A realistic-looking address of a chain family: btc, evm, tron, solana, ton."""
    if kind == "btc":
        return "bc1q" + _chars(label, _BECH32, 38)
    if kind == "evm":
        return "0x" + hashlib.sha256(label.encode()).hexdigest()[:40]
    if kind == "tron":
        return "T" + _chars(label, _BASE58, 33)
    if kind == "solana":
        return _chars(label, _BASE58, 44)
    if kind == "ton":
        return "UQ" + _chars(label, _BASE64URL, 46)
    raise ValueError(f"unknown address kind {kind!r}")


class ChainSpec(NamedTuple):
    ccy: str
    chain: str
    name: str
    kind: str  # address family
    ct_addr: str  # last 6 chars of the token contract, "" for a native coin
    main_net: bool
    min_dep: str
    wd_tick: str  # decimals, as OKX returns it
    fee: str
    min_wd: str
    arrival_confirm: str
    unlock_confirm: str
    need_tag: bool = False


CHAINS: tuple[ChainSpec, ...] = (
    ChainSpec(
        "BTC",
        "BTC-Bitcoin",
        "Bitcoin",
        "btc",
        "",
        True,
        "0.00005",
        "8",
        "0.0001",
        "0.0005",
        "1",
        "2",
    ),
    ChainSpec(
        "ETH", "ETH-ERC20", "Ethereum", "evm", "", True, "0.001", "8", "0.0012", "0.005", "64", "64"
    ),
    ChainSpec(
        "USDT", "USDT-TRC20", "Tether", "tron", "gjLj6t", False, "0.1", "4", "1.5", "2", "19", "19"
    ),
    ChainSpec(
        "USDT", "USDT-ERC20", "Tether", "evm", "831ec7", False, "1", "4", "3.5", "5", "64", "64"
    ),
    ChainSpec(
        "USDT", "USDT-BSC", "Tether", "evm", "197955", False, "0.1", "4", "0.3", "2", "15", "15"
    ),
    ChainSpec(
        "USDT", "USDT-Solana", "Tether", "solana", "enwNYB", False, "0.1", "4", "1", "2", "32", "32"
    ),
    ChainSpec(
        "USDC", "USDC-ERC20", "USD Coin", "evm", "06eB48", False, "1", "4", "3.5", "5", "64", "64"
    ),
    ChainSpec(
        "USDC",
        "USDC-Solana",
        "USD Coin",
        "solana",
        "yTDt1v",
        False,
        "0.1",
        "4",
        "1",
        "2",
        "32",
        "32",
    ),
    ChainSpec(
        "SOL", "SOL-Solana", "Solana", "solana", "", True, "0.01", "8", "0.008", "0.1", "32", "32"
    ),
    ChainSpec("BNB", "BNB-BSC", "BNB", "evm", "", True, "0.001", "8", "0.0005", "0.01", "15", "15"),
    # Not in the default catalogue: a memo chain, to exercise needTag and tagged addresses.
    ChainSpec(
        "TON",
        "TON-TON",
        "Toncoin",
        "ton",
        "",
        True,
        "0.1",
        "4",
        "0.05",
        "1",
        "1",
        "1",
        need_tag=True,
    ),
)

# COIN-USDT last prices (and a few unrelated pairs, as OKX returns hundreds of rows).
PRICES: dict[str, str] = {
    "BTC-USDT": "90000",
    "ETH-USDT": "3000",
    "SOL-USDT": "150",
    "BNB-USDT": "600",
    "USDC-USDT": "1.0001",
    "TON-USDT": "5.2",
    "OKB-USDT": "48.3",
    "DOGE-USDT": "0.3121",
    "XRP-USDT": "2.4567",
    "BTC-USDC": "90012.3",
    "ETH-BTC": "0.03333",
}


def address_kind(chain: str) -> str:
    for spec in CHAINS:
        if spec.chain == chain:
            return spec.kind
    return "evm"


def currency_row(spec: ChainSpec) -> dict[str, Any]:
    """One row of ``GET /api/v5/asset/currencies``."""
    return {
        "ccy": spec.ccy,
        "name": spec.name,
        "logoLink": f"https://static.coinall.ltd/cdn/oksupport/asset/currency/icon/{spec.ccy.lower()}.png",
        "chain": spec.chain,
        "ctAddr": spec.ct_addr,
        "canDep": True,
        "canWd": True,
        "canInternal": True,
        "depEstOpenTime": "",
        "wdEstOpenTime": "",
        "minDep": spec.min_dep,
        "minWd": spec.min_wd,
        "minInternal": "0.0001",
        "maxWd": "10000000",
        "wdTickSz": spec.wd_tick,
        "wdQuota": "10000000",
        "usedWdQuota": "0",
        "fee": spec.fee,
        "minFee": spec.fee,
        "maxFee": spec.fee,
        "minFeeForCtAddr": spec.fee,
        "maxFeeForCtAddr": spec.fee,
        "burningFeeRate": "",
        "mainNet": spec.main_net,
        "needTag": spec.need_tag,
        "minDepArrivalConfirm": spec.arrival_confirm,
        "minWdUnlockConfirm": spec.unlock_confirm,
        "depQuotaFixed": "",
        "usedDepQuotaFixed": "",
        "depQuoteDailyLayer2": "",
    }


def address_row(
    ccy: str, chain: str, addr: str, *, selected: bool, tag: str | None, ct_addr: str
) -> dict[str, Any]:
    """One row of ``GET /api/v5/asset/deposit-address`` (``tag``/``memo`` only when needed)."""
    row: dict[str, Any] = {
        "chain": chain,
        "ctAddr": ct_addr,
        "ccy": ccy,
        "to": "6",
        "addr": addr,
        "verifiedName": "",
        "selected": selected,
    }
    if tag is not None:
        row["tag"] = tag
        row["memo"] = tag
    return row


def default_address_rows() -> list[dict[str, Any]]:
    """One selected address per chain; EVM chains share one address, as on OKX."""
    rows = []
    for spec in CHAINS:
        addr = fake_address(spec.kind, f"subsbot-fake-okx/{spec.kind}/0")
        tag = "104729433" if spec.need_tag else None
        rows.append(
            address_row(spec.ccy, spec.chain, addr, selected=True, tag=tag, ct_addr=spec.ct_addr)
        )
    return rows


def ticker_row(inst_id: str, last: str, ts: int) -> dict[str, Any]:
    """One row of ``GET /api/v5/market/ticker(s)``; every number is a string."""
    return {
        "instType": "SPOT",
        "instId": inst_id,
        "last": last,
        "lastSz": "0.01",
        "askPx": last,
        "askSz": "1.5",
        "bidPx": last,
        "bidSz": "2.1",
        "open24h": last,
        "high24h": last,
        "low24h": last,
        "volCcy24h": "1000000",
        "vol24h": "1000",
        "ts": str(ts),
        "sodUtc0": last,
        "sodUtc8": last,
    }


def instrument_row(inst_id: str) -> dict[str, Any]:
    """One SPOT row of ``GET /api/v5/public/instruments``."""
    base, quote = inst_id.split("-", 1)
    return {
        "instType": "SPOT",
        "instId": inst_id,
        "uly": "",
        "instFamily": "",
        "baseCcy": base,
        "quoteCcy": quote,
        "settleCcy": "",
        "ctVal": "",
        "ctMult": "",
        "ctValCcy": "",
        "optType": "",
        "stk": "",
        "listTime": "1606468572000",
        "expTime": "",
        "lever": "10",
        "tickSz": "0.0001",
        "lotSz": "0.00000001",
        "minSz": "0.00001",
        "ctType": "",
        "alias": "",
        "state": "live",
        "ruleType": "normal",
        "maxLmtSz": "9999999999",
        "maxMktSz": "1000000",
    }


def account_config_row(perm: str, ip: str) -> dict[str, Any]:
    """The row of ``GET /api/v5/account/config`` (the fields subsbot and ccxt look at)."""
    return {
        "uid": "44705892343619584",
        "mainUid": "44705892343619584",
        "acctLv": "1",
        "posMode": "net_mode",
        "autoLoan": False,
        "greeksType": "PA",
        "level": "Lv1",
        "levelTmp": "",
        "ctIsoMode": "automatic",
        "mgnIsoMode": "automatic",
        "spotOffsetType": "",
        "roleType": "0",
        "traderInsts": [],
        "spotRoleType": "0",
        "spotTraderInsts": [],
        "opAuth": "0",
        "kycLv": "2",
        "label": "subsbot read-only",
        "ip": ip,
        "perm": perm,
        "liquidationGearing": "-1",
        "enableSpotBorrow": False,
        "spotBorrowAutoRepay": False,
        "type": "0",
    }
