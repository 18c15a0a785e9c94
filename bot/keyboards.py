"""Inline keyboards. Every button's data comes from :mod:`bot.callbacks`."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot import callbacks as cb
from bot.texts import Texts, stars_price, usd
from payments import Catalog, Coin, InvoiceView, Network, Plan


def _button(text: str, action: cb.Action) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=cb.encode(action))


def plans(
    texts: Texts,
    lang: str | None,
    catalog: Catalog,
    *,
    stars_only: bool = False,
    mini_app: str | None = None,
) -> InlineKeyboardMarkup:
    """One button a plan, with its price in USD, or in Stars when the shop sells for Stars
    only (no OKX keys); then "Open checkout" (the Mini App at ``mini_app``), when there is one."""

    def price(plan: Plan) -> str:
        if stars_only and plan.stars is not None:
            return stars_price(plan.stars)
        return usd(plan.price_usd)

    rows = [
        [
            _button(
                texts.get(lang, "plan_button", name=p.name, price=price(p), days=p.days),
                cb.ChoosePlan(p.id),
            )
        ]
        for p in catalog.plans
    ]
    if mini_app is not None:
        label = texts.get(lang, "button_open_checkout")
        rows.append([InlineKeyboardButton(label, web_app=WebAppInfo(mini_app))])
    return InlineKeyboardMarkup(rows)


def coins(
    texts: Texts, lang: str | None, plan: Plan, offered: Sequence[Coin], *, stars: bool = True
) -> InlineKeyboardMarkup:
    """The coins on offer now, and Telegram Stars when the plan has a Stars price."""
    row: list[InlineKeyboardButton] = []
    rows: list[list[InlineKeyboardButton]] = []
    for coin in offered:
        row.append(_button(coin.symbol, cb.ChooseCoin(plan.id, coin.symbol)))
        if len(row) == 3:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    if plan.stars is not None and stars:
        rows.append([_button(texts.get(lang, "button_stars"), cb.PayStars(plan.id))])
    rows.append([_button(texts.get(lang, "button_back"), cb.Menu())])
    return InlineKeyboardMarkup(rows)


def stars_instead(texts: Texts, lang: str | None, plan: Plan) -> InlineKeyboardMarkup:
    """Telegram Stars for ``plan`` (which has a Stars price), when crypto is unavailable."""
    return InlineKeyboardMarkup([[_button(texts.get(lang, "button_stars"), cb.PayStars(plan.id))]])


def pay_stars(texts: Texts, lang: str | None, stars: int, link: str) -> InlineKeyboardMarkup:
    """The button that opens a Telegram Stars invoice link (a subscription)."""
    label = texts.get(lang, "button_pay_stars", stars=stars)
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, url=link)]])


def stars_renewals(
    texts: Texts, lang: str | None, subs: Sequence[tuple[str, str, bool]]
) -> InlineKeyboardMarkup | None:
    """One button per Telegram subscription (order id, plan name, renewal on): turn it off
    while it is on, back on while it is off."""
    rows = [
        [
            _button(
                texts.get(lang, "button_renewal_off" if on else "button_renewal_on", plan=name),
                cb.StarsRenewal(order, on=not on),
            )
        ]
        for order, name, on in subs
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def networks(
    texts: Texts, lang: str | None, plan: Plan, coin: Coin, offered: Sequence[Network]
) -> InlineKeyboardMarkup:
    rows = [[_button(n.label, cb.ChooseNetwork(plan.id, coin.symbol, n.code))] for n in offered]
    rows.append([_button(texts.get(lang, "button_back"), cb.ChoosePlan(plan.id))])
    return InlineKeyboardMarkup(rows)


def invoice(texts: Texts, lang: str | None, view: InvoiceView) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [_button(texts.get(lang, "button_check"), cb.CheckInvoice(view.id))],
            [_button(texts.get(lang, "button_claim"), cb.ClaimInvoice(view.id))],
            [_button(texts.get(lang, "button_cancel"), cb.CancelInvoice(view.id))],
        ]
    )


def renew(texts: Texts, lang: str | None, plan: Plan) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(texts.get(lang, "button_renew", plan=plan.name), cb.Renew(plan.id))]]
    )


def join_link(texts: Texts, lang: str | None, chat: str, link: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(texts.get(lang, "access_join_button", chat=chat), url=link)]]
    )


def cancel_choices(
    texts: Texts, lang: str | None, views: Sequence[InvoiceView]
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                _button(
                    texts.get(
                        lang,
                        "cancel_button",
                        invoice=v.id,
                        amount=v.amount_text,
                        coin=v.currency,
                    ),
                    cb.CancelInvoice(v.id),
                )
            ]
            for v in views
        ]
    )


def force_confirm(texts: Texts, invoice_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(texts.get(None, "admin_button_force"), cb.AdminConfirm(invoice_id, True))]]
    )


def pending_page(
    texts: Texts, invoice_ids: Sequence[str], page: int, pages: int
) -> InlineKeyboardMarkup | None:
    rows = [
        [
            _button(texts.get(None, "admin_button_confirm", invoice=i), cb.AdminConfirm(i, False)),
            _button(texts.get(None, "admin_button_reject", invoice=i), cb.AdminReject(i)),
        ]
        for i in invoice_ids
    ]
    nav: list[InlineKeyboardButton] = []
    if page > 0:
        nav.append(_button(texts.get(None, "admin_button_prev"), cb.AdminPage(page - 1)))
    if page + 1 < pages:
        nav.append(_button(texts.get(None, "admin_button_next"), cb.AdminPage(page + 1)))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows) if rows else None
