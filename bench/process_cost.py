"""What the bot process costs: cold start, idle memory, memory under 10,000 invoices, imports.

``python -m bot run`` (long polling) is started as a merchant starts it, against the fake
Telegram Bot API and the fake OKX running in this process on loopback (threads), with a SQLite
database. Cold start is the time from spawning the process to its first ``getUpdates`` request
(the fake records when each request arrives), on a database already at the migrations' head
(every start of a shop but its first); the first start, which creates the database and runs
the migrations, is timed on its own. Idle RSS is read from ``/proc`` once the
process has polled for a while with nothing to do; then 10,000 open invoices are inserted into
its database and 1,000 deposits (half of them paying an invoice) appear on the fake OKX, and RSS
is read again once the process has settled them and told the customers. The import rows start a
fresh interpreter per module and report its import time and the RSS it adds (a bare interpreter
is the baseline), so they show which share of the start-up time and memory is imports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from fakes.okx import FakeOkx
from fakes.telegram import FakeTelegram
from payments.storage import Database
from payments.storage.schema import invoices, outbox

ROOT = Path(__file__).resolve().parent.parent
_LEAN = "from payments.exchange.ccxt_loader import okx_class\nokx_class()"
# the loader's file alone, without the ``payments`` package around it (SQLAlchemy...)
_LEAN_ALONE = (
    "import importlib.util as u\n"
    "s = u.spec_from_file_location('loader', 'payments/exchange/ccxt_loader.py')\n"
    "m = u.module_from_spec(s)\n"
    "s.loader.exec_module(m)\n"
    "m.okx_class()"
)
# (label, import statement): what the running bot imports
IMPORTS = (
    ("python (bare interpreter)", "pass"),
    ("ccxt.async_support (whole package)", "import ccxt.async_support"),
    ("ccxt okx only (what the bot loads)", _LEAN_ALONE),
    ("python-telegram-bot (telegram.ext)", "import telegram.ext"),
    ("sqlalchemy + aiosqlite", "import sqlalchemy.ext.asyncio, aiosqlite"),
    ("fastapi (webhook or PORT only)", "import fastapi"),
    ("uvicorn (webhook or PORT only)", "import uvicorn"),
    ("qrcode + Pillow (the first invoice photo)", "import qrcode, PIL.Image, PIL.ImageFont"),
    ("alembic (only when a migration runs)", "import alembic.command"),
    ("bot.serve (everything run imports)", "import bot.serve"),
    ("bot.serve + ccxt okx (at run time)", f"import bot.serve\n{_LEAN}"),
)
QUICK_IMPORTS = (IMPORTS[0], IMPORTS[2], IMPORTS[-1])
_PROBE = """
import sys, time
start = time.perf_counter()
exec(sys.argv[1])
took = time.perf_counter() - start
rss = [line for line in open("/proc/self/status") if line.startswith("VmRSS")][0].split()[1]
print(took, int(rss) * 1024)
"""


@dataclass
class Process:
    cold_start_s: float  # the median of ``cold_starts`` (a database at head)
    cold_starts: list[float]
    first_start_s: float  # a new database: the migrations run
    idle_rss: int
    loaded_rss: int
    invoices: int
    paid: int


def rss_of(pid: int) -> int:
    """Resident memory of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def measure_import(statement: str) -> tuple[float, int]:
    """Seconds to run ``statement`` in a fresh interpreter, and that interpreter's RSS after."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, statement],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return float(out[0]), int(out[1])


def imports(quick: bool, repeat: int = 3) -> list[tuple[str, float, int]]:
    """(label, best seconds of ``repeat``, RSS bytes) per row of IMPORTS."""
    rows = []
    for label, statement in QUICK_IMPORTS if quick else IMPORTS:
        runs = [measure_import(statement) for _ in range(1 if quick else repeat)]
        rows.append((label, min(t for t, _ in runs), min(r for _, r in runs)))
    return rows


def _env(tg: FakeTelegram, okx: FakeOkx, database_url: str, home: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": home,
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_URL": tg.base_url.removesuffix("/bot"),
        "ADMIN_IDS": "900",
        "OKX_API_KEY": okx.api_key,
        "OKX_SECRET_KEY": okx.secret,
        "OKX_PASSPHRASE": okx.passphrase,
        "OKX_API_URL": okx.base_url,
        "DATABASE_URL": database_url,
        "PAYMENT_POLL_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }


async def _wait(what: str, ready: object, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not (ready() if callable(ready) else ready):
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: {what} did not happen within {limit_s} s")
        await asyncio.sleep(0.02)


async def _count(db: Database, query: object) -> int:
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())  # type: ignore[call-overload]


async def _load(db: Database, okx: FakeOkx, count: int, limit_s: float) -> int:
    """``count`` open invoices, then ``count // 10`` deposits (half pay one): paid invoices."""
    from tests.shop import insert_open_invoices

    now = time.time_ns() // 1_000_000
    made = await insert_open_invoices(db, count, now_ms=now)
    deposits = max(2, count // 10)
    paying = made[: deposits // 2]
    for n, (_, units) in enumerate(paying):
        amount = Decimal(units).scaleb(-8).quantize(Decimal("0.0001"))
        okx.add_deposit("USDT", "USDT-TRC20", amount, to="TBulkAddress", ts=now + n)
    for n in range(deposits - len(paying)):
        okx.add_deposit("USDT", "USDT-TRC20", f"{500 + n}.5", ts=now + n)
    paid_query = select(func.count()).select_from(invoices).where(invoices.c.status == "paid")
    pending_query = select(func.count()).select_from(outbox).where(outbox.c.status == "pending")
    deadline = time.monotonic() + limit_s
    while await _count(db, paid_query) < len(paying) or await _count(db, pending_query):
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark: the bot did not settle the deposits in time")
        await asyncio.sleep(0.2)
    return len(paying)


async def _migrated(database_url: str) -> None:
    """The database a shop's earlier start left: created and at the migrations' head."""
    db = Database.from_url(database_url)
    try:
        await db.migrate()
    finally:
        await db.close()


async def cold_start(*, new_database: bool = False) -> float:
    """Seconds from spawning ``python -m bot run`` to its first getUpdates, on a database at
    head (``new_database``: none yet, so the bot creates it and runs the migrations)."""
    with tempfile.TemporaryDirectory() as tmp, FakeTelegram() as tg, FakeOkx() as okx:
        database_url = f"sqlite:///{Path(tmp) / 'bot.sqlite3'}"
        if not new_database:
            await _migrated(database_url)
        env = _env(tg, okx, database_url, tmp)
        started = time.time()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await _wait("the first getUpdates", lambda: tg.calls("getUpdates"), 60)
            return tg.calls("getUpdates")[0].ts - started
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), timeout=60)


