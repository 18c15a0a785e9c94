"""Every user-facing string, in one catalogue keyed by language.

English (``en``) is complete; another language may translate any subset of its keys and the rest
falls back to English. Templates are Telegram HTML with ``str.format`` fields; every value is
HTML-escaped unless it is wrapped in :class:`Html` (text this module or a template already made
safe). A test checks that each translation uses exactly the English template's fields.
"""

from __future__ import annotations

import html
import string
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.texts import en, ru

DEFAULT_LANGUAGE = "en"
CATALOGUE: Mapping[str, Mapping[str, str]] = {"en": en.MESSAGES, "ru": ru.MESSAGES}


class Html(str):
    """A string that is already safe HTML: inserted as it is."""


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# test mode (OKX_MODE=simulated): the customer screens that begin with the "test_banner", so
# nobody takes a rehearsal's invoice or payment for a real one
TEST_MARKED = frozenset(
    {
        "welcome",
        "welcome_stars",
        "welcome_both",
        "invoice_caption",
        "payment_detected",
        "payment_partial",
        "invoice_paid",
        "invoice_paid_no_end",
    }
)


class Texts:
    def __init__(
        self,
        zone: ZoneInfo,
        catalogue: Mapping[str, Mapping[str, str]] = CATALOGUE,
        *,
        test_mode: bool = False,
    ) -> None:
        self.zone = zone
        self.catalogue = catalogue
        self.test_mode = test_mode

    def language(self, code: str | None) -> str:
        """The catalogue language for a Telegram ``language_code`` ("pt-br" -> "pt" -> "en")."""
        if code:
            code = code.lower()
            if code in self.catalogue:
                return code
            base = code.split("-")[0]
            if base in self.catalogue:
                return base
        return DEFAULT_LANGUAGE

    def get(self, lang: str | None, key: str, **values: object) -> str:
        """The message ``key`` in ``lang`` (falling back to English), with escaped values."""
        table = self.catalogue.get(self.language(lang), {})
        template = table.get(key) or self.catalogue[DEFAULT_LANGUAGE][key]
        text = template.format(**{k: _safe(v) for k, v in values.items()})
        if self.test_mode and key in TEST_MARKED:
            banner = table.get("test_banner") or self.catalogue[DEFAULT_LANGUAGE]["test_banner"]
            return banner + text
        return text

    def date(self, ms: int | None) -> str:
        """A date and time with its zone, e.g. "2026-11-26 14:05 UTC"."""
        if ms is None:
            return "-"
        moment = datetime.fromtimestamp(ms / 1000, tz=self.zone)
        return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or self.zone.key)


def stars_price(stars: int) -> str:
    """⭐ 1500: a price in Telegram Stars as a customer reads it."""
    return f"⭐ {stars}"


def usd(value: Decimal) -> str:
    """$29 or $29.50: a price as a customer reads it."""
    text = format(value.normalize(), "f") if value == value.to_integral() else f"{value:.2f}"
    return f"${text}"


def _safe(value: object) -> object:
    if isinstance(value, Html):
        return str(value)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return value
    return html.escape(str(value), quote=False)
