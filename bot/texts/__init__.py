"""Every user-facing string, in gettext catalogues keyed by language.

The catalogues are ``bot/texts/locale/<lang>/LC_MESSAGES/messages.po``, read with Babel at
start-up (nothing compiled, no build step): ``msgctxt`` is the key the code names, ``msgid`` the
English text, ``msgstr`` the translation (empty in English). English is complete; another
language may leave any entry untranslated and it falls back to English. Entries that show a
count have ``msgid_plural`` and one ``msgstr`` per form of the language's ``Plural-Forms``; the
field holding the count is named by the extracted comment ``#. n: {field}``.

A shop's own words (``TEXTS_DIR``) are ``<lang>.po`` files whose translated entries replace the
bundled ones key by key; an entry must keep the English text's fields or it is refused
(:class:`TextsError`, naming the key). Templates are Telegram HTML with ``str.format`` fields;
every value is HTML-escaped unless it is wrapped in :class:`Html` (text this module or a
template already made safe). docs/texts.md is the translator's guide.
"""

from __future__ import annotations

import gettext
import html
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from babel.core import UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.pofile import PoFileError, read_po

DEFAULT_LANGUAGE = "en"
COUNT_COMMENT = "n: "


class TextsError(ValueError):
    """A catalogue that cannot be used: unreadable, or an entry whose fields differ from English."""


class Html(str):
    """A string that is already safe HTML: inserted as it is."""


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class Language:
    """One language's catalogue: ``messages`` maps a key to its forms (one form, or one per
    plural form) and holds only what is translated (English holds every key)."""

    code: str
    nplurals: int
    plural_expr: str
    messages: Mapping[str, tuple[str, ...]]
    plural: Callable[[int], int] = field(repr=False, compare=False, default=lambda n: 0)

    def form(self, key: str, n: int) -> str | None:
        forms = self.messages.get(key)
        if not forms:
            return None
        if len(forms) == 1:
            return forms[0]
        index = self.plural(n)
        return forms[index] if 0 <= index < len(forms) else forms[-1]


def read_catalogue(source: IO[bytes], where: str) -> Catalog:
    """A .po file parsed by Babel; a syntax error or an unknown language names the file."""
    try:
        return read_po(source, abort_invalid=True)
    except (PoFileError, UnknownLocaleError, ValueError) as exc:
        raise TextsError(f"{where}: not a readable gettext catalogue ({exc})") from exc