async def run_process(invoice_count: int, *, idle_s: float = 3.0, starts: int = 3) -> Process:
    """Start ``python -m bot run``; measure cold start (the median of ``starts``, this start
    included), the first start of a new database, idle RSS and RSS after ``invoice_count``
    invoices."""
    first = await cold_start(new_database=True)
    others = [await cold_start() for _ in range(starts - 1)]
    with tempfile.TemporaryDirectory() as tmp, FakeTelegram() as tg, FakeOkx() as okx:
        database_url = f"sqlite:///{Path(tmp) / 'bot.sqlite3'}"
        await _migrated(database_url)
        env = _env(tg, okx, database_url, tmp)
        started = time.time()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        db = Database.from_url(database_url)
        try:
            await _wait("the first getUpdates", lambda: tg.calls("getUpdates"), 60)
            cold = tg.calls("getUpdates")[0].ts - started
            await asyncio.sleep(idle_s)
            idle = rss_of(process.pid)
            paid = await _load(db, okx, invoice_count, limit_s=600)
            await asyncio.sleep(1)
            loaded = rss_of(process.pid)
        finally:
            await db.close()
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(process.communicate(), timeout=60)
        if process.returncode not in (0, -signal.SIGINT):
            raise RuntimeError(f"the bot exited with {process.returncode}: {err.decode()[-2000:]}")
    starts_s = sorted([cold, *others])
    return Process(statistics.median(starts_s), starts_s, first, idle, loaded, invoice_count, paid)


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f}"


def section(quick: bool) -> str:
    """The markdown section: process figures and the import breakdown."""
    invoice_count = 100 if quick else 10_000
    proc = asyncio.run(
        run_process(invoice_count, idle_s=1.0 if quick else 3.0, starts=1 if quick else 3)
    )
    rows = imports(quick)
    base_t, base_rss = rows[0][1], rows[0][2]
    everything = rows[-1]
    lines = [
        "## Process cost",
        "",
        "`python -m bot run` (long polling, SQLite) against the fakes on loopback, on a "
        "database at the migrations' head (every start of a shop but its first).",
        "",
        "| measure | value | goal |",
        "| --- | ---: | --- |",
        f"| cold start to the first getUpdates (median of {len(proc.cold_starts)}: "
        f"{', '.join(f'{t:.2f}' for t in proc.cold_starts)}) | {proc.cold_start_s:.2f} s "
        f"| <= 1.2 s: {_verdict(proc.cold_start_s <= 1.2)} |",
        f"| first start of a new database (creates it, runs the migrations) "
        f"| {proc.first_start_s:.2f} s | |",
        f"| idle RSS | {_mb(proc.idle_rss)} MB "
        f"| <= 100 MB: {_verdict(proc.idle_rss <= 100 * 2**20)} |",
        f"| RSS after {proc.invoices:,} open invoices and {proc.paid:,} settled "
        f"| {_mb(proc.loaded_rss)} MB | |",
        "",
        "Imports, each in a fresh interpreter (best of 3; RSS is the interpreter's total, the "
        "bare interpreter's is the baseline):",
        "",
        "| import | seconds | RSS MB | RSS added MB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, took, rss in rows:
        lines.append(f"| {label} | {took:.3f} | {_mb(rss)} | {_mb(rss - base_rss)} |")
    share_t = (everything[1] - base_t) / proc.cold_start_s
    share_m = everything[2] / proc.idle_rss
    lines += [
        "",
        f"Imports are {share_t:.0%} of the cold start ({everything[1]:.2f} s of "
        f"{proc.cold_start_s:.2f} s) and {share_m:.0%} of the idle RSS ({_mb(everything[2])} MB "
        f"of {_mb(proc.idle_rss)} MB).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 invoices, fewer imports")
    args = parser.parse_args(argv)
    print(section(args.quick))


if __name__ == "__main__":
    main()
