"""A customer buys a plan through the real bot: invoice photo, payment, activation."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from payments.storage.schema import reservations
from tests.botkit import BotWorld, caption_value, invoice_id_of
from tests.conftest import backends


def decode_qr(png: bytes | None) -> str:
    assert png is not None, "the invoice has no photo"
    results = zxingcpp.read_barcodes(Image.open(BytesIO(png)))
    assert len(results) == 1
    return str(results[0].text)


@pytest.mark.parametrize("backend", backends())
async def test_buying_pro_with_usdt_trc20_activates_it_once(tmp_path: Path, backend: str) -> None:
    async with BotWorld.open(tmp_path, backend=backend) as world, world.running():
        alice = world.customer(101)
        photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")

        address = caption_value(photo, "Address: ")
        served = [r["addr"] for r in world.okx.address_rows("USDT") if r["chain"] == "USDT-TRC20"]
        assert decode_qr(photo.photo) == address
        assert address in served
        amount = caption_value(photo, "Send exactly: ")
        invoice = await world.invoice_row(invoice_id_of(photo))
        reserved = [r for r in await world.rows(reservations) if r["invoice_id"] == invoice["id"]]
        assert [Decimal(r["amount_units"]).scaleb(-8) for r in reserved] == [Decimal(amount)]
        assert "OKX charges" in photo.plain and "Pay by: " in photo.plain and "UTC" in photo.plain

        world.okx.add_deposit("USDT", "USDT-TRC20", amount, to=address)
        paid = await alice.wait_text("Payment received", timeout=15)
        assert "Pro" in paid.plain and "active until" in paid.plain
        await world.tg.wait_for(lambda: "PAID" in alice.messages()[photo_index(alice, photo)].plain)
        status = await alice.send("/status", expect="active until")
        assert "30 days left" in status.plain
        assert sum("Payment received" in t for t in alice.texts()) == 1


def photo_index(customer: object, photo: object) -> int:
    from tests.botkit import Customer

    assert isinstance(customer, Customer)
    ids = [m.message_id for m in customer.messages()]
    return ids.index(photo.message_id)  # type: ignore[attr-defined]


async def test_the_command_menu_is_set_in_each_catalogue_language(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        menus = {
            call.params.get("language_code", ""): [c["command"] for c in call.params["commands"]]
            for call in world.tg.calls("setMyCommands")
        }
        assert menus[""] == [
            *("start", "plans", "status", "history", "cancel", "paysupport", "terms", "help")
        ]
        assert menus["ru"] == menus[""]
        ru = next(c for c in world.tg.calls("setMyCommands") if c.params.get("language_code"))
        assert ru.params["commands"][0]["description"] == "Тарифы и ваша подписка"
