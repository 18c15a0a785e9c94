"""The /terms message: the merchant's terms (TERMS_TEXT, TERMS_URL) or the default ones, and how
long it is as Telegram counts (the settings refuse a TERMS_TEXT that cannot be sent)."""

from __future__ import annotations

import html
import re
from zoneinfo import ZoneInfo

from bot.texts import Html, Texts

MESSAGE_LIMIT = 4096  # Telegram: a message's text, after entities parsing, in UTF-16 units
_TAG = re.compile(r"<[^>]*>")


def terms_message(texts: Texts, lang: str | None, text: str | None, url: str | None) -> str:
    """The merchant's text with the link when set; the link alone; else the default terms."""
    if text is not None:
        link = Html(texts.get(lang, "terms_link", url=url)) if url else ""
        return texts.get(lang, "terms_merchant", text=text, link=link)
    if url is not None:
        return texts.get(lang, "terms_url_only", url=url)
    return texts.get(lang, "terms_default")


def shown_length(message: str) -> int:
    """The length Telegram holds against MESSAGE_LIMIT: the text a reader sees (tags taken out,
    entities read), in UTF-16 code units. Our templates' tags only: every value is escaped."""
    plain = html.unescape(_TAG.sub("", message))
    return len(plain.encode("utf-16-le")) // 2


def longest_terms(text: str, url: str | None) -> int:
    """The longest /terms message with this text and link, over every catalogue language."""
    texts = Texts(ZoneInfo("UTC"))
    return max(shown_length(terms_message(texts, lang, text, url)) for lang in texts.catalogue)
