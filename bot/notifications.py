"""Outbox messages rendered as Telegram messages: one function from (kind, payload) to text and
buttons. Kinds are the payments core's stable names, all in its message catalogue
(``payments.delivery.messages``); :data:`RENDERED_KINDS` is every kind rendered here (a test
holds it to the catalogue)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup

from bot import keyboards
from bot.texts import Html, Texts
from payments import Catalog, InvoiceView, states
from payments.delivery import messages as msg

# kinds after which the invoice photo's caption says the invoice has ended
ENDING_KINDS = frozenset(
    {
        msg.INVOICE_PAID,
        msg.INVOICE_EXPIRED,
        msg.PAYMENT_PARTIAL_EXPIRED,
        msg.INVOICE_REJECTED,
    }
)


@dataclass(frozen=True)
class Outgoing:
    text: str
    markup: InlineKeyboardMarkup | None = None


_CUSTOMER_KEYS: dict[str, str] = {
    msg.PAYMENT_DETECTED: "payment_detected",
    msg.INVOICE_EXPIRED: "invoice_expired",
    msg.PAYMENT_PARTIAL_EXPIRED: "payment_partial_expired",
    msg.PAYMENT_LATE_REVIEW: "payment_late_review",
    msg.PAYMENT_ON_HOLD: "payment_on_hold",
    msg.INVOICE_REJECTED: "invoice_rejected",
    msg.INVOICE_REVOKED: "invoice_revoked",
}
# customer kinds with a rendering of their own (in Renderer.customer)
_CUSTOMER_OWN = frozenset(
    {
        msg.INVOICE_PAID,
        msg.PAYMENT_PARTIAL,
        msg.SUBSCRIPTION_REMINDER,
        msg.SUBSCRIPTION_EXPIRED,
        msg.SUBSCRIPTION_GRANTED,
        msg.ACCESS_INVITE,
        msg.ACCESS_REMOVED,
        msg.STARS_PAID,
        msg.STARS_REFUNDED,
    }
)

_ADMIN_KEYS: dict[str, str] = {
    msg.ADMIN_PAID: "alert_paid",
    msg.ADMIN_UNMATCHED: "alert_unmatched",
    msg.ADMIN_ON_HOLD: "alert_on_hold",
    msg.ADMIN_FROZEN: "alert_frozen",
    msg.ADMIN_DUPLICATE: "alert_duplicate",
    msg.ADMIN_AFTER_CLOSE: "alert_after_close",
    msg.ADMIN_LATE_REVIEW: "alert_late",
    msg.ADMIN_PARTIAL_UNFINISHED: "alert_partial_unfinished",
    msg.ADMIN_TOPUP_UNAVAILABLE: "alert_topup_unavailable",
    msg.ADMIN_CLAIM_REVIEW: "alert_claim_review",
    msg.ADMIN_NOT_SOLD: "alert_not_sold",
    msg.ADMIN_UNSETTLED: "alert_unsettled",
    msg.ADMIN_REVOKED: "alert_revoked",
    msg.ADMIN_OKX_AUTH: "alert_okx_auth",
    msg.ADMIN_OKX_DOWN: "alert_okx_down",
    msg.ADMIN_OKX_RECOVERED: "alert_okx_recovered",
    msg.ADMIN_CLOCK: "alert_clock",
    msg.ADMIN_CAPACITY: "alert_capacity",
    msg.ADMIN_WEBHOOK_FAILED: "alert_webhook_failed",
    msg.ADMIN_WEBHOOK_GONE: "alert_webhook_gone",
    msg.ADMIN_ACCESS_FAILING: "alert_access_failing",
    msg.ADMIN_CHAT_RIGHTS: "alert_chat_rights",
    msg.ADMIN_UNRENDERABLE: "alert_unrenderable",
    msg.ADMIN_STARS_PAID: "alert_stars_paid",
    msg.ADMIN_STARS_REFUNDED: "alert_stars_refunded",
    msg.ADMIN_STARS_UNMATCHED: "alert_stars_unmatched",
    msg.ADMIN_SUPPORT: "alert_support",
}

# every kind rendered here: the customer's (anything else raises UnknownKind) and the admins'
# (anything else is shown generically, as kind and payload)
RENDERED_KINDS = frozenset(_CUSTOMER_KEYS) | _CUSTOMER_OWN | frozenset(_ADMIN_KEYS)


class Renderer:
    def __init__(self, texts: Texts, catalog: Catalog) -> None:
        self.texts = texts
        self.catalog = catalog

    def _plan_name(self, plan_id: object) -> str:
        plan = self.catalog.plan(str(plan_id))
        return plan.name if plan else str(plan_id)

    def customer(
        self, lang: str | None, kind: str, payload: Mapping[str, Any], view: InvoiceView | None
    ) -> Outgoing:
        t, p = self.texts, payload
        common = {
            "invoice": p.get("invoice_id", ""),
            "coin": p.get("currency", ""),
            "received": p.get("received") or "",
            "plan": self._plan_name(p.get("plan_id", "")),
        }
        if kind == msg.INVOICE_PAID:
            if p.get("ends_at") is None:
                return Outgoing(t.get(lang, "invoice_paid_no_end", **common))
            return Outgoing(t.get(lang, "invoice_paid", **common, until=t.date(p["ends_at"])))
        if kind == msg.PAYMENT_PARTIAL:
            shortfall = ""
            if p.get("shortfall"):
                shortfall = t.get(
                    lang, "payment_shortfall", shortfall=p["shortfall"], coin=common["coin"]
                )
            return Outgoing(
                t.get(
                    lang,
                    "payment_partial",
                    **common,
                    shortfall_line=Html(shortfall),
                    topup=p.get("topup_amount", ""),
                    network=view.network_label if view else p.get("network", ""),
                    until=t.date(view.monitor_until if view else None),
                )
            )
        if kind in (msg.SUBSCRIPTION_REMINDER, msg.SUBSCRIPTION_EXPIRED):
            plan = self.catalog.plan(str(p.get("plan_id")))
            markup = keyboards.renew(t, lang, plan) if plan else None
            if kind == msg.SUBSCRIPTION_REMINDER:
                text = t.get(
                    lang,
                    "subscription_reminder",
                    plan=common["plan"],
                    until=t.date(p.get("ends_at")),
                    days=p.get("days_before", ""),
                )
            else:
                text = t.get(lang, "subscription_expired", plan=common["plan"])
            return Outgoing(text, markup)
        if kind == msg.SUBSCRIPTION_GRANTED:
            return Outgoing(
                t.get(
                    lang,
                    "subscription_granted",
                    plan=common["plan"],
                    days=p.get("days", ""),
                    until=t.date(p.get("ends_at")),
                )
            )
        if kind in (msg.ACCESS_INVITE, msg.ACCESS_REMOVED):
            return self._access(lang, kind, p)
        if kind in (msg.STARS_PAID, msg.STARS_REFUNDED):
            return self._stars(lang, kind, p)
        key = _CUSTOMER_KEYS.get(kind)
        if key is None:
            raise UnknownKind(kind)
        return Outgoing(t.get(lang, key, **common))

    def _stars(self, lang: str | None, kind: str, p: Mapping[str, Any]) -> Outgoing:
        t = self.texts
        values = {
            "plan": self._plan_name(p.get("plan_id", "")),
            "stars": p.get("stars", ""),
            "until": t.date(p.get("ends_at")),
        }
        if kind == msg.STARS_REFUNDED:
            return Outgoing(t.get(lang, "stars_refunded", **values))
        if p.get("renewal"):
            key = "stars_renewed"
        else:
            key = "stars_paid_subscription" if p.get("recurring") else "stars_paid"
        return Outgoing(t.get(lang, key, **values))

    def _access(self, lang: str | None, kind: str, p: Mapping[str, Any]) -> Outgoing:
        t = self.texts
        chat = p.get("chat_title") or str(p.get("chat_id", ""))
        plan_id = str(p.get("plan_id", ""))
        if kind == msg.ACCESS_INVITE:
            key = "access_invite_replaced" if p.get("replaced") else "access_invite"
            link = str(p.get("link", ""))
            text = t.get(
                lang,
                key,
                plan=self._plan_name(plan_id),
                chat=chat,
                until=t.date(p.get("expires_at")),
                link=link,
            )
            return Outgoing(text, keyboards.join_link(t, lang, chat, link))
        plan = self.catalog.plan(plan_id)
        text = t.get(
            lang,
            "access_removed",
            plan=self._plan_name(plan_id),
            chat=chat,
            ended=t.date(p.get("ended_at")),
        )
        return Outgoing(text, keyboards.renew(t, lang, plan) if plan else None)

    def admin(self, kind: str, payload: Mapping[str, Any]) -> Outgoing:
        t, p = self.texts, payload
        key = _ADMIN_KEYS.get(kind)
        if key is None:
            details = ", ".join(f"{k}={v}" for k, v in sorted(p.items()))
            return Outgoing(t.get(None, "alert_generic", kind=kind, details=details))
        exceptions = p.get("exceptions") or []
        values: dict[str, object] = {
            "invoice": p.get("invoice_id") or "",
            "plan": self._plan_name(p.get("plan_id", "")),
            "amount": p.get("amount") or p.get("deposit_amount") or "",
            "coin": p.get("currency", ""),
            "network": p.get("network", ""),
            "chain": p.get("chain", ""),
            "customer": p.get("customer_id", ""),
            "exceptions": f" ({', '.join(exceptions)})" if exceptions else "",
            "until": t.date(p["ends_at"]) if p.get("ends_at") else "-",
            "deposit": p.get("dep_id") or "",
            "state": p.get("state", ""),
            "received": p.get("received") or "",
            "reason": p.get("reason") or "",
            "error": p.get("error") or "",
            "since": t.date(p["since"]) if p.get("since") else "-",
            "offset": round(int(p.get("offset_ms") or 0) / 1000),
            "hint": "",
            "invoice_part": "",
            "what": p.get("what", ""),
            "currency": p.get("currency", ""),
            "subject": p.get("chain") or p.get("plan_id") or "",
            "free": p.get("free", ""),
            "total": p.get("total", ""),
            "advice": "",
            "chat": p.get("chat_title") or p.get("chat_id", ""),
            "chat_id": p.get("chat_id", ""),
            "action": p.get("action", ""),
            "problems": "\n".join(str(line) for line in p.get("problems") or []),
            "count": p.get("count", ""),
            "kinds": ", ".join(str(k) for k in p.get("kinds") or []),
            "status": p.get("status", ""),
            "message_id": p.get("message_id", ""),
            "kind": p.get("kind", ""),
            "audience": p.get("audience", ""),
            "stars": p.get("stars", ""),
            "payment": p.get("payment_id", ""),
            "charge": p.get("charge_id", ""),
            "by": p.get("by", ""),
            "renewal": t.get(None, "alert_stars_renewal") if p.get("renewal") else "",
        }
        if kind == msg.ADMIN_UNMATCHED:
            values["amount"] = p.get("deposit_amount", "")
            if p.get("candidate_invoice_id"):
                values["hint"] = Html(
                    t.get(None, "admin_deposit_hint", invoice=p["candidate_invoice_id"])
                )
        if kind == msg.ADMIN_ON_HOLD and p.get("invoice_id"):
            values["invoice_part"] = f" on invoice {p['invoice_id']}"
        if kind in (msg.ADMIN_DUPLICATE, msg.ADMIN_AFTER_CLOSE):
            values["amount"] = p.get("deposit_amount", "")
        if kind == msg.ADMIN_WEBHOOK_FAILED:
            names = ("url", "delivery_id", "event_id", "event_type", "attempts")
            values.update({name: p.get(name, "") for name in names})
        if kind == msg.ADMIN_WEBHOOK_GONE:
            values["urls"] = "\n".join(
                f"{u.get('url', '')} · id {u.get('id', '')}: {u.get('pending', '')} pending"
                for u in p.get("urls") or []
                if isinstance(u, Mapping)
            )
        if kind == msg.ADMIN_CAPACITY:
            advice = (
                "alert_capacity_addresses"
                if p.get("what") == "addresses"
                else "alert_capacity_amounts"
            )
            values["advice"] = t.get(None, advice)
        if kind == msg.ADMIN_SUPPORT:
            values.update(self._support(p))
        return Outgoing(t.get(None, key, **values))

    def _support(self, p: Mapping[str, Any]) -> dict[str, object]:
        """/paysupport: who asked (their name is their own words: escaped like any value) and
        their newest invoices, one line each."""
        t = self.texts
        username = p.get("username")
        lines = [
            t.get(
                None,
                "alert_support_invoice",
                invoice=i.get("invoice_id", ""),
                plan=self._plan_name(i.get("plan_id", "")),
                amount=i.get("amount", ""),
                coin="Stars" if i.get("currency") == "XTR" else i.get("currency", ""),
                status=i.get("status", ""),
                date=t.date(i.get("created_at")),
            )
            for i in p.get("invoices") or []
            if isinstance(i, Mapping)
        ]
        return {
            "who": p.get("name")
            or (f"@{username}" if username else None)
            or t.get(None, "alert_support_unnamed"),
            "username": Html(t.get(None, "alert_support_username", username=username))
            if username
            else "",
            "invoices": Html("\n".join(lines) or t.get(None, "alert_support_no_invoices")),
        }


class UnknownKind(ValueError):
    """An outbox kind this version cannot render (a newer replica wrote it?)."""


def changes_invoice(kind: str, view: InvoiceView | None) -> bool:
    """Whether the invoice photo's caption should be re-rendered after this message: it ended
    (paid, expired, rejected) or a partial payment left a top-up amount to pay."""
    return ends_invoice(kind, view) or (
        kind == msg.PAYMENT_PARTIAL and view is not None and view.topup_amount_text is not None
    )


def ends_invoice(kind: str, view: InvoiceView | None) -> bool:
    """Whether this message means the invoice photo should now carry its end banner."""
    return (
        kind in ENDING_KINDS
        and view is not None
        and view.status in states.CLOSED_STATUSES | {states.EXPIRED}
    )
