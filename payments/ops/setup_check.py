"""``python -m payments check``: is this OKX account ready to take payments?

Reads the same environment variables as the bot, checks the plans file, the
database, the API key's permissions, OKX's clock, every offered network's deposit status and
addresses, and the prices; prints a readable report and exits non-zero on any problem.
Secrets are read from the environment only and never printed.

:func:`check_setup` is the check itself, from explicit arguments; ``python -m bot check`` calls it
too (with its Telegram and webhook checks around it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from payments.catalog import Catalog, default_plans_path, load_catalog
from payments.clock import SystemClock
from payments.config import PaymentSettings
from payments.delivery.webhooks import monitor
from payments.errors import ConfigError, PaymentsError
from payments.exchange.chains import get_chain_status
from payments.rails import SIMULATED_LINE, payment_rails

if TYPE_CHECKING:
    from payments.exchange.base import Exchange
    from payments.wiring import Payments

DEFAULT_DATABASE_URL = "sqlite:///data/subsbot.sqlite3"
DEFAULT_OKX_URL = "https://www.okx.com"
REQUIRED = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
TRUE = {"1", "true", "yes", "on"}
CLOCK_WARN_MS = 30_000
MIN_SECRET = 6  # shorter values are not searched for (they would mangle every line)
_URL_PASSWORD = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*:([^@]*)@")
WHERE_FROM = (
    "settings are read from the environment and from .env in the working directory"
    " (.env.example lists every setting)"
)


def url_password(url: str) -> str | None:
    """The password in a database URL (``postgresql://user:PASSWORD@host/db``), if any."""
    match = _URL_PASSWORD.match(url)
    return match[1] if match and match[1] else None


def mask_password(url: str) -> str:
    """``postgresql://user:***@host/db``."""
    password = url_password(url)
    return url if password is None else url.replace(f":{password}@", ":***@", 1)


BUNDLED_PLANS = (
    "PLANS_FILE is not set: the bundled EXAMPLE plans are in use (payments/plans.toml), not"
    " yours. Write your plans file and set PLANS_FILE to its path; in Docker mount it"
    " (-v $PWD/plans.toml:/app/plans.toml:ro) and set PLANS_FILE=/app/plans.toml; on Render add"
    " it as a Secret File named plans.toml and set PLANS_FILE=/etc/secrets/plans.toml"
    " (docs/setup.md)"
)


@dataclass
class Report:
    """One line per check (``ok`` / ``warn`` / ``FAIL`` / ``skip``), scrubbed of ``secrets``;
    ``echo`` (e.g. ``print``) shows each line as soon as it is known."""

    secrets: Iterable[str] = ()
    echo: Callable[[str], None] | None = None
    lines: list[str] = field(default_factory=list)
    problems: int = 0

    def __post_init__(self) -> None:
        values = {s for s in self.secrets if len(s) >= MIN_SECRET}
        values |= {unquote(s) for s in values}  # a URL's password, also as the driver sees it
        self.secrets = sorted(values, key=len, reverse=True)  # a longer secret is removed whole

    def ok(self, text: str) -> None:
        self._add("ok", text)

    def warn(self, text: str) -> None:
        self._add("warn", text)

    def fail(self, text: str) -> None:
        self.problems += 1
        self._add("FAIL", text)

    def skip(self, text: str) -> None:
        self._add("skip", text)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def _add(self, tag: str, text: str) -> None:
        line = f"  {tag:<4}  {self.redact(text)}"
        self.lines.append(line)
        if self.echo is not None:
            self.echo(line)

    @property
    def verdict(self) -> str:
        return "ready" if self.problems == 0 else f"{self.problems} problem(s)"

    @property
    def exit_code(self) -> int:
        return 0 if self.problems == 0 else 1


@dataclass(frozen=True)
class OkxAccess:
    """Where and as whom to call OKX (the key, secret and passphrase are never printed)."""

    api_key: str
    secret: str
    passphrase: str
    base_url: str = DEFAULT_OKX_URL

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key, self.secret, self.passphrase)


