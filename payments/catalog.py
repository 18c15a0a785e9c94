"""Plans and coins/networks from a TOML file, validated at start-up with clear errors."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from payments.errors import ConfigError
from payments.money import DEFAULT_SCALE, parse_decimal, to_units

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,10}$")
_CODE = re.compile(r"^[A-Z0-9]{2,12}$")
STARS_SUBSCRIPTION_DAYS = 30  # Telegram's one subscription period (2592000 s)
MAX_STARS = 10_000  # the most Telegram takes for one invoice or subscription period


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    price_usd: Decimal
    days: int
    description: str = ""
    chats: tuple[int, ...] = ()  # Telegram channels / groups a subscriber may join
    stars: int | None = None  # price in Telegram Stars (XTR); None: crypto only

    @property
    def renews_by_itself(self) -> bool:
        """Paid in Stars, a 30-day plan is a Telegram subscription (charged every 30 days, the
        only period Telegram offers); any other length is a one-off payment."""
        return self.stars is not None and self.days == STARS_SUBSCRIPTION_DAYS


@dataclass(frozen=True)
class Network:
    code: str  # short code shown to customers and used in callbacks/API: "TRC20"
    chain: str  # OKX chain name: "USDT-TRC20"
    label: str  # "Tron (TRC20)"
    allowance: Decimal = Decimal(0)  # fixed under-payment allowance, in the coin


@dataclass(frozen=True)
class Coin:
    symbol: str
    name: str
    step: Decimal
    networks: tuple[Network, ...]
    scale: int = DEFAULT_SCALE

    def network(self, code: str) -> Network | None:
        for network in self.networks:
            if network.code == code:
                return network
        return None

    def network_by_chain(self, chain: str) -> Network | None:
        for network in self.networks:
            if network.chain == chain:
                return network
        return None


@dataclass(frozen=True)
class Catalog:
    plans: tuple[Plan, ...]
    coins: tuple[Coin, ...]

    def plan(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def coin(self, symbol: str) -> Coin | None:
        return next((c for c in self.coins if c.symbol == symbol), None)

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(c.symbol for c in self.coins)

    @property
    def stars_plans(self) -> tuple[Plan, ...]:
        """The plans on sale for Telegram Stars."""
        return tuple(p for p in self.plans if p.stars is not None)

    @property
    def plan_chats(self) -> dict[str, tuple[int, ...]]:
        """Plan id -> the chats it grants, for the plans that grant any."""
        return {p.id: p.chats for p in self.plans if p.chats}

    @property
    def chats(self) -> tuple[int, ...]:
        """Every chat some plan grants, each once, in plans-file order."""
        return tuple(dict.fromkeys(chat for p in self.plans for chat in p.chats))


def default_plans_path() -> Path:
    return Path(str(resources.files("payments").joinpath("plans.toml")))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a plans file (the bundled one when ``path`` is None)."""
    file = Path(path) if path is not None else default_plans_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"PLANS_FILE {file}: cannot read it ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"PLANS_FILE {file}: not valid TOML ({exc})") from exc
    try:
        return parse_catalog(data)
    except ConfigError as exc:
        raise ConfigError(f"PLANS_FILE {file}: {exc}") from exc


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """Validate the parsed TOML; every error names the offending entry."""
    plans_raw = data.get("plans")
    coins_raw = data.get("coins")
    if not isinstance(plans_raw, list) or not plans_raw:
        raise ConfigError("at least one [[plans]] entry is required")
    plans = tuple(_parse_plan(i, raw) for i, raw in enumerate(plans_raw))
    stars_only = all(p.stars is not None for p in plans)
    if coins_raw is None and stars_only:
        coins_raw = []  # a shop selling for Stars only needs no coins
    if not isinstance(coins_raw, list) or (not coins_raw and not stars_only):
        raise ConfigError(
            "at least one [[coins]] entry is required (or a stars price on every plan)"
        )
    coins = tuple(_parse_coin(i, raw) for i, raw in enumerate(coins_raw))
    _unique([p.id for p in plans], "plan id")
    _unique([c.symbol for c in coins], "coin symbol")
    return Catalog(plans=plans, coins=coins)


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"duplicate {what} {value!r}")
        seen.add(value)


