"""Why an invoice was not created, in the customer's words, once for the bot and the JSON API:
the text (Telegram HTML) the chat shows, and the stable code, HTTP status and retry hint the API
answers with."""

from __future__ import annotations

import math
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
    stars: bool = False,
) -> Refusal:
    """``network`` is the network's label as customers see it ("Tron (TRC20)"); ``stars``: the
    plan also sells for Telegram Stars (offered when crypto is unavailable). The retry hint
    is the core's own estimate where it has one (when an amount or the customer's hour frees
    up), else a fixed guess."""
    hint = getattr(exc, "retry_after_ms", None)
    retry = math.ceil(hint / 1000) if isinstance(hint, int) and hint > 0 else None
    match exc:
        case errors.CryptoUnavailable():
            key = "error_crypto_unavailable_stars" if stars else "error_crypto_unavailable"
            # until the merchant fixes the key on OKX: nobody can tell when, so a guess
            return Refusal("crypto_unavailable", 503, texts.get(lang, key), 300)
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
            return Refusal("busy", 503, texts.get(lang, "error_busy"), retry or 120)
        case errors.TooManyOpenInvoices():
            text = texts.get(lang, "error_too_many", limit=max_open)
            return Refusal("too_many_open_invoices", 429, text)
        case errors.TooManyHeldAmounts():
            text = texts.get(lang, "error_too_many_held")
            return Refusal("too_many_held_amounts", 429, text, retry or 3600)
        case errors.InvoiceRateLimited():
            text = texts.get(lang, "error_rate_limited")
            return Refusal("rate_limited", 429, text, retry or 600)
        case errors.CustomerBlocked():
            return Refusal("customer_blocked", 403, texts.get(lang, "error_blocked"))
        case errors.UnknownChoice():
            return Refusal("unknown_choice", 422, texts.get(lang, "error_unknown_choice"))
    return Refusal("internal_error", 500, texts.get(lang, "error_generic"))
