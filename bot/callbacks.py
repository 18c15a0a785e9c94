"""Callback data: short, versioned, parsed strictly.

Clients can send ANY 1-64 bytes as callback data, so :func:`parse` accepts only the exact shapes
:func:`encode` produces and returns None for everything else. Plain strings (not PTB's
arbitrary_callback_data) survive restarts and work on every replica. Parsing proves nothing about
who pressed: every handler re-checks on the server that the invoice belongs to ``from_user``.

Format: ``1:<action>[:<arg>...]``; plan ids, coin symbols and network codes are the catalogue's
(at most 24 + 10 + 12 characters, so the longest data is 52 bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = "1"
MAX_BYTES = 64

# used with fullmatch: "$" alone would also accept a trailing newline ("1:k:ABCD\n")
_PLAN = re.compile(r"[a-z0-9_-]{1,24}")
_COIN = re.compile(r"[A-Z0-9]{2,10}")
_NETWORK = re.compile(r"[A-Z0-9]{2,12}")
_INVOICE = re.compile(r"[A-Z0-9]{4,16}")
_PAGE = re.compile(r"0|[1-9][0-9]{0,3}")


@dataclass(frozen=True)
class Menu:
    """Back to the plans."""


@dataclass(frozen=True)
class ChoosePlan:
    plan: str


@dataclass(frozen=True)
class Renew:
    """A Renew button under a reminder: the coin menu as a new message."""

    plan: str


@dataclass(frozen=True)
class ChooseCoin:
    plan: str
    coin: str


@dataclass(frozen=True)
class ChooseNetwork:
    plan: str
    coin: str
    network: str


@dataclass(frozen=True)
class PayStars:
    """Pay for a plan in Telegram Stars."""

    plan: str


@dataclass(frozen=True)
class StarsRenewal:
    """Turn the renewal of a Telegram subscription (an order id) on or off."""

    order: str
    on: bool


@dataclass(frozen=True)
class CheckInvoice:
    invoice: str


@dataclass(frozen=True)
class ClaimInvoice:
    invoice: str


@dataclass(frozen=True)
class CancelInvoice:
    invoice: str


@dataclass(frozen=True)
class AdminConfirm:
    invoice: str
    force: bool  # the second tap: confirm without a deposit


@dataclass(frozen=True)
class AdminReject:
    invoice: str


@dataclass(frozen=True)
class AdminPage:
    page: int


Action = (
    Menu
    | ChoosePlan
    | Renew
    | ChooseCoin
    | ChooseNetwork
    | PayStars
    | StarsRenewal
    | CheckInvoice
    | ClaimInvoice
    | CancelInvoice
    | AdminConfirm
    | AdminReject
    | AdminPage
)


def encode(action: Action) -> str:
    match action:
        case Menu():
            parts = ["m"]
        case ChoosePlan(plan):
            parts = ["p", plan]
        case Renew(plan):
            parts = ["r", plan]
        case ChooseCoin(plan, coin):
            parts = ["c", plan, coin]
        case ChooseNetwork(plan, coin, network):
            parts = ["n", plan, coin, network]
        case PayStars(plan):
            parts = ["s", plan]
        case StarsRenewal(order, on):
            parts = ["so" if on else "sx", order]
        case CheckInvoice(invoice):
            parts = ["k", invoice]
        case ClaimInvoice(invoice):
            parts = ["l", invoice]
        case CancelInvoice(invoice):
            parts = ["x", invoice]
        case AdminConfirm(invoice, force):
            parts = ["af" if force else "ac", invoice]
        case AdminReject(invoice):
            parts = ["ar", invoice]
        case AdminPage(page):
            parts = ["ap", str(page)]
    data = ":".join([VERSION, *parts])
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback data {data!r} is longer than {MAX_BYTES} bytes")
    return data


def parse(data: str | None) -> Action | None:
    """The action, or None for anything :func:`encode` could not have produced."""
    if not data or len(data.encode("utf-8", "replace")) > MAX_BYTES:
        return None
    version, _, rest = data.partition(":")
    if version != VERSION:
        return None
    parts = rest.split(":")
    action = _decode(parts[0], parts[1:])
    if action is None or encode(action) != data:  # exactly canonical, nothing extra
        return None
    return action


def _decode(tag: str, args: list[str]) -> Action | None:
    match tag, args:
        case "m", []:
            return Menu()
        case "p", [plan] if _PLAN.fullmatch(plan):
            return ChoosePlan(plan)
        case "r", [plan] if _PLAN.fullmatch(plan):
            return Renew(plan)
        case "s", [plan] if _PLAN.fullmatch(plan):
            return PayStars(plan)
        case (("so" | "sx"), [order]) if _INVOICE.fullmatch(order):
            return StarsRenewal(order, on=tag == "so")
        case "c", [plan, coin] if _PLAN.fullmatch(plan) and _COIN.fullmatch(coin):
            return ChooseCoin(plan, coin)
        case "n", [plan, coin, network] if (
            _PLAN.fullmatch(plan) and _COIN.fullmatch(coin) and _NETWORK.fullmatch(network)
        ):
            return ChooseNetwork(plan, coin, network)
        case (("k" | "l" | "x" | "ac" | "af" | "ar"), [invoice]) if _INVOICE.fullmatch(invoice):
            return _invoice_action(tag, invoice)
        case "ap", [page] if _PAGE.fullmatch(page):
            return AdminPage(int(page))
    return None


def _invoice_action(tag: str, invoice: str) -> Action:
    if tag == "k":
        return CheckInvoice(invoice)
    if tag == "l":
        return ClaimInvoice(invoice)
    if tag == "x":
        return CancelInvoice(invoice)
    if tag == "ar":
        return AdminReject(invoice)
    return AdminConfirm(invoice, force=tag == "af")
