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


class Texts:
    def __init__(
        self,
        zone: ZoneInfo,
        catalogue: Mapping[str, Mapping[str, str]] = CATALOGUE,
    ) -> None:
        self.zone = zone
        self.catalogue = catalogue

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
        return template.format(**{k: _safe(v) for k, v in values.items()})

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
