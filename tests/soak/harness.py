"""The soak's world: the fakes in this process, the bot as ``python -m bot run`` subprocesses.

:class:`Harness` starts the fake Telegram (with paid chats), the fake OKX (on a clock the run
moves forward, with a deposit address pool for every chain sold) and a merchant webhook
receiver; writes the plans file; and starts, SIGKILLs, restarts and stops bot processes, each
writing its combined stdout/stderr to a file of its own. One process long-polls (SQLite or
PostgreSQL); ``replicas`` > 1 runs that many in webhook mode on PostgreSQL behind the fake
Telegram's load balancer. :func:`run_soak` (tests.soak.run) drives a whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import exists, func, select
from sqlalchemy.engine import make_url

from fakes.okx import FakeOkx
from fakes.okx_data import address_kind, fake_address
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from payments.access import HELD
from payments.storage import Database
from payments.storage import schema as tables
from tests.soak.faults import FlakyReceiver, ShiftedClock
from tests.soak.hoard import MAX_HELD

ADMIN = 900
CHATS = {"pro": [-1001000000001, -1001000000002]}
POOL_CHAINS = (("USDT", "USDT-TRC20"), ("USDT", "USDT-BSC"), ("SOL", "SOL-Solana"))
TTL_MINUTES, MONITOR_HOURS = 60, 1
PRO_STARS = 1500  # Pro is also sold for Telegram Stars: a subscription renewed every 30 days
PLANS = f"""
[[plans]]
id = "pro"
name = "Pro"
price_usd = "29"
days = 30
description = "Everything, and the two paid channels"
stars = {PRO_STARS}
chats = [{", ".join(str(c) for c in CHATS["pro"])}]

[[plans]]
id = "basic"
name = "Basic"
price_usd = "9"
days = 7
description = "The basics for a week"

[[coins]]
symbol = "USDT"
step = "0.0001"
networks = [
    {{ code = "TRC20", chain = "USDT-TRC20", label = "Tron (TRC20)", allowance = "1" }},
    {{ code = "BEP20", chain = "USDT-BSC", label = "BNB Smart Chain (BEP20)" }},
]

[[coins]]
symbol = "USDC"
step = "0.0001"
networks = [{{ code = "ERC20", chain = "USDC-ERC20", label = "Ethereum (ERC20)" }}]

