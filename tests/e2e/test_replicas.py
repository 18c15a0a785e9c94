"""More than one replica: only the holder of the "jobs" lease polls OKX and
sends the outbox; a dead holder is taken over, a stopping one hands over at once.

In process: the lease side of :class:`bot.replica.Replica` with a ManualClock for the rows and a
hand-moved monotonic clock, and the poll gate of a standby. As processes (PostgreSQL only): two
``python -m bot run`` in webhook mode on one database, behind the fake Telegram's load balancer
(``balance_webhooks``), each with its own OKX API key so the fake OKX tells who polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.jobs import POLL_REQUESTS, Timings
from bot.replica import LeaseTimes, Replica, StandbyNudge
from bot.sender import OutboxSender
from bot.services import PollGate
from fakes.okx import FakeOkx
from fakes.telegram import FakeTelegram
from payments.botstate.lease import Lease, LeaseStore
from payments.botstate.signals import POLL, Signals
from payments.clock import ManualClock
from payments.storage import Database
from payments.storage.schema import leases, outbox
from tests import outbox_kit
from tests.botkit import (
    HISTORY,
    BotWorld,
    Customer,
    _create_pg_database,
    _drop_pg_database,
    address_of,
    amount_of,
)
from tests.conftest import PG_URL
from tests.e2e.test_main import ROOT, _env, free_port
from tests.outbox_kit import ADMINS, CUSTOMER_ID, received, write

POLL_SECONDS = 2
TIMES = LeaseTimes.for_poll(POLL_SECONDS)  # renew every 0.5 s, a lease lasts 3 s
PAID = "Payment received"
API_TOKEN = "replicas-api-token-0123456789"
DETAILS = {"Authorization": f"Bearer {API_TOKEN}"}


# --- in process: the lease, the local deadline, the gate -----------------------------------------


def test_the_lease_timing_takes_a_dead_holder_over_within_two_poll_intervals() -> None:
    for poll in (1, 2, 60, 600):
        times = LeaseTimes.for_poll(poll)
        assert times.renew_s == poll / 4 and times.ttl_s == 1.5 * poll
        assert times.takeover_s == 1.75 * poll < 2 * poll
        assert times.ttl_s / times.renew_s == 6  # a live holder must miss 5 renewals to lose it
    fast = LeaseTimes.for_poll(0.3)  # tests' fast polls: floors keep renewals sane
    assert (fast.renew_s, fast.ttl_s) == (0.25, 1.5)


@dataclass
class Host:
    """A replica with its own monotonic clock, sharing the rows' clock (in step, as NTP does)."""

    replica: Replica
    mono: list[float] = field(default_factory=lambda: [0.0])

    def primary(self) -> bool:
        return self.replica.primary

    def token(self) -> int | None:
        return None if self.replica.lease is None else self.replica.lease.token


def host(db: Database, clock: ManualClock, name: str) -> Host:
    mono = [0.0]
    store = LeaseStore(db, "jobs")
    return Host(Replica(store, clock, TIMES, holder=name, monotonic=lambda: mono[0]), mono)


def advance(clock: ManualClock, hosts: list[Host], seconds: float) -> None:
    clock.advance(int(seconds * 1000))
    for each in hosts:
        each.mono[0] += seconds


