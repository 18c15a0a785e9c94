"""Pure units of the bot layer: callback data, the text catalogue, configuration."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot import callbacks as cb
from bot.config import Settings, load_settings
from bot.logs import RedactSecrets, secrets_of
from bot.texts import CATALOGUE, DEFAULT_LANGUAGE, Html, Texts, fields
from payments import states
from payments.errors import ConfigError
from tests.paths import REPO

BOT = REPO / "bot"
EN = CATALOGUE[DEFAULT_LANGUAGE]

# --- callback data -------------------------------------------------------------------------------

EVERY_ACTION: list[cb.Action] = [
    cb.Menu(),
    cb.ChoosePlan("pro"),
    cb.Renew("enterprise"),
    cb.ChooseCoin("pro", "USDT"),
    cb.ChooseNetwork("pro", "USDT", "TRC20"),
    cb.CheckInvoice("ABCD2345"),
    cb.ClaimInvoice("ABCD2345"),
    cb.CancelInvoice("ABCD2345"),
    cb.AdminConfirm("ABCD2345", force=False),
    cb.AdminConfirm("ABCD2345", force=True),
    cb.AdminReject("ABCD2345"),
    cb.AdminPage(0),
    cb.AdminPage(9999),
]


@pytest.mark.parametrize("action", EVERY_ACTION, ids=repr)
def test_every_action_round_trips(action: cb.Action) -> None:
    data = cb.encode(action)
    assert data.startswith(f"{cb.VERSION}:")
    assert len(data.encode()) <= cb.MAX_BYTES
    assert cb.parse(data) == action


def test_every_action_type_is_covered() -> None:
    assert {type(a) for a in EVERY_ACTION} == set(cb.Action.__args__)


def test_the_longest_catalogue_values_fit() -> None:
    longest = cb.ChooseNetwork("p" * 24, "C" * 10, "N" * 12)
    assert len(cb.encode(longest)) <= cb.MAX_BYTES
    assert cb.parse(cb.encode(longest)) == longest


@pytest.mark.parametrize(
    "data",
    [
        "",
        "1",
        "1:",
        "2:m",
        "1:m:",
        "1:m:x",
        "1:p",
        "1:p:",
        "1:p:Pro",
        "1:p:pro:",
        "1:p:pro\n",
        "1:k:ABCD\n",
        "1:k:abcd2345",
        "1:k:ABC",
        "1:k:ABCD2345:extra",
        "1:ap:01",
        "1:ap:-1",
        "1:ap:10000",
        "1:ap:1\n",
        "1:ac:ABCD2345:1",
        "1:zz:ABCD2345",
        " 1:m",
        "1:m ",
        "1:k:ＡＢＣＤ",
        "1:ap:١",
    ],
)
def test_anything_not_canonical_is_refused(data: str) -> None:
    assert cb.parse(data) is None


def test_nothing_longer_than_64_bytes_is_parsed() -> None:
    assert cb.parse("1:k:" + "A" * 61) is None


_TAGS = ["m", "p", "r", "c", "n", "k", "l", "x", "ac", "af", "ar", "ap", "", "zz"]
_PART = st.one_of(
    st.from_regex(r"[a-z0-9_-]{0,26}", fullmatch=True),
    st.from_regex(r"[A-Z0-9]{0,17}", fullmatch=True),
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    st.text(max_size=6),
)


@st.composite
def _shaped(draw: st.DrawFn) -> str:
    """Data that looks like ours: version, a known tag and a few plausible arguments."""
    version = draw(st.sampled_from(["1", "1", "1", "0", "2", ""]))
    parts = [draw(st.sampled_from(_TAGS)), *draw(st.lists(_PART, max_size=4))]
    return ":".join([version, *parts]) + draw(st.sampled_from(["", "", "\n", " ", ":"]))


def _at_most_64_bytes(text: str) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) <= cb.MAX_BYTES


@given(st.one_of(st.text(max_size=64), _shaped()).filter(_at_most_64_bytes))
@example("1:n:pro:USDT:TRC20")
@example("1:ap:0")
@example("\ud800")
def test_parse_never_raises_and_accepts_only_what_encode_makes(data: str) -> None:
    action = cb.parse(data)
    if action is not None:
        assert isinstance(action, cb.Action.__args__)
        assert cb.encode(action) == data


# --- texts ---------------------------------------------------------------------------------------


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
    assert "ru" in CATALOGUE and "help" not in CATALOGUE["ru"]
    assert texts.get("ru", "help") == EN["help"]  # not translated: English


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


def test_the_configured_zone_reaches_the_texts() -> None:
    settings = load_settings({**BASE_ENV, "TIMEZONE": "Europe/Berlin"})
    assert Texts(settings.zone).date(_ms(2026, 1, 15, 12, 5)).endswith(" CET")


# --- configuration -------------------------------------------------------------------------------

SECRETS = {
    "TELEGRAM_BOT_TOKEN": "123:tg-token-s3cr3t",
    "OKX_API_KEY": "okx-key-s3cr3t",
    "OKX_SECRET_KEY": "okx-secret-s3cr3t",
    "OKX_PASSPHRASE": "okx-pass-s3cr3t",
}
BASE_ENV = {**SECRETS, "ADMIN_IDS": "900"}


def _problem(**changes: str | None) -> str:
    env = {k: v for k, v in {**BASE_ENV, **changes}.items() if v is not None}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert "\n" not in message
    for secret in (*SECRETS.values(), "wh-s3cr3t-0123456789", "db-s3cr3t"):
        assert secret not in message
    return message


def test_a_complete_environment_loads() -> None:
    settings = load_settings({**BASE_ENV, "ADMIN_IDS": " 900, 901 ;902"})
    assert isinstance(settings, Settings)
    assert settings.admin_ids == (900, 901, 902)
    assert settings.telegram_bot_token.get_secret_value() == SECRETS["TELEGRAM_BOT_TOKEN"]
    assert settings.payment_poll_seconds == 60 and settings.invoice_ttl_minutes == 120


@pytest.mark.parametrize("name", ["TELEGRAM_BOT_TOKEN", "ADMIN_IDS", "OKX_PASSPHRASE"])
def test_a_missing_setting_is_named(name: str) -> None:
    assert _problem(**{name: None}) == f"{name} is not set"


def test_empty_values_mean_unset() -> None:
    """As in a .env template ("PORT="): a required one is missing, an optional one default."""
    assert _problem(TELEGRAM_BOT_TOKEN="") == "TELEGRAM_BOT_TOKEN is not set"
    assert _problem(OKX_SECRET_KEY="  ") == "OKX_SECRET_KEY is not set"
    settings = load_settings({**BASE_ENV, "PORT": "", "PLANS_FILE": "", "WEBHOOK_URL": ""})
    assert settings.port is None and settings.plans_file is None
    assert settings.webhook_url is None


@pytest.mark.parametrize("value", ["", "abc", "-5", "0", "900,abc", " , "])
def test_bad_admin_ids_are_named(value: str) -> None:
    assert _problem(ADMIN_IDS=value).startswith("ADMIN_IDS")


def test_a_webhook_needs_its_secret() -> None:
    assert "WEBHOOK_SECRET" in _problem(WEBHOOK_URL="https://shop.example/tg")
    settings = load_settings(
        {
            **BASE_ENV,
            "WEBHOOK_URL": "https://shop.example",
            "WEBHOOK_SECRET": "wh-s3cr3t-0123456789",
        }
    )
    assert settings.webhook_secret is not None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INVOICE_TTL_MINUTES", "1"),
        ("INVOICE_TTL_MINUTES", "abc"),
        ("PAYMENT_MONITOR_HOURS", "0"),
        ("SETTLE_ON_STATE", "3"),
        ("PAYMENT_POLL_SECONDS", "0"),
        ("PORT", "70000"),
        ("QR_PAYLOAD", "bip21"),
        ("TIMEZONE", "Mars/Olympus"),
        ("OKX_API_URL", "www.okx.com"),
    ],
)
def test_bad_values_are_named(name: str, value: str) -> None:
    assert name in _problem(**{name: value})


def test_the_given_mapping_is_all_that_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit env must not be mixed with the process environment (a stray PORT or token)."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "from-the-process")
    monkeypatch.setenv("PORT", "not-a-number")
    assert _problem(TELEGRAM_BOT_TOKEN=None) == "TELEGRAM_BOT_TOKEN is not set"
    assert load_settings(BASE_ENV).port is None


def test_guessable_webhook_secrets_and_api_tokens_are_refused() -> None:
    hook = {"WEBHOOK_URL": "https://shop.example"}
    short = _problem(**hook, WEBHOOK_SECRET="wh-s3cr3t")
    assert short.startswith("WEBHOOK_SECRET: must be 16-256 characters"), short
    assert "wh-s3cr3t" not in short
    token = _problem(API_TOKEN="api-s3cr3t")
    assert token.startswith("API_TOKEN: must be at least 16 characters"), token
    assert "api-s3cr3t" not in token


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings(
        {
            **BASE_ENV,
            "WEBHOOK_URL": "https://shop.example",
            "WEBHOOK_SECRET": "wh-s3cr3t-0123456789",
            "API_TOKEN": "api-s3cr3t-0123456789",
            "DATABASE_URL": "postgresql://shop:db-s3cr3t@db.example/shop",
        }
    )
    shown = repr(settings) + str(settings)
    for secret in (*SECRETS.values(), "wh-s3cr3t-0123456789", "api-s3cr3t-0123456789", "db-s3cr3t"):
        assert secret not in shown
    assert "db.example" in shown and repr(settings).startswith("Settings(")
    assert settings.database_url == "postgresql://shop:db-s3cr3t@db.example/shop"


def test_the_database_password_is_redacted_from_logs_as_written_and_decoded() -> None:
    url = "postgresql://shop:pa%40ss-word-9@db.internal:5432/shop"
    secrets = secrets_of(load_settings({**BASE_ENV, "DATABASE_URL": url}))
    assert "pa%40ss-word-9" in secrets and "pa@ss-word-9" in secrets
    text = RedactSecrets(secrets).redact(f"{url} refused: password for shop:pa@ss-word-9")
    assert text == "postgresql://shop:***@db.internal:5432/shop refused: password for shop:***"
    sqlite = secrets_of(load_settings({**BASE_ENV, "DATABASE_URL": "sqlite:///data/shop.db"}))
    assert len(sqlite) == len(secrets) - 2  # no password, nothing extra to redact


# --- update ordering -----------------------------------------------------------------------------


def _update(update_id: int, chat_id: int | None) -> object:
    from telegram import Chat, Message, Update

    if chat_id is None:
        return Update(update_id)
    message = Message(update_id, datetime.now(UTC), Chat(chat_id, "private"))
    return Update(update_id, message=message)


async def test_each_chat_keeps_its_order_while_chats_run_side_by_side() -> None:
    import asyncio

    from bot.ordering import ChatOrderedProcessor

    processor = ChatOrderedProcessor(limit=2)
    events: list[tuple[str, int]] = []
    running = [0]
    most = [0]

    async def work(update_id: int, delay: float) -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        events.append(("start", update_id))
        await asyncio.sleep(delay)
        events.append(("end", update_id))
        running[0] -= 1

    plan = [(1, 7, 0.05), (2, 7, 0.0), (3, 8, 0.01), (4, 9, 0.01), (5, 7, 0.0), (6, None, 0.0)]
    await asyncio.gather(
        *(processor.process_update(_update(i, chat), work(i, delay)) for i, chat, delay in plan)
    )
    starts = [i for kind, i in events if kind == "start"]
    assert events.index(("start", 2)) > events.index(("end", 1))  # chat 7 in order
    assert events.index(("start", 5)) > events.index(("end", 2))
    assert events.index(("start", 3)) < events.index(("end", 1))  # chat 8 did not wait for 7
    assert most[0] == 2  # the cap
    assert sorted(starts) == [1, 2, 3, 4, 5, 6]
    assert processor._senders == {}  # nothing left behind


# --- admin alerts as rendered --------------------------------------------------------------------

_DEPOSIT = {
    "dep_id": "1001",
    "currency": "USDT",
    "chain": "USDT-TRC20",
    "deposit_amount": "3.1415",
    "state": "2",
    "tx_id": "ab" * 32,
    "ts": _ms(2026, 1, 15, 12, 5),
}
_INVOICE = {
    "invoice_id": "ABCD2345",
    "customer_id": 101,
    "plan_id": "pro",
    "currency": "USDT",
    "network": "TRC20",
    "amount": "29.0001",
}


def _admin_payloads() -> dict[str, dict[str, object]]:
    """Each admin kind with the payload the payments core writes for it."""
    from payments.delivery import messages

    since = {"since": _ms(2026, 1, 15, 12, 0), "error": "OKX refused the API key (<50105>)"}
    return {
        messages.ADMIN_PAID: {**_INVOICE, "ends_at": _ms(2026, 2, 14), "exceptions": ["marked"]},
        messages.ADMIN_UNMATCHED: {**_DEPOSIT, "reason": "x", "candidate_invoice_id": "ABCD2345"},
        messages.ADMIN_ON_HOLD: {**_DEPOSIT, "state": "12"},
        messages.ADMIN_FROZEN: {**_DEPOSIT, "invoice_id": "ABCD2345", "reason": "amount changed"},
        messages.ADMIN_DUPLICATE: {**_DEPOSIT, "invoice_id": "ABCD2345"},
        messages.ADMIN_AFTER_CLOSE: {**_DEPOSIT, "invoice_id": "ABCD2345"},
        messages.ADMIN_LATE_REVIEW: {**_INVOICE, "received": "29.0001", "exceptions": []},
        messages.ADMIN_PARTIAL_UNFINISHED: {**_INVOICE, "received": "10"},
        messages.ADMIN_TOPUP_UNAVAILABLE: {**_INVOICE, "received": "10"},
        messages.ADMIN_CLAIM_REVIEW: {**_INVOICE, "dep_id": "1001", "reason": "second_claim"},
        messages.ADMIN_OKX_AUTH: since,
        messages.ADMIN_OKX_DOWN: since,
        messages.ADMIN_OKX_RECOVERED: {"since": since["since"], "failure": "auth"},
        messages.ADMIN_CLOCK: {"offset_ms": 45_200},
        messages.ADMIN_CAPACITY: {
            "currency": "USDT",
            "free": 3,
            "total": 100,
            "what": "amounts",
            "plan_id": "pro",
        },
        "admin.something_new": {"b": "<2>", "a": 1},
    }


def test_every_admin_alert_renders_as_valid_html_with_its_facts() -> None:
    from bot.notifications import Renderer
    from fakes.telegram_state import parse_html
    from payments import load_catalog

    renderer = Renderer(Texts(ZoneInfo("UTC")), load_catalog())
    shown = {}
    for kind, payload in _admin_payloads().items():
        text = renderer.admin(kind, payload).text
        plain, _ = parse_html(text)
        assert "{" not in plain and "None" not in plain, (kind, plain)
        shown[kind] = plain
    from payments.delivery import messages

    assert "Paid: invoice ABCD2345 · Pro · 29.0001 USDT TRC20" in shown[messages.ADMIN_PAID]
    assert "customer 101 (marked) · until 2026-02-14 00:00 UTC" in shown[messages.ADMIN_PAID]
    unmatched = shown[messages.ADMIN_UNMATCHED]
    assert "Unmatched deposit 1001: 3.1415 USDT (USDT-TRC20) · maybe ABCD2345" in unmatched
    assert "deposit 1001 3.1415 USDT" in shown[messages.ADMIN_DUPLICATE]
    assert "(<50105>)" in shown[messages.ADMIN_OKX_AUTH]  # escaped, shown as written
    assert "since 2026-01-15 12:00 UTC" in shown[messages.ADMIN_OKX_DOWN]
    assert "45 s off" in shown[messages.ADMIN_CLOCK]
    assert "3 of 100 free" in shown[messages.ADMIN_CAPACITY]
    assert "AMOUNT_OFFSET_CAP_PERCENT" in shown[messages.ADMIN_CAPACITY]
    assert shown["admin.something_new"] == "ℹ️ admin.something_new: a=1, b=<2>"