def _forms(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    forms = tuple(value)
    return forms if all(forms) else ()


def language_from(catalog: Catalog, code: str, translated_only: bool = False) -> Language:
    """The translated entries of ``catalog``; the bundled English catalogue (not
    ``translated_only``) has every msgid, replaced by any msgstr."""
    messages: dict[str, tuple[str, ...]] = {}
    for message in catalog:
        if not message.context or message.fuzzy:
            continue
        translated = _forms(message.string)
        if code == DEFAULT_LANGUAGE and not translated and not translated_only:
            translated = _forms(message.id)
        if translated:
            messages[message.context] = translated
    expr = catalog.plural_expr
    return Language(
        code=code,
        nplurals=catalog.num_plurals,
        plural_expr=expr,
        messages=messages,
        plural=gettext.c2py(expr),
    )


def counts(catalog: Catalog) -> dict[str, str]:
    """key -> the field holding the count, for the plural entries (``#. n: {field}``)."""
    found: dict[str, str] = {}
    for message in catalog:
        for comment in message.auto_comments:
            if message.context and comment.startswith(COUNT_COMMENT):
                found[message.context] = comment[len(COUNT_COMMENT) :].strip().strip("{}")
    return found


def bundled_catalogues() -> dict[str, Catalog]:
    """The catalogues shipped in ``bot/texts/locale``, by language."""
    found: dict[str, Catalog] = {}
    for folder in resources.files("bot.texts").joinpath("locale").iterdir():
        po = folder.joinpath("LC_MESSAGES", "messages.po")
        if po.is_file():
            with po.open("rb") as fh:
                found[folder.name] = read_catalogue(fh, f"bot/texts/locale/{folder.name}")
    return found


def field_problems(english: Language, other: Language) -> list[str]:
    """The keys of ``other`` whose forms do not use exactly the English fields, or that English
    lacks, as messages naming each key."""
    problems: list[str] = []
    for key, forms in other.messages.items():
        reference = english.messages.get(key)
        if reference is None:
            problems.append(f"{other.code}: {key!r} is not a key of the bot's texts")
            continue
        wanted = set().union(*(fields(f) for f in reference))
        for form in forms:
            try:
                used = fields(form)
            except ValueError as exc:
                problems.append(f"{other.code}: {key!r} is not a valid template ({exc})")
                break
            if used != wanted:
                problems.append(
                    f"{other.code}: {key!r} must use the fields {sorted(wanted)}, "
                    f"not {sorted(used)}"
                )
                break
        if len(forms) > 1 and len(forms) != other.nplurals:
            problems.append(f"{other.code}: {key!r} needs {other.nplurals} plural forms")
    return problems


def load_overrides(directory: Path, languages: Mapping[str, Language]) -> dict[str, Language]:
    """``languages`` with the translated entries of ``directory/<lang>.po`` put over them key by
    key; raises :class:`TextsError` naming every entry that does not fit."""
    english = languages[DEFAULT_LANGUAGE]
    merged = dict(languages)
    problems: list[str] = []
    for path in sorted(directory.glob("*.po")):
        code = path.stem.lower()
        with path.open("rb") as fh:
            catalog = read_catalogue(fh, str(path))
        own = language_from(catalog, code, translated_only=True)
        problems += [f"{path}: {p}" for p in field_problems(english, own)]
        base = merged.get(code)
        if base is None:
            merged[code] = own
        else:
            merged[code] = replace(base, messages={**base.messages, **own.messages})
    if problems:
        raise TextsError("TEXTS_DIR: " + "; ".join(problems))
    return merged


def load_languages(texts_dir: Path | None = None) -> dict[str, Language]:
    languages = {code: language_from(cat, code) for code, cat in bundled_catalogues().items()}
    if texts_dir is not None:
        languages = load_overrides(texts_dir, languages)
    return languages


_BUNDLED = bundled_catalogues()
LANGUAGES: Mapping[str, Language] = {
    code: language_from(cat, code) for code, cat in _BUNDLED.items()
}
COUNTS: Mapping[str, str] = counts(_BUNDLED[DEFAULT_LANGUAGE])


def flat(languages: Mapping[str, Language]) -> dict[str, dict[str, str]]:
    """Each language as key -> one template (a plural entry's last form: "days", "дней")."""
    return {code: {k: v[-1] for k, v in lang.messages.items()} for code, lang in languages.items()}


CATALOGUE: Mapping[str, Mapping[str, str]] = flat(LANGUAGES)


def every_form(key: str, languages: Mapping[str, Language] = LANGUAGES) -> set[str]:
    """Every template ``key`` may be sent as: each form, in each language (English where one
    has no translation); to recognise a message whatever the customer's language and count."""
    english = languages[DEFAULT_LANGUAGE].messages[key]
    return {form for lang in languages.values() for form in lang.messages.get(key, english)}


# test mode (OKX_MODE=simulated): the customer screens that begin with the "test_banner", so
# nobody takes a rehearsal's invoice or payment for a real one
TEST_MARKED = frozenset(
    {
        "welcome_title",
        "welcome_title_shop",
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
        catalogue: Mapping[str, Language] = LANGUAGES,
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
        """The message ``key`` in ``lang`` (falling back to English), with escaped values.

        A plural entry picks its form by the value of its count field (``#. n: {field}``)."""
        return self._render(lang, key, None, values)

    def count(self, lang: str | None, key: str, n: int, **values: object) -> str:
        """The plural entry ``key`` in its form for ``n`` (whatever its fields hold)."""
        return self._render(lang, key, n, values)

    def _render(
        self, lang: str | None, key: str, n: int | None, values: Mapping[str, object]
    ) -> str:
        if n is None and key in COUNTS:
            n = _count(values.get(COUNTS[key]))
        number = 1 if n is None else n
        chosen = self.catalogue.get(self.language(lang))
        template = chosen.form(key, number) if chosen else None
        if template is None:
            english = self.catalogue[DEFAULT_LANGUAGE].form(key, number)
            if english is None:
                raise KeyError(key)
            template = english
        text = template.format(**{k: _safe(v) for k, v in values.items()})
        if self.test_mode and key in TEST_MARKED:
            return self._render(lang, "test_banner", None, {}) + text
        return text

    def date(self, ms: int | None) -> str:
        """A date and time with its zone, e.g. "2026-11-26 14:05 UTC"."""
        if ms is None:
            return "-"
        moment = datetime.fromtimestamp(ms / 1000, tz=self.zone)
        return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or self.zone.key)


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | str):
        try:
            return int(Decimal(value))
        except (ArithmeticError, ValueError):
            return None
    return None


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