async def check_setup(
    report: Report,
    *,
    okx: OkxAccess | None,
    database_url: str,
    plans_file: str | Path | None = None,
    allow_unsafe: bool = False,
    settings: PaymentSettings | None = None,
    webhook_urls: Sequence[str] | None = None,
    simulated: bool = False,
) -> None:
    """The plans file, the database (migrated), then OKX: clock, API key permissions, every
    offered network's status, prices and deposit addresses. Each result is a line of
    ``report``; nothing is raised for a problem it can name. With ``webhook_urls`` (the
    MERCHANT_WEBHOOK_URLS), webhook deliveries left pending to URLs no longer among them.

    ``okx`` None (no OKX keys): the payment rails line, and a shop selling for Telegram Stars
    only is checked without a single OKX request. ``simulated`` (test mode, OKX_MODE=simulated):
    the simulated exchange stands in for OKX; nothing calls OKX either."""
    try:
        catalog = load_catalog(plans_file)
    except PaymentsError as exc:
        report.fail(str(exc))
        report.skip("database and OKX checks (they need the plans file)")
        return
    report.ok(f"plans file: {len(catalog.plans)} plans, {len(catalog.coins)} coins")
    if plans_file is None:
        report.warn(BUNDLED_PLANS)
    try:
        rails = payment_rails(catalog, okx_keys=okx is not None, simulated=simulated)
    except ConfigError as exc:  # no OKX keys and a plan without a Stars price
        report.fail(f"PLANS_FILE {plans_file or default_plans_path()}: {exc}")
        report.skip("database and OKX checks (no payment rail for every plan)")
        return
    report.ok(rails.line())
    if (unused := rails.warning()) is not None:
        report.warn(unused)
    if rails.simulated:
        await _check_simulated(report, catalog, database_url, settings, webhook_urls)
        return
    if okx is None or not rails.crypto:
        await _check_stars_only(report, catalog, database_url, settings, webhook_urls)
        return

    from payments.exchange.okx import OkxExchange  # imports ccxt (about a second)

    exchange = OkxExchange(okx.api_key, okx.secret, okx.passphrase, base_url=okx.base_url)
    payments = await _open(report, exchange, catalog, database_url, settings)
    if payments is None:
        try:
            await _check_key_only(report, exchange, allow_unsafe)
        finally:
            await exchange.close()
        report.skip("networks, prices and deposit addresses (they need the database)")
        return
    try:
        if webhook_urls is not None:
            await _check_webhooks(payments, webhook_urls, report)
        await _check_okx(payments, okx, allow_unsafe, report)
    finally:
        await payments.close()


async def _check_stars_only(
    report: Report,
    catalog: Catalog,
    database_url: str,
    settings: PaymentSettings | None,
    webhook_urls: Sequence[str] | None,
) -> None:
    """Telegram Stars only: the database and the webhooks; OKX is not called at all."""
    payments = await _open(report, None, catalog, database_url, settings)
    if payments is not None:
        try:
            if webhook_urls is not None:
                await _check_webhooks(payments, webhook_urls, report)
        finally:
            await payments.close()
    report.skip("OKX: not used (the shop sells for Telegram Stars only)")


async def _check_simulated(
    report: Report,
    catalog: Catalog,
    database_url: str,
    settings: PaymentSettings | None,
    webhook_urls: Sequence[str] | None,
) -> None:
    """Test mode: the database and the webhooks; the simulated exchange stands in for OKX."""
    from payments.exchange.simulated import SimulatedExchange

    exchange = SimulatedExchange(catalog) if catalog.coins else None
    payments = await _open(report, exchange, catalog, database_url, settings)
    if payments is not None:
        try:
            if webhook_urls is not None:
                await _check_webhooks(payments, webhook_urls, report)
        finally:
            await payments.close()
    report.warn(
        f"OKX: not used: {SIMULATED_LINE} (OKX_MODE=simulated): no payment is real; customers"
        " see TEST on every screen and /simulate_deposit pays an invoice"
    )


async def _check_webhooks(payments: Payments, urls: Sequence[str], report: Report) -> None:
    """Pending deliveries to URLs that are gone: named by scheme, host and path and the id that
    ``/webhooks move`` and ``/webhooks drop`` take (never the query string: it may carry a
    token)."""
    for url in await monitor.gone(payments.db, urls):
        report.warn(
            f"MERCHANT_WEBHOOK_URLS: {url.pending} delivery(ies) still pending to {url.url}"
            f" (id {url.id}), which is no longer configured: /webhooks move {url.id} <new id>"
            f" or /webhooks drop {url.id} in the bot"
        )


async def _open(
    report: Report,
    exchange: Exchange | None,
    catalog: Catalog,
    database_url: str,
    settings: PaymentSettings | None,
) -> Payments | None:
    from payments.wiring import Payments  # wiring imports this package: not at import time

    try:
        payments = await Payments.open(
            database_url=database_url,
            exchange=exchange,
            catalog=catalog,
            settings=settings or PaymentSettings(),
            clock=SystemClock(),
        )
    except PaymentsError as exc:  # names DATABASE_URL, without the password
        report.fail(str(exc))
        return None
    except Exception as exc:  # e.g. a URL the driver cannot parse: its message may echo it
        where = mask_password(database_url)
        report.fail(f"DATABASE_URL: cannot open {where} ({type(exc).__name__})")
        return None
    migration = payments.db.migration
    done = "migrations applied" if migration is None else migration.line()
    report.ok(f"database: {payments.db.dialect}, {done}")
    return payments


