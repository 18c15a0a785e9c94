"""The text catalogue (bot/texts/): every key the code names exists, every template formats as
valid Telegram HTML in every language, values are escaped, dates carry their zone."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.texts import CATALOGUE, DEFAULT_LANGUAGE, LANGUAGES, Html, Texts, fields
from payments import states
from tests.paths import REPO

BOT = REPO / "bot"
EN = CATALOGUE[DEFAULT_LANGUAGE]


@pytest.mark.parametrize("lang", sorted(set(CATALOGUE) - {DEFAULT_LANGUAGE}))
def test_translations_use_english_keys_and_exactly_its_fields(lang: str) -> None:
    table = CATALOGUE[lang]
    assert set(table) <= set(EN), f"{lang} has keys English lacks: {set(table) - set(EN)}"
    for key, template in table.items():
        assert fields(template) == fields(EN[key]), f"{lang}.{key}"


@pytest.mark.parametrize("lang", sorted(CATALOGUE))
def test_every_template_formats_and_is_valid_telegram_html(lang: str) -> None:
    from fakes.telegram_state import parse_html

    texts = Texts(ZoneInfo("UTC"))
    for key, template in CATALOGUE[lang].items():
        text = texts.get(lang, key, **dict.fromkeys(fields(template), "<x & y>"))
        parse_html(text)  # raises like Telegram on broken HTML
        assert "<x" not in text, f"{lang}.{key}: a value was not escaped"


def test_values_are_escaped_unless_marked_safe() -> None:
    texts = Texts(ZoneInfo("UTC"))
    assert texts.get("en", "not_yours") == EN["not_yours"]
    assert "&lt;b&gt;" in texts.get("en", "check_paid", invoice="<b>")
    assert "<b>" in texts.get("en", "admin_stats_item", name=Html("<b>x</b>"), value=1)


def test_language_falls_back_to_english() -> None:
    texts = Texts(ZoneInfo("UTC"))
    assert texts.language("ru-RU") == "ru"
    assert texts.language("RU") == "ru"
    assert texts.language("pt-br") == "en"
    assert texts.language(None) == "en"
    # a language that lacks a key shows the English text for it
    ru = LANGUAGES["ru"]
    partial = replace(ru, messages={"unknown": ru.messages["unknown"]})
    mixed = Texts(ZoneInfo("UTC"), {**LANGUAGES, "ru": partial})
    assert mixed.get("ru", "unknown") == texts.get("ru", "unknown") != EN["unknown"]
    assert mixed.get("ru", "help") == EN["help"] != texts.get("ru", "help")


def _code_keys() -> Iterator[tuple[str, str]]:
    """(where, key or prefix*) for every catalogue key the bot's code names."""
    for path in sorted(BOT.rglob("*.py")):
        if path.parent.name == "texts":
            continue
        tree = ast.parse(path.read_text(), str(path))
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.value is not None
            ):
                assigned.setdefault(node.target.id, []).append(node.value)
            if isinstance(node, ast.FunctionDef):  # a helper returning the key: its returns
                returns = [r.value for r in ast.walk(node) if isinstance(r, ast.Return)]
                assigned.setdefault(f"{node.name}()", []).extend(r for r in returns if r)
            if isinstance(node, ast.For | ast.comprehension):
                for part in ast.walk(node.target):
                    if isinstance(part, ast.Name):
                        assigned.setdefault(part.id, []).append(node.iter)
        for node in ast.walk(tree):
            is_get = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and len(node.args) >= 2
                and _is_texts(node.func.value)
            )
            if not is_get:
                continue
            assert isinstance(node, ast.Call)
            where = f"{path.name}:{node.lineno}"
            arg = node.args[1]
            keys = list(_candidates(arg, assigned))
            assert keys, f"{where}: cannot tell which key {ast.unparse(arg)} is"
            for key in keys:
                yield where, key


def _candidates(
    expr: ast.expr, assigned: dict[str, list[ast.expr]], depth: int = 4
) -> Iterator[str]:
    """The strings a key argument may be ("prefix*" for an f-string), names followed through
    assignments, dict lookups through their values, conditionals through both branches."""
    if depth < 0:
        return
    match expr:
        case ast.Constant(value=str() as text):
            yield text
        case ast.JoinedStr(values=[ast.Constant(value=str() as prefix), *_]):
            yield f"{prefix}*"
        case ast.IfExp(body=body, orelse=orelse):
            yield from _candidates(body, assigned, depth)
            yield from _candidates(orelse, assigned, depth)
        case ast.Dict(values=items):
            for item in items:
                yield from _candidates(item, assigned, depth)
        case ast.Tuple(elts=elts) | ast.List(elts=elts):
            for elt in elts:
                yield from _candidates(elt, assigned, depth)
        case ast.Call(func=ast.Attribute(attr="get", value=mapping)):
            yield from _candidates(mapping, assigned, depth - 1)
        case ast.Call(func=ast.Name(id=function)):
            for returned in assigned.get(f"{function}()", []):
                yield from _candidates(returned, assigned, depth - 1)
        case ast.Name(id=name):
            for bound in assigned.get(name, []):
                yield from _candidates(bound, assigned, depth - 1)


def _is_texts(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in {"texts", "t"}


def test_every_key_the_code_names_exists_in_english() -> None:
    found = list(_code_keys())
    names = {key for _, key in found}
    # the scan follows loops, conditionals, dict lookups and helpers, not only literals
    assert {"admin_pending_review", "alert_capacity_addresses", "alert_paid"} <= names
    assert {"banner_paid", "status_expired_line", "status_*", "claim_reason_*"} <= names
    missing = [
        (where, key)
        for where, key in found
        if not (any(k.startswith(key[:-1]) for k in EN) if key.endswith("*") else key in EN)
    ]
    assert missing == []


def test_keys_built_at_run_time_exist() -> None:
    from bot import invoice_card, notifications

    for status in states.ALL_STATUSES:
        assert f"status_{status}" in EN
    for reason in ("already_attached", "other_currency", "older_than_invoice"):
        assert f"claim_reason_{reason}" in EN
    mapped = [
        *notifications._CUSTOMER_KEYS.values(),
        *notifications._ADMIN_KEYS.values(),
        *invoice_card._BANNERS.values(),
    ]
    assert [k for k in mapped if k not in EN] == []


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def test_dates_carry_their_zone() -> None:
    utc = Texts(ZoneInfo("UTC"))
    assert utc.date(_ms(2026, 1, 15, 12, 5)) == "2026-01-15 12:05 UTC"
    assert utc.date(None) == "-"
    berlin = Texts(ZoneInfo("Europe/Berlin"))
    assert berlin.date(_ms(2026, 1, 15, 12, 5)) == "2026-01-15 13:05 CET"
    assert berlin.date(_ms(2026, 7, 15, 12, 5)) == "2026-07-15 14:05 CEST"
