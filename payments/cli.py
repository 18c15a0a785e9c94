"""``python -m payments check``: is this OKX account ready to take payments?

Reads the same environment variables as the bot (DESIGN section 11), checks the plans file, the
database, the API key's permissions, OKX's clock, every offered network's deposit status and
addresses, and the prices; prints a readable report and exits non-zero on any problem.
Secrets are read from the environment only and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from payments.catalog import load_catalog
from payments.clock import SystemClock
from payments.config import PaymentSettings
from payments.core import Payments
from payments.directory import get_chain_status
from payments.errors import PaymentsError

DEFAULT_DATABASE_URL = "sqlite:///data/subsbot.sqlite3"
REQUIRED = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
TRUE = {"1", "true", "yes", "on"}


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def warn(self, text: str) -> None:
        self.lines.append(f"  warn  {text}")

    def fail(self, text: str) -> None:
        self.problems += 1
        self.lines.append(f"  FAIL  {text}")


async def run_check(env: Mapping[str, str], out: list[str]) -> int:
    """The whole check; appends the report to ``out`` and returns the exit code."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        out.append(f"{missing[0]} is not set (a read-only OKX API key is required)")
        return 2
    report = Report()
    try:
        catalog = load_catalog(env.get("PLANS_FILE") or None)
    except PaymentsError as exc:
        out.append(str(exc))
        return 2
    report.ok(f"plans file: {len(catalog.plans)} plans, {len(catalog.coins)} coins")

    from payments.exchange.okx import OkxExchange  # imports ccxt (about a second)

    exchange = OkxExchange(
        env["OKX_API_KEY"],
        env["OKX_SECRET_KEY"],
        env["OKX_PASSPHRASE"],
        base_url=env.get("OKX_API_URL") or "https://www.okx.com",
    )
    try:
        payments = await Payments.open(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            exchange=exchange,
            catalog=catalog,
            settings=PaymentSettings(),
            clock=SystemClock(),
        )
    except (PaymentsError, OSError) as exc:
        await exchange.close()
        out.append(f"DATABASE_URL: cannot open the database ({type(exc).__name__}: {exc})")
        return 2
    except Exception as exc:  # a database driver's own error: name it, never echo the URL
        await exchange.close()
        out.append(f"DATABASE_URL: cannot open the database ({type(exc).__name__})")
        return 2
    report.ok(f"database: {payments.db.dialect}, migrations applied")
    try:
        await _check_okx(payments, env, report)
    finally:
        await payments.close()
    out.extend(report.lines)
    out.append("ready" if report.problems == 0 else f"{report.problems} problem(s)")
    return 0 if report.problems == 0 else 1


async def _check_okx(payments: Payments, env: Mapping[str, str], report: Report) -> None:
    allow_unsafe = env.get("ALLOW_UNSAFE_API_KEY", "").strip().lower() in TRUE
    try:
        offset = await payments.okx_clock.sync(payments.exchange.server_time_ms)
        (report.ok if abs(offset) <= 30_000 else report.warn)(f"clock offset to OKX: {offset} ms")
        for warning in await payments.start_checks(allow_unsafe_key=allow_unsafe):
            report.warn(warning)
        report.ok("API key: read-only" if not allow_unsafe else "API key accepted (unsafe allowed)")
    except PaymentsError as exc:
        report.fail(str(exc))
        return
    async with payments.db.read() as conn:
        for coin in payments.catalog.coins:
            for network in coin.networks:
                status = await get_chain_status(conn, coin.symbol, network.chain)
                where = f"{coin.symbol} on {network.label} ({network.chain})"
                if status is None:
                    report.fail(f"{where}: OKX does not list this chain")
                elif not status.can_deposit:
                    report.warn(f"{where}: deposits are suspended on OKX (not offered)")
                else:
                    report.ok(f"{where}: minimum deposit {status.min_deposit}")
    for coin in payments.catalog.coins:
        try:
            quote = await payments.quotes.quote(coin.symbol)
            report.ok(f"{coin.symbol} price: {quote.rate} USDT")
        except PaymentsError as exc:
            report.fail(f"{coin.symbol} price: {exc}")
    await _check_pool(payments, report)


async def _check_pool(payments: Payments, report: Report) -> None:
    from sqlalchemy import func, select

    from payments.storage.schema import pool_addresses as pool

    async with payments.db.read() as conn:
        rows = await conn.execute(
            select(pool.c.currency, pool.c.chain, func.count())
            .where(pool.c.active.is_(True))
            .group_by(pool.c.currency, pool.c.chain)
        )
        counts = {(r[0], r[1]): int(r[2]) for r in rows}
    for coin in payments.catalog.coins:
        for network in coin.networks:
            count = counts.get((coin.symbol, network.chain), 0)
            where = f"{coin.symbol} on {network.chain}"
            if count == 0:
                report.fail(f"{where}: no deposit address (create one in the OKX app)")
            else:
                report.ok(f"{where}: {count} deposit address(es) in the pool")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payments", description=__doc__)
    parser.add_argument("command", choices=["check"], help="check: verify the OKX set-up")
    parser.parse_args(argv)
    out: list[str] = []
    code = asyncio.run(run_check(os.environ, out))
    print("\n".join(out))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