async def test_one_replica_holds_the_lease_and_a_dead_one_is_taken_over_in_time(
    db: Database, clock: ManualClock
) -> None:
    a, b = host(db, clock, "host-a:1:aa"), host(db, clock, "host-b:2:bb")
    assert await a.replica.renew() is True  # became primary
    assert await b.replica.renew() is False
    assert (a.replica.role, b.replica.role) == ("primary", "standby")
    assert a.replica.lease == Lease("jobs", "host-a:1:aa", 1, clock.now_ms() + 3000)
    for _ in range(8):  # renewals keep the token and the role
        advance(clock, [a, b], TIMES.renew_s)
        assert await a.replica.renew() is False and a.primary()
        assert await b.replica.renew() is False and not b.primary()
    assert a.token() == 1
    last_renewal = clock.now_ms()
    # a dies now. It would stop counting itself primary R before its row lapses ...
    advance(clock, [a, b], TIMES.ttl_s - TIMES.renew_s)
    assert not a.primary()
    assert await b.replica.renew() is False  # ... and nobody may take it over before it lapses
    advance(clock, [a, b], TIMES.renew_s - 0.001)
    assert await b.replica.renew() is False
    advance(clock, [a, b], 0.001)  # lapsed: b's attempts come every R, so the latest is TTL + R
    assert await b.replica.renew() is True
    assert b.token() == 2
    assert clock.now_ms() - last_renewal <= TIMES.takeover_s * 1000 < 2 * POLL_SECONDS * 1000
    # a comes back (a long pause, not a death): it learns it lost the lease
    assert await a.replica.renew() is False
    assert (a.replica.role, a.token()) == ("standby", None)


async def test_release_hands_over_at_the_next_attempt(db: Database, clock: ManualClock) -> None:
    a, b = host(db, clock, "host-a:1:aa"), host(db, clock, "host-b:2:bb")
    await a.replica.renew()
    await b.replica.renew()
    await a.replica.release()
    assert not a.primary()
    assert await b.replica.renew() is True  # no wait for the lease to lapse
    assert b.token() == 2
    await a.replica.release()  # nothing held: nothing to do
    assert await b.replica.renew() is False and b.primary()


async def test_a_holder_whose_renewals_stall_stops_before_its_lease_lapses(
    db: Database, clock: ManualClock
) -> None:
    """The event loop was blocked (or the database slow): by its own clock the holder stops
    counting itself primary R before the row lapses, then renews and carries on."""
    a = host(db, clock, "host-a:1:aa")
    await a.replica.renew()
    a.mono[0] += TIMES.ttl_s - TIMES.renew_s - 0.01
    assert a.primary()
    a.mono[0] += 0.01
    assert not a.primary()
    assert await a.replica.renew() is True  # still its row (not lapsed): primary again, token 1
    assert a.token() == 1


class FlakyStore(LeaseStore):
    """The database answers until ``down`` is set, then every call fails."""

    down = False

    async def acquire(self, *, holder: str, now_ms: int, ttl_ms: int) -> Lease | None:
        if self.down:
            raise ConnectionRefusedError("the database is unreachable")
        return await super().acquire(holder=holder, now_ms=now_ms, ttl_ms=ttl_ms)


async def test_a_database_error_keeps_the_state_until_the_lease_lapses_by_itself(
    db: Database, clock: ManualClock
) -> None:
    store, mono = FlakyStore(db, "jobs"), [0.0]
    a = Host(Replica(store, clock, TIMES, holder="host-a:1:aa", monotonic=lambda: mono[0]), mono)
    assert await a.replica.renew() is True
    store.down = True
    assert await a.replica.renew() is False  # logged, not raised: the job keeps running
    assert a.primary()  # until its local deadline
    mono[0] += TIMES.ttl_s
    assert not a.primary()
    store.down = False
    clock.advance(int(TIMES.ttl_s * 1000))
    assert await a.replica.renew() is True  # its own lapsed lease, taken again
    assert a.token() == 2


async def test_a_standby_neither_polls_nor_sends() -> None:
    polls: list[int] = []

    async def poll() -> None:
        polls.append(1)

    primary = [False]
    gate = PollGate(poll, min_gap_s=0, allowed=lambda: primary[0])
    assert await gate.run() is False and gate.request() is False
    primary[0] = True
    assert await gate.run() is True and polls == [1]
    assert gate.request() is True
    await gate.close()


