"""The invoice photo: caption, the lines printed under the QR code, and the QR payload.

One function per part so the handler that sends the photo and the outbox sender that later
edits its caption ("PAID", "EXPIRED - do not pay") render exactly the same text.
"""

from __future__ import annotations

import html

from bot.config import QrPayload
from bot.qr import qr_payload
from bot.texts import Html, Texts, usd
from payments import InvoiceView, states

_BANNERS = {
    states.PAID: "banner_paid",
    states.EXPIRED: "banner_expired",
    states.CANCELLED: "banner_cancelled",
    states.INVALID: "banner_closed",
}


def banner_key(view: InvoiceView) -> str | None:
    """The banner an ended invoice's photo carries; None while it can still be paid."""
    return _BANNERS.get(view.status)


def caption(texts: Texts, lang: str | None, view: InvoiceView) -> str:
    key = banner_key(view)
    banner = texts.get(lang, key) if key else ""
    if key is None and view.topup_amount_text and view.status in states.OPEN_STATUSES:
        # part arrived: the rest is a unique top-up amount, not the amount (or BTC QR) below
        banner = texts.get(lang, "banner_partial", topup=view.topup_amount_text, coin=view.currency)
    tag_line = texts.get(lang, "invoice_tag_line", tag=view.tag) if view.tag else ""
    fee_example = ""
    if view.withdraw_fee is not None and view.withdraw_fee > 0:
        fee_example = texts.get(
            lang,
            "invoice_fee_example",
            fee=format(view.withdraw_fee.normalize(), "f"),
            coin=view.currency,
        )
    return texts.get(
        lang,
        "invoice_caption",
        banner=Html(banner),
        plan=view.plan_name,
        days=view.days,
        price=usd(view.price_usd),
        amount=view.amount_text,
        coin=view.currency,
        network=view.network_label,
        tag_line=Html(tag_line),
        address=view.address,
        expires=texts.date(view.expires_at),
        fee_example=Html(fee_example),
        invoice=view.id,
    )


def image_lines(texts: Texts, lang: str | None, view: InvoiceView) -> list[str]:
    """Printed under the code (plain text, not HTML), so a forwarded screenshot is enough."""
    lines = [
        _plain(
            texts.get(lang, "invoice_image_amount", amount=view.amount_text, coin=view.currency)
        ),
        _plain(texts.get(lang, "invoice_image_network", network=view.network_label)),
    ]
    if view.tag:
        lines.append(f"MEMO/TAG: {view.tag}")
    return lines


def payload(view: InvoiceView, mode: QrPayload) -> str:
    return qr_payload(
        mode=mode,
        currency=view.currency,
        chain=view.chain,
        address=view.address,
        amount_text=view.amount_text,
        tag=view.tag,
    )


def _plain(text: str) -> str:
    return html.unescape(text)