async def _check_key_only(report: Report, exchange: Exchange, allow_unsafe: bool) -> None:
    """Without a database: OKX's answer and the key's permissions still tell something."""
    from payments.exchange.okx import check_api_key

    try:
        for warning in check_api_key(await exchange.fetch_key_info(), allow_unsafe=allow_unsafe):
            report.warn(warning)
    except PaymentsError as exc:
        report.fail(str(exc))
        return
    report.ok(_key_line(allow_unsafe))


def _key_line(allow_unsafe: bool) -> str:
    return "API key: read-only" if not allow_unsafe else "API key accepted (unsafe allowed)"


async def _check_okx(
    payments: Payments, okx: OkxAccess, allow_unsafe: bool, report: Report
) -> None:
    try:
        offset = await payments.okx_clock.sync(payments.exchange.server_time_ms)
    except PaymentsError as exc:
        report.fail(f"OKX at {okx.base_url} (OKX_API_URL): {exc}")
        report.skip("API key, networks, prices and deposit addresses (OKX did not answer)")
        return
    (report.ok if abs(offset) <= CLOCK_WARN_MS else report.warn)(
        f"OKX at {okx.base_url} answers; clock offset {offset} ms"
    )
    try:
        for warning in await payments.start_checks(allow_unsafe_key=allow_unsafe):
            report.warn(warning)
        report.ok(_key_line(allow_unsafe))
    except PaymentsError as exc:
        report.fail(str(exc))
        report.skip("networks, prices and deposit addresses (fix the API key first)")
        return
    async with payments.db.read() as conn:
        for coin in payments.catalog.coins:
            for network in coin.networks:
                status = await get_chain_status(conn, coin.symbol, network.chain)
                where = f"{coin.symbol} on {network.label} ({network.chain})"
                if status is None:
                    chains = await _okx_chains(payments, coin.symbol)
                    listed = ", ".join(chains) if chains else "none (is the coin's symbol right?)"
                    report.fail(
                        f"{where}: OKX does not list this chain; OKX's chains for"
                        f" {coin.symbol}: {listed}"
                    )
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


async def _okx_chains(payments: Payments, currency: str) -> list[str]:
    """The chains OKX lists for ``currency`` (the chain names a plans file takes), sorted;
    empty when OKX does not list the coin or does not answer."""
    try:
        infos = await payments.exchange.fetch_chains([currency])
    except PaymentsError:
        return []
    return sorted({info.chain for info in infos if info.currency == currency})


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


async def run_check(env: Mapping[str, str], out: list[str]) -> int:
    """The check from environment variables; appends the report to ``out``, returns the exit
    code (2: a required variable is missing, 1: a problem, 0: ready)."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        names = f"{', '.join(missing[:-1])} and {missing[-1]}" if len(missing) > 1 else missing[0]
        out.append(
            f"{names} {'is' if len(missing) == 1 else 'are'} not set (a read-only OKX API key"
            f" is required): {WHERE_FROM}"
        )
        return 2
    okx = OkxAccess(
        env["OKX_API_KEY"],
        env["OKX_SECRET_KEY"],
        env["OKX_PASSPHRASE"],
        base_url=(env.get("OKX_API_URL") or DEFAULT_OKX_URL).rstrip("/"),
    )
    database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    report = Report(secrets=[*okx.secrets, url_password(database_url) or ""])
    await check_setup(
        report,
        okx=okx,
        database_url=database_url,
        plans_file=env.get("PLANS_FILE") or None,
        allow_unsafe=env.get("ALLOW_UNSAFE_API_KEY", "").strip().lower() in TRUE,
    )
    out.extend(report.lines)
    out.append(report.verdict)
    return report.exit_code


def environment(env_file: str | Path = ".env") -> dict[str, str]:
    """The process environment over ``env_file`` (when it exists), as the bot reads them: an
    empty value in either means unset."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(env_file).items() if v}
    merged.update({k: v for k, v in os.environ.items() if v})
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payments", description=__doc__)
    parser.add_argument("command", choices=["check"], help="check: verify the OKX set-up")
    parser.parse_args(argv)
    out: list[str] = []
    code = asyncio.run(run_check(environment(), out))
    print("\n".join(out))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