async def test_a_check_now_tap_on_a_standby_makes_the_primary_poll_once(
    db: Database, clock: ManualClock
) -> None:
    a, b = host(db, clock, "host-a:1:aa"), host(db, clock, "host-b:2:bb")
    await a.replica.renew()
    await b.replica.renew()
    polls: list[str] = []

    def replica(name: str, h: Host) -> tuple[PollGate, StandbyNudge]:
        async def poll() -> None:
            polls.append(name)

        nudge = StandbyNudge(Signals(db), clock, monotonic=lambda: h.mono[0])
        return PollGate(poll, min_gap_s=0, allowed=h.primary, standby=nudge.ask), nudge

    (gate_a, nudge_a), (gate_b, _) = replica("a", a), replica("b", b)
    assert await nudge_a.asked() is False  # nothing asked yet
    for _ in range(3):  # three taps on the standby, in quick succession
        assert gate_b.request() is False  # it does not poll itself ...
        await asyncio.sleep(0.05)
    assert await nudge_a.asked() is True  # ... it passed the request on, once
    assert await nudge_a.asked() is False
    assert gate_a.request() is True  # what the primary's "poll-requests" job then does
    await asyncio.sleep(0.05)
    await gate_a.close()
    assert polls == ["a"]
    # the standby passes a tap on at most every 15 s (its own clock), like the primary's gate
    b.mono[0] += 15
    gate_b.request()
    await asyncio.sleep(0.05)
    assert await nudge_a.asked() is True
    await gate_b.close()
    assert polls == ["a"]  # a standby never polled


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
async def test_the_running_primary_polls_when_a_standby_passes_a_tap_on(tmp_path: Path) -> None:
    # the periodic poll is 30 s away, its first run too: only the signal can make it poll
    slow = Timings(outbox=0.1, subscriptions=0.2, directory=3600, first_poll=30, poll_requests=0.1)
    env = {"PAYMENT_POLL_SECONDS": "30"}
    async with (
        BotWorld.open(tmp_path, env=env, backend="postgresql") as world,
        world.running(timings=slow) as application,
        world.database() as db,
    ):
        assert application.job_queue is not None
        assert application.job_queue.get_jobs_by_name(POLL_REQUESTS)
        polls = world.okx.count(HISTORY)
        await Signals(db).raise_signal(POLL, world.clock.now_ms())  # as a standby does on a tap
        for _ in range(100):
            if world.okx.count(HISTORY) > polls:
                break
            await asyncio.sleep(0.1)
        assert world.okx.count(HISTORY) - polls == 1
    async with BotWorld.open(tmp_path / "one") as world, world.running() as application:
        assert application.job_queue is not None  # SQLite: one replica, nothing to look for
        assert application.job_queue.get_jobs_by_name(POLL_REQUESTS) == ()


# --- in process: two outbox senders, one of them paused inside a call ---------------------------


@contextlib.asynccontextmanager
async def two_senders(
    db: Database, clock: ManualClock, tg: FakeTelegram
) -> AsyncIterator[tuple[tuple[Host, OutboxSender], tuple[Host, OutboxSender]]]:
    """Replicas A (primary) and B (standby) on one database, each with its own lease holder,
    Bot API client and outbox sender (a run's time is its host's hand-moved clock)."""
    a, b = host(db, clock, "host-a:1:aa"), host(db, clock, "host-b:2:bb")
    assert await a.replica.renew() is True
    assert await b.replica.renew() is False
    async with (
        outbox_kit.sender(db, clock, tg, replica=a.replica, monotonic=lambda: a.mono[0]) as sa,
        outbox_kit.sender(db, clock, tg, replica=b.replica, monotonic=lambda: b.mono[0]) as sb,
    ):
        yield (a, sa), (b, sb)