def _table(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table")
    return raw


def _text(raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key!r} must be a non-empty string")
    return value.strip()


def _decimal(raw: Mapping[str, Any], key: str, where: str, default: str | None = None) -> Decimal:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f'{where}: {key!r} must be a number written as a string, e.g. "29"')
    try:
        return parse_decimal(str(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: {key!r} is not a number ({value!r})") from exc


def _parse_plan(index: int, raw_any: Any) -> Plan:
    where = f"plans[{index}]"
    raw = _table(raw_any, where)
    plan_id = _text(raw, "id", where)
    where = f"plan {plan_id!r}"
    if not _ID.fullmatch(plan_id):
        raise ConfigError(f"{where}: id must be 1-24 characters of a-z, 0-9, '-' or '_'")
    price = _decimal(raw, "price_usd", where)
    if price <= 0:
        raise ConfigError(f"{where}: price_usd must be positive (got {price})")
    if price > Decimal(1_000_000):
        raise ConfigError(f"{where}: price_usd {price} is implausibly large")
    days = raw.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        raise ConfigError(f"{where}: days must be a whole number from 1 to 3660")
    return Plan(
        id=plan_id,
        name=_text(raw, "name", where),
        price_usd=price,
        days=days,
        description=_text(raw, "description", where, required=False),
        chats=_chats(raw.get("chats", []), where),
        stars=_stars(raw.get("stars"), where),
    )


def _stars(raw: Any, where: str) -> int | None:
    """A Stars price: a whole number of Stars, at most what Telegram takes for one invoice."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_STARS:
        raise ConfigError(
            f"{where}: stars must be a whole number of Telegram Stars from 1 to {MAX_STARS}"
            f" (got {raw!r})"
        )
    return raw


def _chats(raw: Any, where: str) -> tuple[int, ...]:
    """Chat ids as Telegram gives them: channels and supergroups are -100..., groups negative."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: chats must be a list of chat ids, e.g. [-1001234567890]")
    chats: list[int] = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int) or value >= 0:
            raise ConfigError(
                f"{where}: chat {value!r} is not a channel or group id "
                "(a negative number such as -1001234567890; forward a post to @userinfobot)"
            )
        if value in chats:
            raise ConfigError(f"{where}: chat {value} is listed twice")
        chats.append(value)
    return tuple(chats)


def _parse_coin(index: int, raw_any: Any) -> Coin:
    where = f"coins[{index}]"
    raw = _table(raw_any, where)
    symbol = _text(raw, "symbol", where)
    where = f"coin {symbol!r}"
    if not _SYMBOL.fullmatch(symbol):
        raise ConfigError(f"{where}: symbol must be 2-10 capital letters or digits")
    scale = raw.get("scale", DEFAULT_SCALE)
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= 18:
        raise ConfigError(f"{where}: scale must be a whole number from 0 to 18")
    step = _decimal(raw, "step", where)
    if step <= 0 or to_units(step, scale) is None:
        raise ConfigError(f"{where}: step {step} must be positive and a multiple of 1e-{scale}")
    networks_raw = raw.get("networks")
    if not isinstance(networks_raw, list) or not networks_raw:
        raise ConfigError(f"{where}: at least one network is required")
    networks = tuple(_parse_network(symbol, i, n) for i, n in enumerate(networks_raw))
    _unique([n.code for n in networks], f"network code of {symbol}")
    _unique([n.chain for n in networks], f"chain of {symbol}")
    return Coin(
        symbol=symbol,
        name=_text(raw, "name", where, required=False) or symbol,
        step=step,
        networks=networks,
        scale=scale,
    )


def _parse_network(symbol: str, index: int, raw_any: Any) -> Network:
    where = f"coin {symbol!r} networks[{index}]"
    raw = _table(raw_any, where)
    code = _text(raw, "code", where)
    if not _CODE.fullmatch(code):
        raise ConfigError(f"{where}: code must be 2-12 capital letters or digits (got {code!r})")
    chain = _text(raw, "chain", where)
    if not chain.startswith(f"{symbol}-"):
        raise ConfigError(
            f"{where}: chain {chain!r} must be OKX's chain name for {symbol}, e.g. '{symbol}-...'"
        )
    allowance = _decimal(raw, "allowance", where, default="0")
    if allowance < 0:
        raise ConfigError(f"{where}: allowance must not be negative")
    return Network(
        code=code,
        chain=chain,
        label=_text(raw, "label", where, required=False) or code,
        allowance=allowance,
    )
