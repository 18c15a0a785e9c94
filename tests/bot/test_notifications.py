"""Every message kind of the catalogue renders, in every language; one this version cannot
render is given up at once, with an alert to the admins, rather than retried for days."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.notifications import RENDERED_KINDS, Renderer
from bot.texts import CATALOGUE, Texts
from fakes.telegram import FakeTelegram
from fakes.telegram_html import parse_html
from payments import load_catalog
from payments.clock import ManualClock
from payments.delivery import KINDS, messages
from payments.invoicing.customers import ensure_customer
from payments.storage import Database
from payments.storage.schema import outbox as outbox_table
from tests import outbox_kit
from tests.outbox_kit import ADMINS, CUSTOMER_ID

PLACEHOLDER = re.compile(r"\{[A-Za-z_]*\}")
CUSTOMER_KINDS = sorted(name for name, kind in KINDS.items() if kind.audience == "customer")
ADMIN_KINDS = sorted(name for name, kind in KINDS.items() if kind.audience == "admins")


def renderer() -> Renderer:
    return Renderer(Texts(ZoneInfo("UTC")), load_catalog())


def shown(text: str) -> str:
    """The text as a person reads it (the HTML must parse)."""
    plain, _ = parse_html(text)
    assert plain.strip(), text
    assert not PLACEHOLDER.search(text), text
    return plain


def test_every_kind_of_the_catalogue_has_a_rendering() -> None:
    assert set(KINDS) <= RENDERED_KINDS, sorted(set(KINDS) - RENDERED_KINDS)


@pytest.mark.parametrize("lang", sorted(CATALOGUE))
@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_every_customer_message_renders_in_every_language(kind: str, lang: str) -> None:
    out = renderer().customer(lang, kind, KINDS[kind].sample, None)
    plain = shown(out.text)
    assert "None" not in plain, plain


@pytest.mark.parametrize("kind", ADMIN_KINDS)
def test_every_admin_alert_renders_as_its_own_text(kind: str) -> None:
    """Admin alerts are in the default language; a kind without a rendering would only be
    shown generically (kind and payload)."""
    plain = shown(renderer().admin(kind, KINDS[kind].sample).text)
    assert not plain.startswith(f"ℹ️ {kind}:"), plain
    assert "None" not in plain, plain


async def old_row(db: Database, clock: ManualClock, kind: str, payload: str) -> None:
    """A row another version of the bot wrote (enqueue refuses a kind it does not know)."""
    now = clock.now_ms()
    async with db.transaction() as conn:
        await ensure_customer(conn, CUSTOMER_ID, now)
        await conn.execute(
            outbox_table.insert().values(
                dedupe_key=f"c:{kind}",
                audience="customer",
                customer_id=CUSTOMER_ID,
                kind=kind,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                claimed_until=0,
                created_at=now,
            )
        )


async def statuses(db: Database) -> list[tuple[str, str, str | None]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(outbox_table.c.kind, outbox_table.c.status, outbox_table.c.last_error).order_by(
                outbox_table.c.id
            )
        )
        return [(row.kind, row.status, row.last_error) for row in rows]


async def test_a_kind_the_bot_cannot_render_is_given_up_at_once_and_the_admins_told(
    db: Database, clock: ManualClock
) -> None:
    with FakeTelegram() as tg:
        async with outbox_kit.sender(db, clock, tg) as sender:
            await old_row(db, clock, "payment.from_the_future", '{"invoice_id": "INV00031"}')
            await outbox_kit.write(db, clock, "INV00032", "detected")  # the customer's next
            report = await sender.send_due()  # the next message and the admins' alert follow
            assert (report.failed, report.retried, report.sent) == (1, 0, 2), report
            for admin in ADMINS:
                (alert,) = [m.plain for m in tg.bot_messages(admin)]
                assert "#1 (payment.from_the_future, to the customer)" in alert, alert
            texts = [m.plain for m in tg.bot_messages(CUSTOMER_ID)]
            assert len(texts) == 1 and "INV00032" in texts[0], texts  # not held for days
    assert await statuses(db) == [
        ("payment.from_the_future", "failed", "cannot render kind payment.from_the_future"),
        ("payment.detected", "sent", None),
        ("admin.message_unrenderable", "sent", None),
    ]


def test_the_alert_about_an_unrenderable_message_names_it() -> None:
    payload: dict[str, Any] = {"message_id": 9, "kind": "x.y", "audience": "customer"}
    plain = shown(renderer().admin(messages.ADMIN_UNRENDERABLE, payload).text)
    assert plain.startswith("⚠️ Outbox message #9 (x.y, to the customer) cannot be rendered")


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


_DEPOSIT = {
    "dep_id": "1001",
    "currency": "USDT",
    "chain": "USDT-TRC20",
    "deposit_amount": "3.1415",
    "state": "2",
    "tx_id": "ab" * 32,
    "ts": _ms(2026, 1, 15, 12, 5),
}
_INVOICE = {
    "invoice_id": "ABCD2345",
    "customer_id": 101,
    "plan_id": "pro",
    "currency": "USDT",
    "network": "TRC20",
    "amount": "29.0001",
}


def _admin_payloads() -> dict[str, dict[str, object]]:
    """Each admin kind with the payload the payments core writes for it."""
    from payments.delivery import messages

    since = {"since": _ms(2026, 1, 15, 12, 0), "error": "OKX refused the API key (<50105>)"}
    return {
        messages.ADMIN_PAID: {**_INVOICE, "ends_at": _ms(2026, 2, 14), "exceptions": ["marked"]},
        messages.ADMIN_UNMATCHED: {**_DEPOSIT, "reason": "x", "candidate_invoice_id": "ABCD2345"},
        messages.ADMIN_ON_HOLD: {**_DEPOSIT, "state": "12"},
        messages.ADMIN_FROZEN: {**_DEPOSIT, "invoice_id": "ABCD2345", "reason": "amount changed"},
        messages.ADMIN_DUPLICATE: {**_DEPOSIT, "invoice_id": "ABCD2345"},
        messages.ADMIN_AFTER_CLOSE: {**_DEPOSIT, "invoice_id": "ABCD2345"},
        messages.ADMIN_LATE_REVIEW: {**_INVOICE, "received": "29.0001", "exceptions": []},
        messages.ADMIN_PARTIAL_UNFINISHED: {**_INVOICE, "received": "10"},
        messages.ADMIN_TOPUP_UNAVAILABLE: {**_INVOICE, "received": "10"},
        messages.ADMIN_CLAIM_REVIEW: {**_INVOICE, "dep_id": "1001", "reason": "second_claim"},
        messages.ADMIN_OKX_AUTH: since,
        messages.ADMIN_OKX_DOWN: since,
        messages.ADMIN_OKX_RECOVERED: {"since": since["since"], "failure": "auth"},
        messages.ADMIN_CLOCK: {"offset_ms": 45_200},
        messages.ADMIN_CAPACITY: {
            "currency": "USDT",
            "free": 3,
            "total": 100,
            "what": "amounts",
            "plan_id": "pro",
        },
        "admin.something_new": {"b": "<2>", "a": 1},
    }


def test_every_admin_alert_renders_as_valid_html_with_its_facts() -> None:
    from bot.notifications import Renderer
    from fakes.telegram_state import parse_html
    from payments import load_catalog

    renderer = Renderer(Texts(ZoneInfo("UTC")), load_catalog())
    shown = {}
    for kind, payload in _admin_payloads().items():
        text = renderer.admin(kind, payload).text
        plain, _ = parse_html(text)
        assert "{" not in plain and "None" not in plain, (kind, plain)
        shown[kind] = plain
    from payments.delivery import messages

    assert "Paid: invoice ABCD2345 · Pro · 29.0001 USDT TRC20" in shown[messages.ADMIN_PAID]
    assert "customer 101 (marked) · until 2026-02-14 00:00 UTC" in shown[messages.ADMIN_PAID]
    unmatched = shown[messages.ADMIN_UNMATCHED]
    assert "Unmatched deposit 1001: 3.1415 USDT (USDT-TRC20) · maybe ABCD2345" in unmatched
    assert "deposit 1001 3.1415 USDT" in shown[messages.ADMIN_DUPLICATE]
    assert "(<50105>)" in shown[messages.ADMIN_OKX_AUTH]  # escaped, shown as written
    assert "since 2026-01-15 12:00 UTC" in shown[messages.ADMIN_OKX_DOWN]
    assert "45 s off" in shown[messages.ADMIN_CLOCK]
    assert "3 of 100 free" in shown[messages.ADMIN_CAPACITY]
    assert "AMOUNT_OFFSET_CAP_PERCENT" in shown[messages.ADMIN_CAPACITY]
    assert shown["admin.something_new"] == "ℹ️ admin.something_new: a=1, b=<2>"
