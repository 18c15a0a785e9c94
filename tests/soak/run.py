"""One soak run, start to end (to prove nothing is lost).

1. The fakes start; the bot starts as ``python -m bot run`` (one long-polling process, or
   ``replicas`` webhook processes on PostgreSQL); faults are injected at ``fault_rate`` and
   ``crashes`` SIGKILLs begin (mid-poll, mid-send, random), each followed by a restart; with
   replicas, ``pauses`` SIGSTOPs of the primary mid-send, mid-webhook and mid-access, each
   resumed after another replica took over; ``unban_failures`` of the unbans that follow a
   ban fail, while customers who will pay late first intrude with another's invite link.
2. Customers (see customers.py) arrive one every ``stagger_s``, buy, and pay per scenario; a
   flooding customer (flood.py) sends bursts of text, commands and presses all the while, and
   a hoarder (hoard.py) buys and cancels to hold as many unique amounts as it can.
3. The fake OKX's clock jumps past every invoice's expiry: the unpaid ones expire, and the
   "late" customers pay inside the monitoring window.
4. It jumps past every monitoring window: "after_window" customers pay (never credited).
5. Faults stop; the flooder queues ``flood`` updates in pieces while every honest customer who
   can be reached writes /help in between (each must be answered within a second). The run
   waits until the bot has nothing left to do (observed in the database and the fakes), stops
   it with SIGTERM, and checks each customer's intended outcome and the invariants
   (tests/soak/invariants.py).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payments import states as st
from payments.clock import MINUTE_MS
from payments.deposits.poll import POLLED_UNTIL_KEY
from payments.storage import schema as tables
from tests.soak import invariants
from tests.soak.customers import Customer, Shop, assign, outcome_violations
from tests.soak.faults import (
    Crasher,
    Faults,
    Intruder,
    Pauser,
    sends_answered_late,
    slowest_answer,
)
from tests.soak.flood import Flooder, Probe, explain_late, help_answers, measured_flood
from tests.soak.harness import ADMIN, CHATS, MONITOR_HOURS, TTL_MINUTES, Harness
from tests.soak.hoard import Hoarder, held_within_cap
from tests.soak.invariants_flood import ANSWER_LIMIT_S
from tests.soak.record import SoakRecord

LATE_GRACE_MS = 5 * MINUTE_MS  # PaymentSettings.late_grace_minutes
# After each kill or take-over, OKX time moves on a minute, as if the bot had been down that
# long (retries and reminders fall due). Claims are timed on the host's clock: what a killed
# process had claimed is sent again once its claim lapses (at most a minute later); a paused one
# gives its claims back when it wakes up and finds it lost the lease.
CLAIM_LAPSE_MS = 61_000
# Errors that injected faults provoke and the bot handles: none is logged as an error (a call
# that got 429 three times in a row is a warning; the outbox retries it, a handler gives up).
EXPECTED_LOG_RECORDS: tuple[str, ...] = ()


@dataclass
class SoakConfig:
    customers: int = 60
    crashes: int = 3
    fault_rate: float = 0.1
    seed: int = 1
    database_url: str | None = None  # a PostgreSQL server URL; None: SQLite
    replicas: int = 1
    workdir: Path | None = None  # None: a temporary directory, removed afterwards
    log_level: str = "INFO"
    stagger_s: float = 0.25  # one new customer every this many seconds
    settle_s: float = 240.0  # how long the bot may take to finish everything at the end
    crash_gap_s: tuple[float, float] = (3.0, 9.0)
    flood: int = 2000  # updates the flooding customer queues while the answers are measured
    pauses: int = 0  # SIGSTOP / SIGCONT of the primary mid-call (replicas > 1)
    unban_failures: float = 0.0  # the share of unbans right after a ban that fail
    endpoints: int = 1  # merchant webhook URLs (each must get every event)


@dataclass
class SoakResult:
    figures: dict[str, Any]
    violations: list[str]
    logs: list[Path] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"{key}: {value}" for key, value in self.figures.items()]
        lines += [f"VIOLATION: {v}" for v in self.violations]
        return "\n".join(lines)


async def run_soak(config: SoakConfig) -> SoakResult:
    if config.workdir is not None:
        return await _run(config, config.workdir)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        return await _run(config, Path(tmp))


async def _run(config: SoakConfig, workdir: Path) -> SoakResult:
    started = time.monotonic()
    rng = random.Random(config.seed)
    customers = assign(config.customers, rng)
    violations: list[str] = []
    if config.pauses and config.replicas < 2:
        raise ValueError("pauses need another replica to take over (--replicas 2, PostgreSQL)")
    async with Harness.open(
        workdir,
        pool=config.customers + 10,
        database_url=config.database_url,
        replicas=config.replicas,
        log_level=config.log_level,
    ) as h:
        h.endpoints = config.endpoints
        for replica in range(config.replicas):
            await h.start(replica)
        if config.replicas > 1:  # a load balancer in front of the replicas' webhook servers
            h.tg.balance_webhooks([f"http://127.0.0.1:{port}" for port in h.ports])
        faults = Faults(h.tg, h.okx, h.receiver, config.fault_rate, config.seed)
        faults.start()
        intruder = None
        if config.unban_failures > 0:
            h.tg.fail_unbans_after_bans(config.unban_failures, seed=config.seed)
            late = [c.id for c in customers if c.scenario == "late" and c.choice.plan == "pro"]
            intruder = Intruder(h.tg, late)
        shop = Shop(h.tg, h.okx, random.Random(config.seed + 1), clock=h.clock, admin=ADMIN)
        joiner = asyncio.create_task(shop.keep_joining(customers))
        flooder = Flooder(h.tg, random.Random(config.seed + 3))
        flooding = asyncio.create_task(flooder.keep_flooding())
        hoarder = Hoarder(shop, h.tg)
        hoarding = asyncio.create_task(hoarder.keep_hoarding())
        crasher = Crasher(
            h.tg,
            h.okx,
            faults,
            target=lambda: _primary_pid(h),
            restart=_restarter(h, config),
            count=config.crashes,
            rng=random.Random(config.seed + 2),
            gap_s=config.crash_gap_s,
            after_kill=lambda: h.clock.advance_to(h.clock() + CLAIM_LAPSE_MS),
        )
        crashing = asyncio.create_task(crasher.run())
        pauser = Pauser(
            h.tg,
            h.receiver,
            target=lambda: _primary_pid(h),
            taken_over=h.taken_over,
            count=config.pauses,
            rng=random.Random(config.seed + 4),
            gap_s=config.crash_gap_s,
            after_takeover=lambda: h.clock.advance_to(h.clock() + CLAIM_LAPSE_MS),
            turn=crasher.turn,  # one at a time: a kill during a pause leaves nobody to take over
            queued=h.queued_twice,
        )
        pausing = asyncio.create_task(pauser.run())
        try:
            took: dict[int, float] = {}
            await _gather(
                _after(i * config.stagger_s, shop.first(c), took, c.id)
                for i, c in enumerate(customers)
            )
            phase = time.monotonic()
            first_s = phase - started
            violations += await _past_expiry(h, customers)
            await _gather(shop.late(c) for c in customers)
            violations += await _past_window(h, customers, shop)
            phases_s = time.monotonic() - phase
            await crashing
            await pausing
            month = time.monotonic()
            violations += await _stars_recorded(h)
            renewals = await _a_month_later(h, customers, shop)
            month_s = time.monotonic() - month
            faults.stop()
            h.tg.fail_unbans_after_bans(0)
            flooding.cancel()
            hoarding.cancel()
            honest = [c.id for c in customers if c.scenario != "unrelated"]
            honest = [c for c in honest if c not in shop.blocked]
            probes = await measured_flood(flooder, honest, size=config.flood)
            settling = time.monotonic()
            left = await h.settle(shop.blocked, config.settle_s)
            settle_s = time.monotonic() - settling
            violations += [f"not settled after {config.settle_s} s: {what}" for what in left]
        finally:
            if intruder is not None:
                intruder.stop()
            pausing.cancel()
            crashing.cancel()
            joiner.cancel()
            flooding.cancel()
            hoarding.cancel()
            await h.stop_all()
        violations += [
            f"a bot process stopped with exit code {code} on SIGTERM"
            for code in h.exit_codes
            if code != 0
        ]
        invoices = await h.rows(tables.invoices)
        star_payments = await h.rows(tables.star_payments)
        answered_late = sends_answered_late(h.tg)
        deposits = await h.rows(tables.deposits)
        events = await h.rows(tables.merchant_events)
        violations += outcome_violations(
            customers, invoices, deposits, lambda u: [m.plain for m in h.tg.bot_messages(u)]
        )
        violations += held_within_cap(invoices, await h.rows(tables.reservations), h.clock())
        record = SoakRecord(
            database_url=h.database_url,
            tg=h.tg,
            okx=h.okx,
            receiver=h.receiver,
            logs=list(h.logs),
            secrets=list(h.secrets.values()),
            customers={c.id: c.scenario for c in customers},
            blocked=set(shop.blocked),
            chats={plan: list(ids) for plan, ids in CHATS.items()},
            probes=[(p.chat_id, p.update_id) for p in probes],
            in_flight=crasher.in_flight + pauser.in_flight + answered_late,
            webhook_endpoints=h.endpoint_paths if config.endpoints > 1 else [],
        )
        options = invariants.Options(
            rules=invariants.default_rules(
                workdir / "plans.toml", invoice_ttl_minutes=TTL_MINUTES, monitor_hours=MONITOR_HOURS
            ),
            now_ms=h.clock(),
            expected_log_records=EXPECTED_LOG_RECORDS,
        )
        violations += await invariants.check(record, options)
        people = [c.id for c in customers] + [ADMIN]
        scenarios = {c.id: c.scenario for c in customers}
        figures = {
            "customers": f"{len(customers)} ({_counts(c.scenario for c in customers)})",
            "database": "postgresql" if config.database_url else "sqlite",
            "replicas": config.replicas,
            "crashes": f"{len(crasher.where)} ({_counts(crasher.where)})",
            "pauses": f"{len(pauser.where)} ({_counts(pauser.where)})",
            "intruders": ", ".join(f"{u} {o}" for u, o in intruder.joined) if intruder else "none",
            "sends in flight at a kill or pause": len(crasher.in_flight + pauser.in_flight),
            "sends answered too late for the bot to hear": len(answered_late),
            "slowest Bot API answer": f"{slowest_answer(h.tg):.2f} s",
            "restarts that failed while starting": h.start_failures,
            "fault rate": config.fault_rate,
            "faults injected": ", ".join(f"{k} {n}" for k, n in faults.counts().items()),
            "conversations (retries included)": sum(c.attempts for c in customers),
            "payments claimed with their tx hash": sum(c.claims for c in customers),
            "deposits": len(h.okx.deposit_rows()),
            "invoices": f"{len(invoices)} ({_counts(str(r['status']) for r in invoices)})",
            "invoices settled": sum(r["status"] == st.PAID for r in invoices),
            "bot messages": sum(len(h.tg.bot_messages(u)) for u in people),
            "chat joins": ", ".join(f"{k} {n}" for k, n in sorted(shop.joined.items())),
            "flooder": f"{flooder.sent} updates in {flooder.bursts} bursts",
            "hoarder": f"{len(hoarder.invoices)} invoices, {hoarder.refused} conversations refused",
            "honest answers during the flood": _answer_figures(h, probes),
            "late answers explained": " | ".join(
                why for p in probes if (why := explain_late(h.tg, p, ANSWER_LIMIT_S))
            )
            or "none late",
            "Stars": _stars_figures(customers, star_payments, renewals),
            "merchant events": len(events),
            "webhook deliveries": f"{len(h.receiver.received)} received, "
            f"{len(h.receiver.accepted())} accepted",
            "OKX clock moved": f"{h.clock.offset_ms // 60_000} min",
            "updates per replica": ", ".join(
                f"{url.rsplit(':', 1)[-1]} {n}" for url, n in sorted(h.tg.webhook_backends.items())
            )
            or "(long polling)",
            "time": f"first phase {first_s:.0f} s, late phases {phases_s:.0f} s, "
            f"a month later {month_s:.0f} s, settling {settle_s:.0f} s",
            "slowest customers": ", ".join(
                f"{scenarios[k]} {v:.0f} s"
                for k, v in sorted(took.items(), key=lambda t: -t[1])[:5]
            ),
            "violations": len(violations),
            "wall time": f"{time.monotonic() - started:.0f} s",
        }
        return SoakResult(figures, violations, list(h.logs))


async def _primary_pid(h: Harness) -> int | None:
    bot = await h.primary()
    return None if bot is None else bot.pid


def _restarter(h: Harness, config: SoakConfig) -> Any:
    """Restart each killed process, except with replicas the last one: it stays dead, and the
    other replica must take over (unless there are pauses: they need a replica to take over)."""
    done = 0

    async def restart(pid: int) -> None:
        nonlocal done
        done += 1
        if config.replicas > 1 and done == config.crashes and not config.pauses:
            for bot in h.processes.values():
                if bot.pid == pid:
                    await bot.process.wait()
            h.processes = {r: b for r, b in h.processes.items() if b.pid != pid}
            return
        await h.restart(pid)

    return restart


async def _past_expiry(h: Harness, customers: list[Customer]) -> list[str]:
    """Move OKX time past every invoice's expiry (and the late grace); wait until the unpaid
    invoices the customers hold have expired."""
    waiting = {i.id for c in customers if c.scenario in _UNPAID for i in c.invoices}
    rows = await h.rows(tables.invoices)
    if not rows:
        return []
    h.clock.advance_to(max(int(r["expires_at"]) for r in rows) + LATE_GRACE_MS + MINUTE_MS)
    return await _until_status(h, waiting, {st.EXPIRED}, "expired after the jump past expiry")


async def _past_window(h: Harness, customers: list[Customer], shop: Shop) -> list[str]:
    """Move OKX time past every monitoring window; "after_window" customers pay then."""
    rows = await h.rows(tables.invoices)
    if not rows:
        return []
    h.clock.advance_to(max(int(r["monitor_until"]) for r in rows) + MINUTE_MS)
    before = {d for c in customers for d in c.deposits}
    for c in customers:
        shop.after_window(c)
    late = {d for c in customers for d in c.deposits} - before
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        seen = {str(r["dep_id"]): r for r in await h.rows(tables.deposits)}
        if all(d in seen and seen[d]["disposition"] != st.DEP_NEW for d in late):
            return []
        await asyncio.sleep(0.5)
    return [f"deposits after the window not decided in 180 s: {sorted(late)}"]


_UNPAID = ("late", "after_window", "abandoned")


async def _stars_recorded(h: Harness, timeout_s: float = 180) -> list[str]:
    """Until every Stars charge in Telegram's ledger has its payment row and every refund there
    is recorded (lost updates and refunds elsewhere are found by the bot's ledger runs): the
    month's jump must not carry a charge out of the window the ledger job reads."""
    deadline = time.monotonic() + timeout_s
    while True:
        ledger = h.tg.star_transactions()
        rows = {str(r["charge_id"]): r for r in await h.rows(tables.star_payments)}
        missing = [str(t["id"]) for t in ledger if "source" in t and str(t["id"]) not in rows]
        unrefunded = [
            str(t["id"])
            for t in ledger
            if "receiver" in t and rows.get(str(t["id"]), {}).get("refunded_at") is None
        ]
        if not missing and not unrefunded:
            return []
        if time.monotonic() >= deadline:
            return [
                f"Stars charges not recorded in {timeout_s} s: {len(missing)} payments, "
                f"{len(unrefunded)} refunds"
            ]
        await asyncio.sleep(0.5)


async def _a_month_later(h: Harness, customers: list[Customer], shop: Shop) -> int:
    """OKX's clock (the bot's) moves a minute past the end of every Telegram Stars
    subscription, and Telegram charges the renewals at that time (a refunded subscription
    renews no more). Each renewing customer must read "renewed". Crypto subscriptions end
    meanwhile (Basic after 7 days, one Pro period after 30): the bot takes their access back
    before the run is over (see Harness.unsettled). Returns the renewals charged."""
    subs = [s for s in h.tg.subscriptions() if not s.ended]
    if not subs or h.replicas > 1:
        # With two replicas the month is not jumped: a standby's clock follows OKX's only
        # through its own polls (it measures the offset when it polls), so after a jump of
        # the fake OKX's clock by a month it would act a month in the past until it took the
        # lease, something no real exchange's clock does. One replica renews in the run.
        return 0
    h.clock.advance_to(max(s.expiration_date for s in subs) * 1000 + MINUTE_MS)
    # the bot's clock follows OKX's at each poll: Telegram charges once it has polled since
    # the jump (charging before, the bot would record the renewals a month in the past)
    await _polled_since(h, h.clock())
    made = h.tg.charge_renewals(h.clock() / 1000)
    renewing = {p.user_id for p in made}
    await _gather(shop.renewed(c) for c in customers if c.id in renewing)
    return len(made)


async def _polled_since(h: Harness, okx_ms: int, timeout_s: float = 60) -> None:
    """Until the bot has completed a poll of OKX at or after ``okx_ms`` (OKX time), so its
    clock has followed a jump of OKX's."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        marks = {str(r["key"]): str(r["value"]) for r in await h.rows(tables.kv)}
        if int(marks.get(POLLED_UNTIL_KEY, "0") or 0) >= okx_ms:
            return
        await asyncio.sleep(0.2)


def _stars_figures(customers: list[Customer], payments: list[dict[str, Any]], renewals: int) -> str:
    first = [r for r in payments if not r["renewal"]]
    lost = {c.id for c in customers if c.scenario == "stars_lost" and c.charges}
    credited_lost = sum(r["source"] == "ledger" and r["customer_id"] in lost for r in first)
    refunds = Counter(str(r["refund_source"]) for r in payments if r["refunded_at"] is not None)
    return (
        f"{len(first)} paid ({sum(c.stars_tries for c in customers)} presses of Pay), "
        f"{sum(r['renewal'] for r in payments)} renewals credited of {renewals} charged, "
        f"{credited_lost} of {len(lost)} lost updates credited from the ledger, "
        f"refunds: {', '.join(f'{k} {n}' for k, n in sorted(refunds.items())) or 'none'}"
    )


async def _until_status(
    h: Harness, ids: set[str], statuses: set[str], what: str, timeout_s: float = 180
) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = {str(r["id"]): str(r["status"]) for r in await h.rows(tables.invoices)}
        wrong = sorted(i for i in ids if rows.get(i) not in statuses)
        if not wrong:
            return []
        if time.monotonic() >= deadline:
            return [f"invoices not {what} in {timeout_s} s: {wrong}"]
        await asyncio.sleep(0.5)


async def _after(delay_s: float, work: Awaitable[None], took: dict[int, float], key: int) -> None:
    await asyncio.sleep(delay_s)
    started = time.monotonic()
    await work
    took[key] = time.monotonic() - started


async def _gather(works: Iterable[Awaitable[None]]) -> None:
    await asyncio.gather(*works)


def _answer_figures(h: Harness, probes: list[Probe]) -> str:
    """How many customers wrote during the measured flood, and their slowest answer (from the
    fake handing the update to the bot to the answer reaching the fake)."""
    answers = help_answers(h.tg, [p.chat_id for p in probes])
    waits = []
    for p in probes:
        given = h.tg.handed_out.get(p.update_id)
        later = [ts for ts in answers.get(p.chat_id, []) if given is not None and ts >= given]
        if given is not None and later:
            waits.append(min(later) - given)
    if not waits:
        return f"{len(probes)} customers, none answered"
    waits.sort()
    median = waits[len(waits) // 2]
    return (
        f"{len(probes)} customers, {len(waits)} answered; median {1000 * median:.0f} ms,"
        f" slowest {1000 * waits[-1]:.0f} ms"
    )


def _counts(items: Iterable[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(Counter(items).items()))