async def test_a_paused_primary_repeats_at_most_the_message_it_was_inside(
    db: Database, clock: ManualClock
) -> None:
    """A stalls inside its first sendMessage; its lease and its claim lapse, B takes over and
    sends all five; then A wakes up. The customer has each message once, but for the one A
    was inside when it stopped (that one may arrive twice)."""
    invoices = [f"INV0000{i}" for i in range(1, 6)]
    with FakeTelegram() as tg:
        async with two_senders(db, clock, tg) as ((a, sender_a), (b, sender_b)):
            for invoice in invoices:
                await write(db, clock, invoice)
            hold = tg.hold_next("sendMessage", chat_id=CUSTOMER_ID)
            run_a = asyncio.create_task(sender_a.send_due())
            await tg.wait_for(hold.arrived.is_set, what="A inside its first sendMessage")
            advance(clock, [a, b], 61)  # A is paused past its lease and its claim
            assert await b.replica.renew() is True
            report_b = await sender_b.send_due()
            assert report_b.sent == 5, report_b
            assert [received(tg, CUSTOMER_ID, i) for i in invoices] == [1, 1, 1, 1, 1]
            hold.release()
            report_a = await asyncio.wait_for(run_a, timeout=10)
            counts = [received(tg, CUSTOMER_ID, i) for i in invoices]
            assert counts[0] <= 2 and counts[1:] == [1, 1, 1, 1], (counts, report_a)
            assert report_a.sent == 0


async def test_the_lease_row_stops_a_primary_whose_own_clock_says_it_is_still_primary(
    db: Database, clock: ManualClock
) -> None:
    """The hosts' clocks disagree: by its own clock A is still primary, but B took the lease
    over by the rows' clock. A, inside its first admin's copy of an alert, sends nothing more:
    the claim re-asserted with the lease fails before the second admin's copy."""
    with FakeTelegram() as tg:
        async with two_senders(db, clock, tg) as ((a, sender_a), (b, sender_b)):
            await write(db, clock, "INV00007", "alert")
            await write(db, clock, "INV00008", "alert")
            hold = tg.hold_next("sendMessage", chat_id=ADMINS[0])
            run_a = asyncio.create_task(sender_a.send_due())
            await tg.wait_for(hold.arrived.is_set, what="A inside the first admin's copy")
            advance(clock, [b], 61)  # the rows' clock and B's: A's own clock stands still
            assert a.primary()
            assert await b.replica.renew() is True
            report_b = await sender_b.send_due()
            assert report_b.sent == 2, report_b
            hold.release()
            report_a = await asyncio.wait_for(run_a, timeout=10)
            assert received(tg, ADMINS[0], "INV00007") <= 2  # the copy A was inside
            assert received(tg, ADMINS[1], "INV00007") == 1, report_a
            assert [received(tg, admin, "INV00008") for admin in ADMINS] == [1, 1]
            assert (report_a.sent, report_a.skipped) == (0, 1), report_a


async def test_an_alert_the_paused_primary_left_half_sent_is_completed_not_repeated(
    db: Database, clock: ManualClock
) -> None:
    """A has sent an alert to the first admin and stalls inside the second admin's copy; B,
    taking over, sends it to the second admin only (the first admin reached is recorded with
    the message)."""
    with FakeTelegram() as tg:
        async with two_senders(db, clock, tg) as ((a, sender_a), (b, sender_b)):
            await write(db, clock, "INV00009", "alert")
            hold = tg.hold_next("sendMessage", chat_id=ADMINS[1])
            run_a = asyncio.create_task(sender_a.send_due())
            await tg.wait_for(hold.arrived.is_set, what="A inside the second admin's copy")
            advance(clock, [a, b], 61)
            assert await b.replica.renew() is True
            assert (await sender_b.send_due()).sent == 1
            hold.release()
            await asyncio.wait_for(run_a, timeout=10)
            assert received(tg, ADMINS[0], "INV00009") == 1
            assert received(tg, ADMINS[1], "INV00009") <= 2  # the copy A was inside


# --- as processes, on PostgreSQL -----------------------------------------------------------------


