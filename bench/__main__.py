"""``python -m bench``: every benchmark, printed and written to ``docs/benchmarks.md``.

Options: ``--quick`` (tiny sizes: CI checks that the benchmarks still run), ``--only a,b``
(some sections), ``--no-write`` (print only). Each module has ``section(quick) -> str``
(markdown) and may have ``LIMITS`` (markdown bullets added under "What limits it"). Figures
are compared as ratios measured in the same run, because the machines these run on are shared
and noisy.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType

ORDER = (
    "poll_cost",
    "contention",
    "refusals",
    "qr_render",
    "process_cost",
    "conversation",
    "detection",
    "flood",
    "history_cost",
    "history_scale",
)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
# hand-written sections of the page, carried over when it is written again
KEPT = ("Running them", "Headlines")

LIMITS = """## What limits it

- **Poll CPU is settlement, not scale.** The history requests (pages of deposits only) and the
  rows read do not grow with the number of open invoices: matching loads only the open invoices
  whose amounts the new deposits could pay. 1,000 new deposits of which 10 settle an invoice
  stay under the 0.5 s goal at 10,000 open invoices; 500 settling in one poll miss it by
  seconds. What costs is each invoice turning paid (the per-invoice figure under the poll
  table): about ten statements in the decision's transaction (the invoice, the subscription
  and its period, the address back to the pool, the merchant event, the messages), each paying
  SQLAlchemy's statement building (about a third of that CPU in a profile) and a round trip
  through the async driver (aiosqlite hops to its thread and back). The paid messages now go
  out with the batch's other messages in one INSERT. Crediting a whole batch's subscriptions in
  a few statements, and building the per-invoice statements once, would be the next fixes; they
  touch the money path's compare-and-set rules and are left for a change of their own. On
  PostgreSQL the reservations of the deposits' amounts used to be looked up with a row-value
  IN list, which PostgreSQL checks against every reservation of the currency (0.35 s a batch
  at 100,000 open invoices); it is now a plain IN list per currency, which it hashes.
- **Cold start** is now imports (python-telegram-bot, SQLAlchemy, pydantic settings, then
  ccxt's OKX client when the exchange is made), opening the database (Alembic alone is 0.3 s
  to import, even when there is nothing to migrate) and one OKX request: the key's
  permissions, which must be checked before serving (an unsafe key stops start-up). OKX's
  chains and deposit addresses, about a second of rate-limited requests, load in the
  background once the bot is serving; a customer choosing a coin in that second waits for
  them. ccxt paces OKX over a rolling second (a burst goes out at once up to that second's
  budget) instead of one request every 0.18 s. FastAPI and uvicorn are only imported when
  there is an HTTP server (webhook mode or PORT).
- **Idle RSS**: ccxt's package imports every exchange it ships (about 90 MB); the bot now loads
  only its OKX client (`payments.exchange.ccxt_loader`), which saves about 50 MB. The rest is
  python-telegram-bot, SQLAlchemy and pydantic.
- **QR rendering**: qrcode's automatic mask choice (pure Python) was about 80 % of a render; the
  mask is now fixed. What remains is the matrix, the text lines and the PNG encode.
- **Contention**: the rate stays flat from 1 to 100 concurrent customers because a creation is
  CPU in the one bot process (a single event loop: quote, caps, allocation, the invoice row;
  about 10-20 ms each), not waiting on the database. Competing creations never abort: a taken
  amount is skipped through INSERT ... ON CONFLICT DO NOTHING or a compare-and-set, so there
  are no duplicate (address, amount) pairs and no errors, on either database.
- **Figures** come from one run on a shared 2-core machine: compare rows within a table (ratios
  measured in the same run), not with another machine's run.
"""


def machine() -> list[str]:
    """CPU model, cores, RAM, Python and OS, from /proc and ``platform``."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores",
        f"- RAM: {ram}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- OS: {platform.platform()}",
    ]


def load_module(name: str) -> ModuleType | None:
    """``bench.<name>``; None when the module does not exist yet."""
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{name}":
            raise
        return None


def kept_sections(page: str) -> list[str]:
    """The :data:`KEPT` sections of ``page`` (an earlier ``docs/benchmarks.md``), as written."""
    found = []
    for title in KEPT:
        start = page.find(f"\n## {title}\n")
        if start >= 0:
            end = page.find("\n## ", start + 1)
            found.append(page[start + 1 : None if end < 0 else end].rstrip() + "\n")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--only", default="", help=f"comma-separated, from {','.join(ORDER)}")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {DOCS.name}")
    args = parser.parse_args(argv)
    names = [n for n in ORDER if not args.only or n in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(ORDER)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    command = "python -m bench" + "".join(f" {shlex.quote(a)}" for a in (argv or []))
    started = time.perf_counter()
    sections: list[str] = []
    missing: list[str] = []
    failed: list[str] = []
    limits = [LIMITS]
    for name in names:
        module = load_module(name)
        section = getattr(module, "section", None)
        if not callable(section):
            missing.append(name)
            print(f"(bench.{name}: not available, skipped)", file=sys.stderr)
            continue
        try:
            text = str(section(args.quick))
        except Exception as exc:  # one broken benchmark must not lose the others' figures
            failed.append(f"{name} ({type(exc).__name__}: {exc})")
            print(f"(bench.{name} failed: {exc!r})", file=sys.stderr)
            continue
        print(text, flush=True)
        sections.append(text)
        extra = getattr(module, "LIMITS", None)  # a module's own "what limits it" bullets
        if isinstance(extra, str) and extra.strip():
            limits.append(extra.strip() + "\n")
    took = time.perf_counter() - started
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        "# Benchmarks",
        "",
        f"Generated {now} by `{command}` in {took:.0f} s"
        + (" (quick sizes: not figures to quote)." if args.quick else "."),
        "",
        "Machine:",
        "",
        *machine(),
        "",
        "Figures are best read as ratios within one table: the machine is shared and noisy.",
        "PostgreSQL rows: "
        + (
            "included (TEST_DATABASE_URL was set)."
            if os.environ.get("TEST_DATABASE_URL")
            else "not measured (TEST_DATABASE_URL was not set)."
        ),
    ]
    if missing:
        header += ["", f"Not measured in this run (module missing): {', '.join(missing)}."]
    if failed:
        header += ["", f"Failed in this run: {'; '.join(failed)}."]
    if not args.no_write:
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        kept = kept_sections(DOCS.read_text()) if DOCS.exists() else []
        body = "\n".join([*header, "", *kept, *sections]) + "\n" + "\n".join(limits)
        DOCS.write_text(body)
        print(f"wrote {DOCS}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
