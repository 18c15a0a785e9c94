"""Why an invoice was not created, in the customer's words, once for the bot and the JSON API:
the text (Telegram HTML) the chat shows, and the stable code, HTTP status and retry hint the API
answers with."""

from __future__ import annotations

from dataclasses import dataclass

from bot.texts import Texts
from payments import errors


@dataclass(frozen=True)
class Refusal:
    code: str  # stable, machine-readable (the API's "error")
    status: int  # the API's HTTP status
    text: str  # the customer's words, Telegram HTML
    retry_after_s: int | None = None


def invoice_refusal(
    texts: Texts,
    lang: str | None,
    exc: errors.PaymentsError,
    *,
    coin: str,
    network: str,
    max_open: int,
) -> Refusal:
    """``network`` is the network's label as customers see it ("Tron (TRC20)")."""
    match exc:
        case errors.QuoteUnavailable():
            return Refusal("prices_unavailable", 503, texts.get(lang, "error_prices"), 30)
        case errors.ExchangeError():
            return Refusal("exchange_unavailable", 503, texts.get(lang, "error_prices"), 30)
        case errors.DepositsDisabled():
            text = texts.get(lang, "error_paused", coin=coin, network=network)
            return Refusal("deposits_paused", 409, text)
        case errors.BelowMinimumDeposit():
            text = texts.get(lang, "error_below_minimum", coin=coin, network=network)
            return Refusal("below_minimum_deposit", 422, text)
        case errors.NoFreeAmount():
            return Refusal("busy", 503, texts.get(lang, "error_busy"), 120)
        case errors.TooManyOpenInvoices():
            text = texts.get(lang, "error_too_many", limit=max_open)
            return Refusal("too_many_open_invoices", 429, text)
        case errors.InvoiceRateLimited():
            return Refusal("rate_limited", 429, texts.get(lang, "error_rate_limited"), 600)
        case errors.UnknownChoice():
            return Refusal("unknown_choice", 422, texts.get(lang, "error_unknown_choice"))
    return Refusal("internal_error", 500, texts.get(lang, "error_generic"))