[[coins]]
symbol = "SOL"
step = "0.0000001"
networks = [{{ code = "SOL", chain = "SOL-Solana", label = "Solana" }}]
"""


@dataclass
class BotProcess:
    replica: int
    process: asyncio.subprocess.Process
    log: Path
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


@dataclass
class Harness:
    workdir: Path
    database_url: str
    tg: FakeTelegram
    okx: FakeOkx
    receiver: FlakyReceiver
    clock: ShiftedClock
    replicas: int
    log_level: str
    secrets: dict[str, str]
    ports: list[int]
    processes: dict[int, BotProcess] = field(default_factory=dict)  # replica -> the live one
    logs: list[Path] = field(default_factory=list)
    start_failures: int = 0  # processes that exited while starting (restarted, as a supervisor)
    endpoints: int = 1  # merchant webhook URLs, all on the receiver (paths endpoint_paths)
    exit_codes: list[int | None] = field(default_factory=list)  # of graceful stops

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        workdir: Path,
        *,
        pool: int,
        database_url: str | None = None,
        replicas: int = 1,
        log_level: str = "INFO",
    ) -> AsyncIterator[Harness]:
        """``database_url``: a PostgreSQL server to create a database of the run's own on
        (dropped afterwards); None: SQLite in ``workdir``. ``pool``: deposit addresses per
        chain sold (more than the invoices open at once, so each has an address of its own)."""
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        pg_name = None
        if database_url:
            pg_name, url = await _create_pg_database(database_url)
        else:
            if replicas > 1:
                raise ValueError("replicas need PostgreSQL (--database-url)")
            url = f"sqlite:///{workdir / 'soak.sqlite3'}"
        (workdir / "plans.toml").write_text(PLANS)
        token = f"{secrets.randbelow(10**9) + 10**9}:SOAK-{secrets.token_urlsafe(24)}"
        clock = ShiftedClock()
        tg = FakeTelegram(token=token).start()
        okx = FakeOkx(
            clock=clock,
            api_key=f"soak-key-{uuid.uuid4()}",
            secret=f"SOAKSECRET{secrets.token_hex(16)}",
            passphrase=f"soak-pass-{secrets.token_hex(8)}",
        ).start()
        receiver = FlakyReceiver().start()
        try:
            for chat_id in CHATS["pro"]:
                tg.add_chat(chat_id, title=f"Soak channel {chat_id}")
            tg.user(ADMIN, first_name="Admin", language_code="en")
            for ccy, chain in POOL_CHAINS:
                for i in range(pool):
                    addr = fake_address(address_kind(chain), f"soak/{chain}/{i}")
                    okx.add_address(ccy, chain, addr)
            keys = {
                "token": token,
                "okx_secret": okx.secret,
                "okx_passphrase": okx.passphrase,
                "okx_api_key": okx.api_key,
                "webhook_secret": f"soak_webhook_{secrets.token_hex(12)}",
                "api_token": f"soak-api-{secrets.token_hex(12)}",
                "merchant_secret": f"soak-merchant-{secrets.token_hex(12)}",
            }
            ports = [_free_port() for _ in range(replicas)]
            yield cls(workdir, url, tg, okx, receiver, clock, replicas, log_level, keys, ports)
        finally:
            receiver.stop()
            tg.stop()
            okx.stop()
            if pg_name is not None and database_url:
                await _drop_pg_database(database_url, pg_name)

    @property
    def endpoint_paths(self) -> list[str]:
        first = self.receiver.path
        return [first] + [f"{first}-{n}" for n in range(2, self.endpoints + 1)]

    # --- the bot processes ------------------------------------------------------------------

    def env(self, replica: int) -> dict[str, str]:
        tg, okx, keys = self.tg, self.okx, self.secrets
        port = self.ports[replica]
        env = bot_env(
            tg,
            okx,
            self.database_url,
            admins=str(ADMIN),
            home=self.workdir,
            PLANS_FILE=str(self.workdir / "plans.toml"),
            PAYMENT_POLL_SECONDS="1",
            INVOICE_TTL_MINUTES=str(TTL_MINUTES),
            PAYMENT_MONITOR_HOURS=str(MONITOR_HOURS),
            MERCHANT_WEBHOOK_URLS=",".join(self.receiver.root_url + p for p in self.endpoint_paths),
            MERCHANT_WEBHOOK_SECRET=keys["merchant_secret"],
            HOST="127.0.0.1",
            PORT=str(port),
            API_TOKEN=keys["api_token"],
            LOG_LEVEL=self.log_level,
            MAX_HELD_AMOUNTS=str(MAX_HELD),
            STARS_RECONCILE_SECONDS="3",  # a soak lasts minutes: the ledger every few seconds
        )
        if self.replicas > 1:
            env["WEBHOOK_URL"] = f"http://127.0.0.1:{port}"
            env["WEBHOOK_SECRET"] = keys["webhook_secret"]
        return env

    async def start(self, replica: int, *, timeout_s: float = 90.0) -> BotProcess:
        """Start a bot process and wait until it says it is running. One that exits while
        starting (Telegram failed getMe, say) is started again, as a supervisor would."""
        deadline = time.monotonic() + timeout_s
        while True:
            log = self.workdir / "logs" / f"bot-{replica}-{len(self.logs):02d}.log"
            log.parent.mkdir(exist_ok=True)
            self.logs.append(log)
            with log.open("ab") as out:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    cwd=self.workdir,
                    env=self.env(replica),
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                )
            bot = BotProcess(replica, process, log, self.ports[replica])
            while process.returncode is None and time.monotonic() < deadline:
                if " is running as @" in log.read_text(errors="replace"):
                    self.processes[replica] = bot
                    return bot
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 0.1)
            if process.returncode is None:
                await self.kill(bot)
                raise RuntimeError(f"bot {replica} did not start in {timeout_s} s (see {log})")
            self.start_failures += 1
            await asyncio.sleep(0.5)

    async def kill(self, bot: BotProcess) -> None:
        with contextlib.suppress(ProcessLookupError):
            bot.process.send_signal(signal.SIGKILL)
        await bot.process.wait()

    async def restart(self, pid: int) -> None:
        """Start again the replica whose process ``pid`` was killed."""
        for replica, bot in list(self.processes.items()):
            if bot.pid == pid:
                await bot.process.wait()
                await self.start(replica)
                return

    async def stop_all(self, timeout_s: float = 60.0) -> None:
        """SIGTERM every live process; each should stop cleanly with exit code 0."""
        for bot in list(self.processes.values()):
            if bot.alive:
                bot.process.send_signal(signal.SIGCONT)  # a pause cut short
                bot.process.send_signal(signal.SIGTERM)
        for bot in list(self.processes.values()):
            try:
                self.exit_codes.append(await asyncio.wait_for(bot.process.wait(), timeout_s))
            except TimeoutError:
                self.exit_codes.append(None)
                await self.kill(bot)
        self.processes.clear()

    async def primary(self) -> BotProcess | None:
        """The live process holding the jobs lease (the only one, with one replica)."""
        live = [b for b in self.processes.values() if b.alive]
        if len(live) <= 1:
            return live[0] if live else None
        async with httpx.AsyncClient(timeout=5) as http:
            for bot in live:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    answer = await http.get(
                        f"http://127.0.0.1:{bot.port}/healthz",
                        headers={"Authorization": f"Bearer {self.secrets['api_token']}"},
                    )
                    if answer.json().get("role") == "primary":
                        return bot
        return live[0]

    async def role(self, bot: BotProcess, timeout_s: float = 2.0) -> str | None:
        """What the process says it is ("primary" / "standby"); None: no answer."""
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = await http.get(
                    f"http://127.0.0.1:{bot.port}/healthz",
                    headers={"Authorization": f"Bearer {self.secrets['api_token']}"},
                )
                return str(answer.json().get("role"))
        return None

    async def taken_over(self, pid: int, timeout_s: float = 30.0) -> bool:
        """Until a live process other than ``pid`` says it is primary (False: none in time)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for bot in list(self.processes.values()):
                if bot.alive and bot.pid != pid and await self.role(bot) == "primary":
                    return True
            await asyncio.sleep(0.2)
        return False

    # --- the database -----------------------------------------------------------------------

    async def queued_twice(self) -> set[int]:
        """Customers with two notifications or more waiting in the outbox."""
        outbox = tables.outbox
        query = (
            select(outbox.c.customer_id)
            .where(outbox.c.status == "pending", outbox.c.audience == "customer")
            .group_by(outbox.c.customer_id)
            .having(func.count() >= 2)
        )
        async with self.database() as db, db.read() as conn:
            return {int(r[0]) for r in (await conn.execute(query)).all() if r[0] is not None}

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[Database]:
        db = Database.from_url(self.database_url)
        try:
            yield db
        finally:
            await db.close()

    async def rows(self, table: Any) -> list[dict[str, Any]]:
        async with self.database() as db, db.read() as conn:
            return [dict(r) for r in (await conn.execute(select(table))).mappings()]

    async def unsettled(self, blocked: set[int]) -> list[str]:
        """What the bot still has to do (empty: everything sent, decided and delivered)."""
        events, deliveries = tables.merchant_events, tables.webhook_deliveries
        async with self.database() as db, db.read() as conn:

            async def count(table: Any, *where: Any) -> int:
                query = select(func.count()).select_from(table).where(*where)
                return int((await conn.execute(query)).scalar_one())

            found = {
                "outbox messages to send": await count(
                    tables.outbox, tables.outbox.c.status == "pending"
                ),
                "merchant events not delivered": await count(
                    events,
                    ~exists().where(
                        deliveries.c.event_id == events.c.id, deliveries.c.status == "delivered"
                    ),
                ),
                "deposits undecided": await count(
                    tables.deposits, tables.deposits.c.disposition == "new"
                ),
            }
            recorded = await count(tables.deposits)
            subs = (await conn.execute(select(tables.subscriptions))).mappings().all()
            members = (await conn.execute(select(tables.memberships))).mappings().all()
            events_rows = (await conn.execute(select(events.c.public_id))).mappings().all()
        state = {(int(m["customer_id"]), int(m["chat_id"])): str(m["state"]) for m in members}
        now = self.clock()
        found["chat memberships not done"] = sum(
            state.get((int(sub["customer_id"]), chat))
            != ("invited" if int(sub["customer_id"]) in blocked else "member")
            for sub in subs
            if int(sub["ends_at"]) > now
            for chat in CHATS.get(str(sub["plan_id"]), [])
        )
        found["chat access to take back"] = self._access_to_take_back(subs, members, now)
        public_ids = {str(e["public_id"]) for e in events_rows}
        for path in self.endpoint_paths:
            got = set()
            for request in self.receiver.accepted():
                if request.path == path:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        got.add(str(request.json()["id"]))
            if public_ids - got:
                found[f"merchant events not received at {path}"] = len(public_ids - got)
        missing = len(self.okx.deposit_rows()) - recorded
        if missing:
            found["OKX deposits not recorded"] = missing
        return [f"{n} {what}" for what, n in found.items() if n]

    def _access_to_take_back(self, subs: Any, members: Any, now: int) -> int:
        """Memberships that still hold access, and regular chat members, whose subscription
        ended (after the month's jump, every crypto subscription of Basic or of one Pro
        period): the bot must have taken the access back before the run is over."""
        ends: dict[tuple[int, str], int] = {}
        for sub in subs:
            ends[(int(sub["customer_id"]), str(sub["plan_id"]))] = int(sub["ends_at"])

        def entitled(customer: int, chat: int) -> bool:
            plans = [plan for plan, ids in CHATS.items() if chat in ids]
            return any(ends.get((customer, plan), 0) > now for plan in plans)

        held = sum(
            str(m["state"]) in HELD and not entitled(int(m["customer_id"]), int(m["chat_id"]))
            for m in members
        )
        inside = sum(
            self.tg.member_status(chat, user) in ("member", "restricted")
            and not entitled(user, chat)
            for ids in CHATS.values()
            for chat in ids
            for user in self.tg.members(chat)
        )
        return held + inside

    async def settle(self, blocked: set[int], timeout_s: float) -> list[str]:
        """Until nothing is left to do (observed in the database and the fakes); returns what
        was still left at the timeout."""
        deadline = time.monotonic() + timeout_s
        left = await self.unsettled(blocked)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            left = await self.unsettled(blocked)
        return left


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _admin_connection(server_url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))


async def _create_pg_database(server_url: str) -> tuple[str, str]:
    name = f"soak_{uuid.uuid4().hex[:12]}"
    conn = await _admin_connection(server_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return name, url


async def _drop_pg_database(server_url: str, name: str) -> None:
    conn = await _admin_connection(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()
