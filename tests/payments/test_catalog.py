"""The plans file: the bundled one loads; a malformed one stops start-up naming the entry."""

from __future__ import annotations

from typing import Any

import pytest

from payments.catalog import load_catalog, parse_catalog
from payments.errors import ConfigError


def _raw(**plan: Any) -> dict[str, Any]:
    return {
        "plans": [{"id": "pro", "name": "Pro", "price_usd": "29", "days": 30, **plan}],
        "coins": [
            {
                "symbol": "USDT",
                "step": "0.0001",
                "networks": [{"code": "TRC20", "chain": "USDT-TRC20"}],
            }
        ],
    }


def test_the_bundled_catalogue_offers_the_six_coins() -> None:
    catalog = load_catalog()
    assert catalog.currencies == ("BTC", "ETH", "USDT", "USDC", "SOL", "BNB")
    assert [p.id for p in catalog.plans] == ["pro", "enterprise"]


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        ({"id": "pro\nx"}, "id must be"),
        ({"id": "Pro"}, "id must be"),
        ({"price_usd": "-5"}, "price_usd must be positive"),
        ({"price_usd": "abc"}, "'price_usd' is not a number"),
        ({"days": 0}, "days must be a whole number"),
        ({"chats": -1001}, "chats must be a list of chat ids"),
        ({"chats": [1001]}, "chat 1001 is not a channel or group id"),
        ({"chats": ["-1001"]}, "chat '-1001' is not a channel or group id"),
        ({"chats": [-1001, -1001]}, "chat -1001 is listed twice"),
    ],
)
def test_a_bad_plan_is_refused_by_name(plan: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_catalog(_raw(**plan))
    assert problem in str(refused.value)


def test_values_are_trimmed_and_then_matched_whole() -> None:
    assert parse_catalog(_raw(id=" pro\n")).plans[0].id == "pro"
    raw = _raw()
    raw["coins"][0]["networks"][0]["code"] = "TRC20\nX"
    with pytest.raises(ConfigError, match="code must be"):
        parse_catalog(raw)


def test_plans_name_the_chats_they_grant() -> None:
    raw = _raw(chats=[-1001, -1002])
    raw["plans"].append({"id": "vip", "name": "VIP", "price_usd": "99", "days": 30})
    raw["plans"][1]["chats"] = [-1002, -1003]
    catalog = parse_catalog(raw)
    assert catalog.plan_chats == {"pro": (-1001, -1002), "vip": (-1002, -1003)}
    assert catalog.chats == (-1001, -1002, -1003)
    assert load_catalog().chats == ()  # the bundled plans grant no chat