@dataclass
class BotProcess:
    name: str
    port: int
    key: str
    log: Path
    process: asyncio.subprocess.Process

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    async def health(self) -> dict[str, Any] | None:
        """/healthz's JSON when it answers 200, else None."""
        try:
            async with httpx.AsyncClient(base_url=self.root, timeout=5) as http:
                answer = await http.get("/healthz", headers=DETAILS)
        except httpx.HTTPError:
            return None
        body: dict[str, Any] = answer.json()
        return body if answer.status_code == 200 else None

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=30)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


@dataclass
class Cluster:
    tmp_path: Path
    tg: FakeTelegram
    okx: FakeOkx
    database_url: str
    processes: list[BotProcess] = field(default_factory=list)

    async def start(self, name: str) -> BotProcess:
        key, port = f"key-{name}", free_port()
        self.okx.add_key(key, f"secret-{name}", f"pass-{name}")
        env = _env(self.tg, self.okx, self.tmp_path) | {
            "DATABASE_URL": self.database_url,
            "OKX_API_KEY": key,
            "OKX_SECRET_KEY": f"secret-{name}",
            "OKX_PASSPHRASE": f"pass-{name}",
            "PAYMENT_POLL_SECONDS": str(POLL_SECONDS),
            "WEBHOOK_URL": "https://shop.example",  # the public URL: the balancer's
            "WEBHOOK_SECRET": "replicas-webhook-secret",
            "API_TOKEN": API_TOKEN,  # /healthz shows the role only with it
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        }
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the bot
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=self.tmp_path,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        started = BotProcess(name, port, key, log, process)
        self.processes.append(started)
        return started

    async def roles(self, *replicas: BotProcess, timeout: float = 60) -> dict[str, BotProcess]:  # noqa: ASYNC109
        """Once each replica answers /healthz 200 and exactly one is primary: role -> replica."""
        deadline = time.monotonic() + timeout
        while True:
            bodies = await asyncio.gather(*(r.health() for r in replicas))
            roles = [b["role"] if b is not None else None for b in bodies]
            if None not in roles and roles.count("primary") == 1:
                return {str(role): r for role, r in zip(roles, replicas, strict=True)}
            if time.monotonic() >= deadline:
                logs = "\n".join(f"--- {r.name}\n{r.logs()[-3000:]}" for r in replicas)
                raise AssertionError(f"roles never settled: {roles}\n{logs}")
            await asyncio.sleep(0.1)

    async def lease(self) -> Lease:
        db = Database.from_url(self.database_url)
        try:
            async with db.read() as conn:
                row = (await conn.execute(select(leases))).one()
        finally:
            await db.close()
        return Lease(row.name, row.holder, int(row.token), int(row.expires_at))

    async def outbox_sent(self, timeout: float = 30) -> None:  # noqa: ASYNC109
        """Until no outbox message waits to be sent (what was sent is then all there is)."""
        deadline = time.monotonic() + timeout
        db = Database.from_url(self.database_url)
        try:
            while True:
                async with db.read() as conn:
                    statuses = (await conn.execute(select(outbox.c.status))).scalars().all()
                if "pending" not in statuses:
                    return
                assert time.monotonic() < deadline, f"the outbox never drained: {statuses}"
                await asyncio.sleep(0.1)
        finally:
            await db.close()

    def history_by(self, key: str) -> list[int]:
        """When (ms) each deposit-history request sent with API key ``key`` arrived."""
        return [r.ts for r in self.okx.requests if r.path == HISTORY and r.key == key]


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    name, url = await _create_pg_database()
    try:
        with FakeTelegram() as tg, FakeOkx() as okx:
            found = Cluster(tmp_path, tg, okx, url)
            try:
                yield found
            finally:
                await asyncio.gather(*(p.stop() for p in found.processes))
    finally:
        await _drop_pg_database(name)


async def pay(world: BotWorld, customer: Customer, photo: Any) -> None:
    world.okx.add_deposit("USDT", "USDT-TRC20", amount_of(photo), to=address_of(photo))
    await customer.wait_text(PAID, timeout=30)


