"""The shop's own words, end to end: SHOP_NAME and WELCOME_TEXT in the /start greeting, a
TEXTS_DIR catalogue replacing the bundled texts key by key (in the customer's language, the rest
as bundled), and an override that drops a placeholder refused by `python -m bot check` and at
start-up, naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.botkit import BotWorld

RU_OVERRIDE = """\
msgid ""
msgstr ""
"Language: ru\\n"
"Content-Type: text/plain; charset=utf-8\\n"
"Plural-Forms: nplurals=3; "
"plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);\\n"

msgctxt "plans_title"
msgid "<b>Plans</b>"
msgstr "<b>Наши подписки</b>"

msgctxt "plan_button"
msgid "{name} · {price} / {days} day"
msgid_plural "{name} · {price} / {days} days"
msgstr[0] "{name}: {price} за {days} сутки"
msgstr[1] "{name}: {price} за {days} суток"
msgstr[2] "{name}: {price} за {days} суток"
"""

EN_OVERRIDE = """\
msgid ""
msgstr ""
"Language: en\\n"
"Content-Type: text/plain; charset=utf-8\\n"

msgctxt "plans_title"
msgid "<b>Plans</b>"
msgstr "<b>Memberships</b>"

msgctxt "welcome_title"
msgid "<b>Welcome!</b>"
msgstr ""
"""

BAD_OVERRIDE = """\
msgid ""
msgstr ""
"Language: en\\n"
"Content-Type: text/plain; charset=utf-8\\n"

msgctxt "check_paid"
msgid "x"
msgstr "Checking invoice {invoce} now."
"""


async def test_shop_name_and_welcome_text_make_the_greeting(tmp_path: Path) -> None:
    env = {"SHOP_NAME": "Moon & Co", "WELCOME_TEXT": "Daily signals <for traders>."}
    async with BotWorld.open(tmp_path, env=env) as world, world.running():
        alice, olga = world.customer(101), world.customer(102, language="ru")
        shown = (await alice.send("/start", expect="Welcome")).plain
        assert shown.startswith("Welcome to Moon & Co! Daily signals <for traders>.")
        assert "Pick a plan below" not in shown  # the default body is replaced
        in_russian = (await olga.send("/start", expect="Добро пожаловать")).plain
        assert in_russian.startswith("Добро пожаловать в Moon & Co! Daily signals")


async def test_the_default_greeting_without_them(tmp_path: Path) -> None:
    async with BotWorld.open(tmp_path) as world, world.running():
        alice = world.customer(101)
        shown = (await alice.send("/start", expect="Welcome")).plain
        assert shown.startswith("Welcome! Pick a plan below.")


async def test_a_texts_dir_entry_replaces_the_bundled_text(tmp_path: Path) -> None:
    own = tmp_path / "texts"
    own.mkdir()
    (own / "ru.po").write_text(RU_OVERRIDE, encoding="utf-8")
    (own / "en.po").write_text(EN_OVERRIDE, encoding="utf-8")
    async with BotWorld.open(tmp_path, env={"TEXTS_DIR": str(own)}) as world, world.running():
        alice, olga = world.customer(101), world.customer(102, language="ru")
        plans = await olga.send("/plans", expect="Наши подписки")
        buttons = [text for text, _ in world.tg.buttons(plans)]
        assert any(b.startswith("Pro: ") and "суток" in b for b in buttons), buttons
        english = await alice.send("/plans", expect="Memberships")
        assert not any("суток" in text for text, _ in world.tg.buttons(english))
        # an entry left empty in the shop's file keeps the bundled text
        assert (await alice.send("/start", expect="Welcome")).plain.startswith("Welcome! Pick")


def _run(command: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TELEGRAM_BOT_TOKEN": "123456:TOKEN",
        "ADMIN_IDS": "1",
        "DATABASE_URL": f"sqlite:///{cwd / 'check.sqlite3'}",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_override_without_the_english_placeholders_is_refused_naming_the_key(
    tmp_path: Path,
) -> None:
    own = tmp_path / "texts"
    own.mkdir()
    (own / "en.po").write_text(BAD_OVERRIDE, encoding="utf-8")
    for command in ("check", "run"):
        result = _run(command, tmp_path, TEXTS_DIR=str(own))
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("subsbot: TEXTS_DIR: ")
        assert "'check_paid' must use the fields ['invoice'], not ['invoce']" in lines[0]
        assert str(own / "en.po") in lines[0]
