"""An invoice hoarder in the soak: a customer who never pays, buying and cancelling through the
real conversation all through the first phase, to hold as many of the coin's unique amounts as
the bot lets it (every invoice keeps its amount until its monitoring window ends, cancelled ones
too). Every honest customer must still get an invoice (the customers' own outcome checks) and
the hoarder's invoices must never hold more amounts than MAX_HELD_AMOUNTS
(:func:`held_within_cap`, over the database's rows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot import callbacks as cb
from fakes.telegram import FakeTelegram
from tests.soak.customers import Choice, Customer, Shop, invoice_of

HOARDER = 9_998
MAX_HELD = 5  # the soak's MAX_HELD_AMOUNTS: small, so the hoarder reaches it in a soak
CHOICE = Choice("pro", "USDT", "TRC20", "USDT-TRC20", Decimal(0))  # the honest customers' favourite


@dataclass
class Hoarder:
    shop: Shop
    tg: FakeTelegram
    customer: Customer = field(default_factory=lambda: Customer(HOARDER, "hoarder", CHOICE))
    invoices: list[str] = field(default_factory=list)
    refused: int = 0  # conversations that ended without an invoice

    async def keep_hoarding(self, pause_s: float = 0.5) -> None:
        """Buy, cancel, buy again, until cancelled."""
        self.tg.user(HOARDER, first_name="Hoarder", language_code="en")
        while True:
            photo = await self.shop.conversation(self.customer)
            invoice = None if photo is None else invoice_of(photo, CHOICE.coin)
            if photo is None or invoice is None:
                self.refused += 1
            else:
                if invoice.id not in self.invoices:
                    self.invoices.append(invoice.id)
                self.tg.press(HOARDER, photo, cb.encode(cb.CancelInvoice(invoice.id)))
            await asyncio.sleep(pause_s)


def held_within_cap(
    invoices: Sequence[Mapping[str, Any]],
    reservations: Sequence[Mapping[str, Any]],
    now_ms: int,
    cap: int = MAX_HELD,
) -> list[str]:
    """No customer's invoices hold more unique amounts than ``cap`` at once (counting every
    reservation whose hold has not ended, whatever its invoice's status)."""
    owner = {str(r["id"]): int(r["customer_id"]) for r in invoices}
    held: dict[int, int] = {}
    for r in reservations:
        if int(r["held_until"]) > now_ms:
            customer = owner.get(str(r["invoice_id"]))
            if customer is not None:
                held[customer] = held.get(customer, 0) + 1
    return [
        f"customer {customer}'s invoices hold {count} unique amounts, more than {cap}"
        for customer, count in sorted(held.items())
        if count > cap
    ]
