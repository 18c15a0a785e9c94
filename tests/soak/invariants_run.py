"""The run the invariant tests break copies of (tests/soak/test_invariants.py): the real bot
in-process against the fake Telegram (with a paid chat), the fake OKX and a webhook receiver, on
SQLite. Alice pays exactly and joins the chat through her link; Bob blocks the bot, then pays;
Carol abandons her invoice; an unrelated internal transfer arrives; then a customer floods the
bot while Alice and Carol write /help. The bot's log is written as ``bot.logs.configure`` writes
it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.config import Settings
from bot.logs import RedactSecrets, secrets_of
from fakes.receiver import WebhookReceiver
from payments import states as st
from payments.catalog import default_plans_path
from payments.clock import MINUTE_MS
from payments.storage import Database
from payments.storage.schema import deposits, invoices, memberships, merchant_events
from tests.botkit import FAST, BotWorld, address_of, amount_of
from tests.soak.flood import FLOODER, Flooder, measured_flood
from tests.soak.invariants import Options, World, check, default_rules, load_world
from tests.soak.record import SoakRecord

CLUB = -1002233445566
ALICE, BOB, CAROL = 3101, 3102, 3103
MERCHANT_SECRET = "merchant-secret-0123456789"
LINK = re.compile(r"https://t\.me/\+\S+")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # bot.logs.configure's


@dataclass
class Run:
    world: World
    violations: list[str]  # what check() said about the run itself
    options: Options
    log: Path


def plans_with_chat(tmp: Path) -> Path:
    text = default_plans_path().read_text(encoding="utf-8")
    path = tmp / "plans.toml"
    path.write_text(text.replace('id = "pro"\n', f'id = "pro"\nchats = [{CLUB}]\n', 1), "utf-8")
    return path


@contextmanager
def bot_log(path: Path, settings: Settings) -> Iterator[None]:
    """The bot's records into ``path`` as ``bot.logs.configure`` writes them (added beside
    pytest's handlers instead of replacing them)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    root = logging.getLogger()
    quiet = [logging.getLogger(n) for n in ("httpx", "httpcore", "aiosqlite", "asyncio")]
    levels = [root.level, *(q.level for q in quiet)]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        for logger, level in zip([root, *quiet], levels, strict=True):
            logger.setLevel(level)


async def until(what: str, condition: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def reading(url: str) -> AsyncIterator[Database]:
    db = Database.from_url(url)
    try:
        yield db
    finally:
        await db.close()


async def count(url: str, query: Any) -> int:
    async with reading(url) as db, db.read() as conn:
        return len((await conn.execute(query)).all())


async def the_run(tmp: Path) -> Run:
    plans = plans_with_chat(tmp)
    log = tmp / "bot.log"
    with WebhookReceiver() as receiver:
        env = {"PLANS_FILE": str(plans), "MERCHANT_WEBHOOK_URLS": receiver.url}
        env |= {"MERCHANT_WEBHOOK_SECRET": MERCHANT_SECRET}
        async with BotWorld.open(tmp, env=env) as world:
            world.tg.add_chat(CLUB, title="Pro Club")
            url, tg, okx = world.database_url, world.tg, world.okx
            with bot_log(log, world.settings):
                async with world.running(timings=replace(FAST, webhooks=0.2)):
                    alice, bob, carol = (world.customer(c) for c in (ALICE, BOB, CAROL))
                    photos = [await c.buy("Pro", "USDT", "Tron (TRC20)") for c in (alice, bob)]
                    await carol.buy("Pro", "USDT", "Tron (TRC20)")
                    tg.block(BOB)
                    for photo in photos:
                        okx.add_deposit(
                            "USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo)
                        )
                    okx.add_deposit("USDT", "USDT-TRC20", "77.7777", type="3")  # nobody's
                    world.clock.advance(MINUTE_MS)
                    message = await alice.wait_text("Join with this link", timeout=30)
                    found = LINK.search(message.plain)
                    assert found, message.plain
                    assert tg.join_by_link(ALICE, found.group(0)) == "joined"

                    member = select(memberships).where(memberships.c.state == "member")
                    paid = select(invoices).where(invoices.c.status == st.PAID)
                    unmatched = select(deposits).where(deposits.c.disposition == st.DEP_UNMATCHED)
                    await until("alice is a member", lambda: _at_least(url, member, 1))
                    await until("two paid invoices", lambda: _at_least(url, paid, 2))
                    await until("an unmatched deposit", lambda: _at_least(url, unmatched, 1))

                    async def delivered() -> bool:
                        events = await count(url, select(merchant_events.c.id))
                        ids = {r.json()["id"] for r in receiver.accepted()}
                        return events >= 5 and len(ids) >= events

                    await until("every webhook delivered", delivered)
                    flooder = Flooder(tg, random.Random(0))
                    tg.user(FLOODER, first_name="Flooder")
                    probes = await measured_flood(flooder, [ALICE, CAROL], size=400, pieces=2)
                    await world.settled()
                    record = SoakRecord(
                        database_url=url,
                        tg=tg,
                        okx=okx,
                        receiver=receiver,
                        logs=[log],
                        secrets=[
                            tg.token,
                            okx.api_key,
                            okx.secret,
                            okx.passphrase,
                            MERCHANT_SECRET,
                        ],
                        customers={ALICE: "exact", BOB: "blocked", CAROL: "abandoned"},
                        blocked={BOB},
                        chats={"pro": [CLUB]},
                        probes=[(p.chat_id, p.update_id) for p in probes],
                    )
                    now = world.clock.now_ms()
                    options = Options(rules=default_rules(plans), now_ms=now)
                    violations = await check(record, options)
                    loaded = await load_world(record, now_ms=now)
    return Run(loaded, violations, options, log)


async def _at_least(url: str, query: Any, n: int) -> bool:
    return await count(url, query) >= n
