"""Outbox messages rendered as Telegram messages: one function from (kind, payload) to text and
buttons. Kinds are the payments core's stable names (payments.delivery.notify,
payments.subscriptions.reminders)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup

from bot import keyboards
from bot.texts import Html, Texts
from payments import Catalog, InvoiceView, access, states
from payments.delivery import notify
from payments.subscriptions import KIND_EXPIRED, KIND_REMINDER

# kinds after which the invoice photo's caption says the invoice has ended
ENDING_KINDS = frozenset(
    {
        notify.INVOICE_PAID,
        notify.INVOICE_EXPIRED,
        notify.PAYMENT_PARTIAL_EXPIRED,
        "invoice.rejected",
    }
)


@dataclass(frozen=True)
class Outgoing:
    text: str
    markup: InlineKeyboardMarkup | None = None


_CUSTOMER_KEYS = {
    notify.PAYMENT_DETECTED: "payment_detected",
    notify.INVOICE_EXPIRED: "invoice_expired",
    notify.PAYMENT_PARTIAL_EXPIRED: "payment_partial_expired",
    notify.PAYMENT_LATE_REVIEW: "payment_late_review",
    notify.PAYMENT_ON_HOLD: "payment_on_hold",
    "invoice.rejected": "invoice_rejected",
    "invoice.revoked": "invoice_revoked",
}

_ADMIN_KEYS = {
    notify.ADMIN_PAID: "alert_paid",
    notify.ADMIN_UNMATCHED: "alert_unmatched",
    notify.ADMIN_ON_HOLD: "alert_on_hold",
    notify.ADMIN_FROZEN: "alert_frozen",
    notify.ADMIN_DUPLICATE: "alert_duplicate",
    notify.ADMIN_AFTER_CLOSE: "alert_after_close",
    notify.ADMIN_LATE_REVIEW: "alert_late",
    notify.ADMIN_PARTIAL_UNFINISHED: "alert_partial_unfinished",
    notify.ADMIN_TOPUP_UNAVAILABLE: "alert_topup_unavailable",
    notify.ADMIN_CLAIM_REVIEW: "alert_claim_review",
    notify.ADMIN_NOT_SOLD: "alert_not_sold",
    notify.ADMIN_UNSETTLED: "alert_unsettled",
    notify.ADMIN_REVOKED: "alert_revoked",
    notify.ADMIN_OKX_AUTH: "alert_okx_auth",
    notify.ADMIN_OKX_DOWN: "alert_okx_down",
    notify.ADMIN_OKX_RECOVERED: "alert_okx_recovered",
    notify.ADMIN_CLOCK: "alert_clock",
    notify.ADMIN_CAPACITY: "alert_capacity",
    notify.ADMIN_WEBHOOK_FAILED: "alert_webhook_failed",
    notify.ADMIN_WEBHOOK_GONE: "alert_webhook_gone",
    access.ADMIN_FAILING: "alert_access_failing",
    access.ADMIN_CHAT_RIGHTS: "alert_chat_rights",
}


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
        if kind == notify.INVOICE_PAID:
            if p.get("ends_at") is None:
                return Outgoing(t.get(lang, "invoice_paid_no_end", **common))
            return Outgoing(t.get(lang, "invoice_paid", **common, until=t.date(p["ends_at"])))
        if kind == notify.PAYMENT_PARTIAL:
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
        if kind in (KIND_REMINDER, KIND_EXPIRED):
            plan = self.catalog.plan(str(p.get("plan_id")))
            markup = keyboards.renew(t, lang, plan) if plan else None
            if kind == KIND_REMINDER:
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
        if kind == notify.SUBSCRIPTION_GRANTED:
            return Outgoing(
                t.get(
                    lang,
                    "subscription_granted",
                    plan=common["plan"],
                    days=p.get("days", ""),
                    until=t.date(p.get("ends_at")),
                )
            )
        if kind in (access.INVITE, access.REMOVED_KIND):
            return self._access(lang, kind, p)
        key = _CUSTOMER_KEYS.get(kind)
        if key is None:
            raise UnknownKind(kind)
        return Outgoing(t.get(lang, key, **common))

    def _access(self, lang: str | None, kind: str, p: Mapping[str, Any]) -> Outgoing:
        t = self.texts
        chat = p.get("chat_title") or str(p.get("chat_id", ""))
        plan_id = str(p.get("plan_id", ""))
        if kind == access.INVITE:
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
        }
        if kind == notify.ADMIN_UNMATCHED:
            values["amount"] = p.get("deposit_amount", "")
            if p.get("candidate_invoice_id"):
                values["hint"] = Html(
                    t.get(None, "admin_deposit_hint", invoice=p["candidate_invoice_id"])
                )
        if kind == notify.ADMIN_ON_HOLD and p.get("invoice_id"):
            values["invoice_part"] = f" on invoice {p['invoice_id']}"
        if kind in (notify.ADMIN_DUPLICATE, notify.ADMIN_AFTER_CLOSE):
            values["amount"] = p.get("deposit_amount", "")
        if kind == notify.ADMIN_WEBHOOK_FAILED:
            names = ("url", "delivery_id", "event_id", "event_type", "attempts")
            values.update({name: p.get(name, "") for name in names})
        if kind == notify.ADMIN_WEBHOOK_GONE:
            values["urls"] = "\n".join(
                f"{u.get('url', '')} · id {u.get('id', '')}: {u.get('pending', '')} pending"
                for u in p.get("urls") or []
                if isinstance(u, Mapping)
            )
        if kind == notify.ADMIN_CAPACITY:
            advice = (
                "alert_capacity_addresses"
                if p.get("what") == "addresses"
                else "alert_capacity_amounts"
            )
            values["advice"] = t.get(None, advice)
        return Outgoing(t.get(None, key, **values))


class UnknownKind(ValueError):
    """An outbox kind this version cannot render (a newer replica wrote it?)."""


def changes_invoice(kind: str, view: InvoiceView | None) -> bool:
    """Whether the invoice photo's caption should be re-rendered after this message: it ended
    (paid, expired, rejected) or a partial payment left a top-up amount to pay."""
    return ends_invoice(kind, view) or (
        kind == notify.PAYMENT_PARTIAL and view is not None and view.topup_amount_text is not None
    )


def ends_invoice(kind: str, view: InvoiceView | None) -> bool:
    """Whether this message means the invoice photo should now carry its end banner."""
    return (
        kind in ENDING_KINDS
        and view is not None
        and view.status in states.CLOSED_STATUSES | {states.EXPIRED}
    )
