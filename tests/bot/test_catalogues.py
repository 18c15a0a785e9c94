"""The gettext catalogues (bot/texts/locale/<lang>/LC_MESSAGES/messages.po): they parse with
Babel and pass its checks, every language has every English key with exactly the English
fields, plural entries have the language's number of forms and pick them by its Plural-Forms."""

from __future__ import annotations

import shutil
import subprocess
from zoneinfo import ZoneInfo

import pytest
from babel.messages.plurals import get_plural

from bot.texts import (
    COUNTS,
    DEFAULT_LANGUAGE,
    LANGUAGES,
    Texts,
    bundled_catalogues,
    every_form,
    fields,
)
from tests.paths import REPO

CATALOGUES = bundled_catalogues()
EN = CATALOGUES[DEFAULT_LANGUAGE]
OTHERS = sorted(set(CATALOGUES) - {DEFAULT_LANGUAGE})


def test_english_and_russian_are_bundled() -> None:
    assert {"en", "ru"} <= set(CATALOGUES)


@pytest.mark.parametrize("code", sorted(CATALOGUES))
def test_catalogue_passes_babels_checks(code: str) -> None:
    catalog = CATALOGUES[code]
    assert catalog.locale is not None and str(catalog.locale) == code
    assert (catalog.num_plurals, catalog.plural_expr) == get_plural(code)
    problems = [
        f"{message.context}: {error}" for message, errors in catalog.check() for error in errors
    ]
    assert problems == []
    assert [m.context for m in catalog if m.id and not m.context] == []  # every entry has a key


@pytest.mark.parametrize("code", OTHERS)
def test_every_language_has_every_english_key(code: str) -> None:
    translated = LANGUAGES[code].messages
    missing = sorted(key for key in LANGUAGES[DEFAULT_LANGUAGE].messages if key not in translated)
    assert missing == [], f"{code} lacks {len(missing)} keys: {missing}"


@pytest.mark.parametrize("code", OTHERS)
def test_translations_use_exactly_the_english_fields(code: str) -> None:
    english = LANGUAGES[DEFAULT_LANGUAGE].messages
    wrong = [
        key
        for key, forms in LANGUAGES[code].messages.items()
        if key not in english or any(fields(form) != fields(english[key][-1]) for form in forms)
    ]
    assert wrong == []


@pytest.mark.parametrize("code", sorted(CATALOGUES))
def test_plural_entries_have_the_languages_number_of_forms(code: str) -> None:
    catalog = CATALOGUES[code]
    for message in catalog:
        if not message.context:
            continue
        if message.context in COUNTS:
            assert message.pluralizable, f"{code}.{message.context}"
            assert isinstance(message.string, tuple | list)
            assert len(message.string) == catalog.num_plurals, f"{code}.{message.context}"
        else:
            assert not message.pluralizable, f"{code}.{message.context} has no count field"


def test_every_plural_entry_names_its_count_field() -> None:
    english = LANGUAGES[DEFAULT_LANGUAGE].messages
    assert {"plan_button", "status_line", "subscription_reminder", "alert_not_sold"} <= set(COUNTS)
    for key, count_field in COUNTS.items():
        assert len(english[key]) == 2, key
        assert all(count_field in fields(form) for form in english[key]), key


def test_counts_pick_the_languages_plural_form() -> None:
    texts = Texts(ZoneInfo("UTC"))
    button = {"name": "Pro", "price": "$5"}
    assert texts.get("en", "plan_button", days=1, **button) == "Pro · $5 / 1 day"
    assert texts.get("en", "plan_button", days=30, **button) == "Pro · $5 / 30 days"
    russian = [texts.get("ru", "plan_button", days=n, **button) for n in (1, 3, 5, 21, 30)]
    assert russian == [
        "Pro · $5 / 1 день",
        "Pro · $5 / 3 дня",
        "Pro · $5 / 5 дней",
        "Pro · $5 / 21 день",
        "Pro · $5 / 30 дней",
    ]
    # an explicit count wins over the count field
    assert texts.count("en", "app_plan_days", 1, days="1") == "1 day"
    granted = [
        texts.get("ru", "subscription_granted", days=n, plan="Pro", until="x") for n in (1, 2, 7)
    ]
    assert [g.split(" тарифа")[0] for g in granted] == [
        "🎁 Вам начислено 1 день",
        "🎁 Вам начислено 2 дня",
        "🎁 Вам начислено 7 дней",
    ]


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt is not installed")
@pytest.mark.parametrize("code", sorted(CATALOGUES))
def test_gnu_msgfmt_accepts_the_catalogue(code: str) -> None:
    po = REPO / "bot" / "texts" / "locale" / code / "LC_MESSAGES" / "messages.po"
    result = subprocess.run(
        ["msgfmt", "--check", "-o", "/dev/null", str(po)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr


def test_every_form_recognises_a_message_in_any_language_and_count() -> None:
    forms = every_form("plan_button")
    assert {"{name} · {price} / {days} day", "{name} · {price} / {days} дня"} <= forms
    assert every_form("help") == {LANGUAGES[DEFAULT_LANGUAGE].messages["help"][0]} | {
        lang.messages["help"][0] for lang in LANGUAGES.values() if "help" in lang.messages
    }
