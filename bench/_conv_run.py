"""Running one bot against a fresh child process of fakes and simulated customers, and the
figures of that run (see :mod:`bench.conversation`)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._conv_bots import SCRIPTS, bot, idle
from bench._conv_fake import Script

FIRST_UID = 10_000


@dataclass
class Step:
    latencies: list[float] = field(default_factory=list)  # seconds
    cpu_s: float = 0.0  # the bot process's CPU during the step (lockstep runs only)
    updates: int = 0

    @property
    def cpu_ms_per_update(self) -> float:
        return 1000 * self.cpu_s / self.updates if self.updates else math.nan


@dataclass
class Run:
    name: str
    customers: int
    steps: dict[str, Step] = field(default_factory=dict)
    updates: int = 0
    replies: int = 0
    photos: int = 0
    finished: int = 0
    out_of_order: int = 0
    missing: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [x for step in self.steps.values() for x in step.latencies]

    @property
    def per_s(self) -> float:
        return self.updates / self.wall_s if self.wall_s else math.nan

    @property
    def cpu_ms_per_update(self) -> float:
        return 1000 * self.cpu_s / self.updates if self.updates else math.nan

    def add(self, outcome: dict[str, Any], cpu_s: float = 0.0) -> None:
        for name, values in outcome["latencies"].items():
            step = self.steps.setdefault(name, Step())
            step.latencies += values
            step.updates += len(values)
            step.cpu_s += cpu_s if len(outcome["latencies"]) == 1 else 0.0
        for key in ("updates", "replies", "photos", "finished", "out_of_order", "missing"):
            setattr(self, key, getattr(self, key) + outcome[key])
        self.wall_s += outcome["wall_s"]
        if outcome["error"]:
            self.errors.append(outcome["error"])
        self.cpu_s += cpu_s


def _timeout(customers: int) -> float:
    """Seconds to wait for one step of every customer before counting the rest as missing."""
    return 60 + customers * 0.2


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@contextlib.contextmanager
def _child(delay_ms: int) -> Iterator[Connection]:
    """``python -m bench._conv_fake`` (a fresh interpreter: nothing of this process is shared),
    commanded over a socket pair."""
    ours, theirs = socket.socketpair()
    root = str(Path(__file__).resolve().parents[1])
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.getenv("PYTHONPATH")]))
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._conv_fake", str(theirs.fileno()), str(delay_ms)],
        pass_fds=[theirs.fileno()],
        env=env,
    )
    theirs.close()
    conn = Connection(ours.detach())
    try:
        yield conn
    finally:
        with contextlib.suppress(OSError):
            conn.send(("stop",))
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        conn.close()


async def _ask(conn: Connection, *command: Any) -> Any:
    conn.send(command)
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


@contextlib.asynccontextmanager
async def session(
    kind: str,
    customers: int,
    *,
    script: Script | None = None,
    auto: bool = False,
    webhook: bool = False,
    rate_limit: bool = True,
    delay_ms: int = 0,
) -> AsyncIterator[tuple[Connection, Any]]:
    """A child with the fakes and ``customers`` customers, and bot ``kind`` running on them."""
    with _child(delay_ms) as conn:
        fake = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        async with bot(kind, fake, webhook=webhook, rate_limit=rate_limit) as application:
            services = getattr(application.bot_data, "services", None)
            if services is not None:  # subsbot: OKX's chains load just after start-up
                await services.directory_settled()
            uids = list(range(FIRST_UID, FIRST_UID + customers))
            await _ask(conn, "customers", script or SCRIPTS[kind], uids, auto)
            yield conn, application


async def lockstep(
    kind: str, customers: int, *, webhook: bool = False, rate_limit: bool = False
) -> Run:
    """All customers send step 1 at once, then (every reply in, the bot idle) step 2, ...;
    the bot's CPU time is read around each step. The rate limiter is off by default: it would
    cap every bot at 30 messages/s, and this measures what the bot itself can do."""
    name = f"{kind} ({'webhook' if webhook else 'polling'})"
    run = Run(name, customers)
    async with session(kind, customers, webhook=webhook, rate_limit=rate_limit) as (
        conn,
        application,
    ):
        for burst in range(len(SCRIPTS[kind])):
            await idle(application)
            cpu = time.process_time()
            outcome = await _ask(conn, "lockstep", burst, _timeout(customers))
            await idle(application)
            run.add(outcome, time.process_time() - cpu)
    return run


async def arrivals(
    name: str,
    customers: int,
    interval_s: float | None,
    *,
    script: Script | None = None,
    rate_limit: bool = True,
    delay_ms: int = 0,
) -> Run:
    """A subsbot customer starts every ``interval_s`` (None: one at a time) and walks the
    script at once; the CPU time covers the whole run."""
    run = Run(name, customers)
    async with session(
        "subsbot", customers, script=script, auto=True, rate_limit=rate_limit, delay_ms=delay_ms
    ) as (conn, application):
        await idle(application)
        cpu = time.process_time()
        outcome = await _ask(conn, "arrivals", interval_s, _timeout(customers) * 4)
        await idle(application)
        run.add(outcome, time.process_time() - cpu)
    return run