async def _two_replicas(c: Cluster) -> tuple[BotProcess, BotProcess, BotWorld]:
    a, b = await asyncio.gather(c.start("a"), c.start("b"))
    c.tg.balance_webhooks([a.root, b.root])
    roles = await c.roles(a, b)
    world = BotWorld(c.tg, c.okx, ManualClock(), c.database_url, {})
    return roles["primary"], roles["standby"], world


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
async def test_two_replicas_one_poller_and_a_killed_primary_is_taken_over(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        primary, standby, world = await _two_replicas(c)
        alice, bob = world.customer(101), world.customer(102)
        alice_photo = await alice.buy("Pro", "USDT", "Tron (TRC20)")
        bob_photo = await bob.buy("Pro", "USDT", "Tron (TRC20)")
        # both replicas answered customers (the balancer takes turns)
        assert c.tg.webhook_backends[primary.root] >= 3, c.tg.webhook_backends
        assert c.tg.webhook_backends[standby.root] >= 3, c.tg.webhook_backends
        await pay(world, alice, alice_photo)
        assert c.history_by(primary.key) and c.history_by(standby.key) == []  # one poller

        held = await c.lease()
        await primary.stop(signal.SIGKILL)
        last = await c.lease()  # the dead holder's last renewal (nobody renews it now)
        assert last.token == held.token
        last_renewal_ms = last.expires_at - int(TIMES.ttl_s * 1000)

        async def survivor_primary() -> bool:
            body = await standby.health()
            return body is not None and body["role"] == "primary"

        deadline = time.monotonic() + 30
        while not await survivor_primary():
            assert time.monotonic() < deadline, standby.logs()[-3000:]
            await asyncio.sleep(0.05)
        await c.tg.wait_for(lambda: c.history_by(standby.key), 30, "the survivor to poll")
        first_poll_ms = c.history_by(standby.key)[0]
        taken = await c.lease()
        assert taken.token == held.token + 1 and taken.holder != held.holder
        # never before the dead holder's lease lapsed (same host: one clock)
        assert first_poll_ms >= last.expires_at
        print(
            f"\ntake-over: the survivor polled {(first_poll_ms - last_renewal_ms) / 1000:.2f} s"
            f" after the dead primary's last renewal (design bound TTL + R ="
            f" {TIMES.takeover_s:.2f} s, two poll intervals = {2 * POLL_SECONDS} s)"
        )

        await pay(world, bob, bob_photo)  # invoiced before the kill, paid after it
        carol = world.customer(103)
        await pay(world, carol, await carol.buy("Pro", "USDT", "Tron (TRC20)"))
        await c.outbox_sent()
        for customer in (alice, bob, carol):
            assert customer.count(PAID) == 1, customer.texts()  # nothing sent twice
        logs = standby.logs()
        assert f"is now primary: it holds the 'jobs' lease with token {taken.token}" in logs


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
async def test_a_gracefully_stopped_primary_hands_the_lease_over_at_once(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        primary, standby, world = await _two_replicas(c)
        await c.tg.wait_for(lambda: c.history_by(primary.key), 30, "the primary to poll")
        assert c.history_by(standby.key) == []
        held = await c.lease()
        assert await primary.stop(signal.SIGTERM) == 0
        stopped = time.monotonic()
        after = await c.lease()
        # released (expiry 0), or already taken over by the survivor with the next token
        assert after.expires_at == 0 or after.token == held.token + 1, after
        assert f"released the 'jobs' lease (token {held.token})" in primary.logs()
        roles = await c.roles(standby)
        handed_over = time.monotonic() - stopped
        assert roles["primary"] is standby
        print(f"\nhand-over after a graceful stop: survivor primary {handed_over:.2f} s later")
        dave = world.customer(104)
        await pay(world, dave, await dave.buy("Pro", "USDT", "Tron (TRC20)"))
        assert dave.count(PAID) == 1
        assert c.tg.webhook_backends[standby.root] > 0
