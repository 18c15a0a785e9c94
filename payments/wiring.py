"""The payments core wired together: one object the Telegram layer and the HTTP API use.

payments = await Payments.open(database_url=..., exchange=OkxExchange(...), ...)
# exchange=None: a shop selling for Telegram Stars only (payments.crypto is False): its catalog
# offers no coin, and nothing below calls OKX (the key check, the directory and the capacity
# check do nothing; the bot schedules no poll)
warnings = await payments.start_checks(allow_unsafe_key=False)
invoice = await payments.invoices.create(customer_id, "pro", "USDT", "TRC20")
report = await payments.poller.poll()          # every PAYMENT_POLL_SECONDS
await payments.expire_due()                      # after each poll
await payments.remind_and_expire()               # subscriptions: reminders and expiry
await payments.check_capacity()                  # e.g. hourly: admins hear about low capacity
stats = await payments.stats()                   # /stats
report = await payments.prune_history()          # daily: settled history past RETENTION_DAYS
health = await payments.health()                 # /healthz: the database and OKX's state

It builds every service the Telegram layer and the HTTP API use (``invoices``, ``claims``,
``claim_waits``, ``admin``, ``customers``, ``photos``, ``storefront``, ``access``,
``webhooks``, ``signals``, ``stars``, ``support``, ``export``, ``lease(name)``): they never
reach the database handle themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.exc import SQLAlchemyError

from payments.access import AccessService
from payments.botstate.claim_waits import ClaimWaits
from payments.botstate.invoice_photos import InvoiceMessages
from payments.botstate.lease import LeaseStore
from payments.botstate.signals import Signals
from payments.catalog import Catalog
from payments.clock import MINUTE_MS, Clock, ExchangeClock, SystemClock
from payments.config import PaymentSettings
from payments.delivery.outbox import Outbox
from payments.delivery.webhooks import WebhookSender, WebhookSettings
from payments.deposits.claims import ClaimService
from payments.deposits.decide import DepositProcessor, match_rules
from payments.deposits.expiry import expire_invoices
from payments.deposits.poll import POLLED_UNTIL_KEY, DepositPoller
from payments.errors import (
    BadSimulatedAmount,
    DatabaseUnavailable,
    SimulationRefused,
)
from payments.exchange.absent import NoExchange
from payments.exchange.base import DepositRecord, Exchange
from payments.exchange.chains import refresh_addresses, refresh_chains
from payments.exchange.okx import check_api_key
from payments.exchange.simulated import SimulatedExchange
from payments.invoicing.creation_guard import CreationGuard
from payments.invoicing.customers import CustomerService
from payments.invoicing.invoices import InvoiceService
from payments.invoicing.storefront import Storefront
from payments.ops.admin import AdminService
from payments.ops.capacity import CapacityWarning, check_capacity
from payments.ops.export import ExportService
from payments.ops.health import KEY_ACCEPTED, Health, check_health
from payments.ops.reports import ShopStats, shop_stats
from payments.ops.retention import CHUNK as PRUNE_CHUNK
from payments.ops.retention import PruneReport, prune
from payments.ops.support import SupportService
from payments.pricing.quotes import QuoteService
from payments.rails import payment_rails
from payments.stars import StarsRail
from payments.storage import Database
from payments.storage.kv import get_int, set_value
from payments.subscriptions.reminders import ReminderReport, run_reminders_and_expiry

log = logging.getLogger(__name__)


def _log_failure(task: asyncio.Task[list[CapacityWarning]]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("capacity check failed: %s", task.exception())


def _without_password(url: str) -> str:
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


@dataclass
class Payments:
    db: Database
    exchange: Exchange
    catalog: Catalog
    settings: PaymentSettings
    okx_clock: ExchangeClock
    quotes: QuoteService
    invoices: InvoiceService
    processor: DepositProcessor
    poller: DepositPoller
    admin: AdminService
    claims: ClaimService
    claim_waits: ClaimWaits  # which invoice a customer's next message claims for
    customers: CustomerService
    photos: InvoiceMessages
    storefront: Storefront
    access: AccessService
    webhooks: WebhookSender  # without URLs it only serves the admins' view of what was left
    signals: Signals  # between replicas (a standby passing a "check now" on)
    stars: StarsRail  # the Telegram Stars rail
    support: SupportService  # /paysupport: the admins' alert, one a customer per 10 minutes
    export: ExportService  # /export and GET /api/export: every payment of a date range
    # crypto into OKX is on; False: no OKX keys, the shop sells for Telegram Stars only (the
    # exchange is a NoExchange that nothing calls, the catalog has no coin)
    crypto: bool = True
    # a key check that has not passed (OKX down or the key refused at start-up): each poll
    # runs it again first, and reads no deposit until it passes
    key_check_pending: bool = False
    allow_unsafe_key: bool = False
    # the last capacity check a refusal asked for (OKX time), or a running one
    _capacity_asked_at: int | None = field(default=None, init=False, repr=False)
    _capacity_task: asyncio.Task[list[CapacityWarning]] | None = field(
        default=None, init=False, repr=False
    )

    @functools.cached_property
    def outbox(self) -> Outbox:
        """The outbox on this database, as the message sender uses it (claims, outcomes)."""
        return Outbox(self.db)

    @classmethod
    async def open(
        cls,
        *,
        database_url: str,
        exchange: Exchange | None,
        catalog: Catalog,
        settings: PaymentSettings | None = None,
        clock: Clock | None = None,
        db_schema: str | None = None,
        webhooks: WebhookSettings | None = None,
    ) -> Payments:
        """Connect and migrate the database and wire the services (no OKX request yet).
        ``exchange`` None: Telegram Stars only (no OKX keys), every plan needs a Stars price."""
        db = Database.from_url(database_url, schema=db_schema)
        try:
            await db.migrate()
        except (OSError, SQLAlchemyError) as exc:  # unreachable, refused, no such database
            await db.close()
            first_line = (str(exc).splitlines() or [""])[0][:200]
            raise DatabaseUnavailable(
                f"DATABASE_URL: cannot open {_without_password(database_url)} "
                f"({type(exc).__name__}: {first_line})"
            ) from exc
        try:
            return cls.wire(db, exchange, catalog, settings or PaymentSettings(), clock, webhooks)
        except BaseException:  # e.g. webhook URLs without a secret
            await db.close()
            raise

    @classmethod
    def wire(
        cls,
        db: Database,
        exchange: Exchange | None,
        catalog: Catalog,
        settings: PaymentSettings,
        clock: Clock | None = None,
        webhooks: WebhookSettings | None = None,
    ) -> Payments:
        crypto = exchange is not None
        if exchange is None:
            payment_rails(catalog, okx_keys=False)  # ConfigError: a plan with no Stars price
            exchange, catalog = NoExchange(), Catalog(plans=catalog.plans, coins=())
        if isinstance(exchange, SimulatedExchange):  # test mode: its deposits live here
            exchange.bind(db)
        okx_clock = ExchangeClock(clock or SystemClock())
        quotes = QuoteService(exchange, okx_clock, currencies=catalog.currencies)
        processor = DepositProcessor(db, catalog, settings, okx_clock, quotes)
        rules = match_rules(settings, catalog)
        guard = CreationGuard(refusals_per_hour=settings.invoices_per_hour)
        invoices = InvoiceService(db, catalog, quotes, okx_clock, settings, guard)
        hooks = webhooks or WebhookSettings()
        stars = StarsRail(db, catalog, okx_clock, order_ttl_ms=settings.ttl_ms)
        return cls(
            db=db,
            exchange=exchange,
            catalog=catalog,
            settings=settings,
            okx_clock=okx_clock,
            quotes=quotes,
            invoices=invoices,
            processor=processor,
            poller=DepositPoller(db, exchange, catalog, settings, okx_clock, processor),
            admin=AdminService(db, okx_clock, catalog, settings, rules, guard),
            claims=ClaimService(db, okx_clock, settings, rules),
            claim_waits=ClaimWaits(db, okx_clock),
            customers=CustomerService(db, okx_clock),
            photos=InvoiceMessages(db, okx_clock),
            storefront=Storefront(db, catalog, invoices, okx_clock, stars),
            access=AccessService(db, okx_clock, catalog, grace_days=settings.grace_days),
            webhooks=WebhookSender(
                db,
                hooks.urls,
                hooks.secret,
                okx_clock,
                timeout_s=hooks.timeout_s,
                budget_s=hooks.budget_s,
                lease_clock=okx_clock.local,  # the replica's lease is timed by the host's clock
            ),
            signals=Signals(db),
            stars=stars,
            support=SupportService(db, okx_clock),
            export=ExportService(db),
            crypto=crypto,
        )

    @property
    def simulated(self) -> bool:
        """Test mode (OKX_MODE=simulated): the exchange is the in-process simulated one."""
        return isinstance(self.exchange, SimulatedExchange)

    async def simulate_deposit(
        self, invoice_id: str, amount: Decimal | None = None
    ) -> DepositRecord:
        """Test mode: a credited deposit to ``invoice_id``'s address, coin and chain (and
        memo), of ``amount`` (default: the invoice's exact amount), on the simulated exchange;
        the next poll settles it as it would a real one. SimulationRefused outside test mode,
        InvoiceNotFound, BadSimulatedAmount: each changes nothing."""
        exchange = self.exchange
        if not isinstance(exchange, SimulatedExchange):
            raise SimulationRefused(
                "simulated deposits work only in test mode (OKX_MODE=simulated); nothing changed"
            )
        invoice = await self.invoices.get(invoice_id)
        coin = self.catalog.coin(invoice.currency)
        if amount is None:
            amount = Decimal(invoice.amount_text)  # exactly what the invoice shows
        step = coin.step if coin is not None else Decimal("1e-18")
        if (
            not amount.is_finite()
            or amount <= 0
            or amount > Decimal(10) ** 12
            or amount % step != 0
        ):
            raise BadSimulatedAmount(
                f"the amount must be a positive number of {invoice.currency} in steps of"
                f" {step.normalize():f}; nothing changed"
            )
        return await exchange.add_deposit(
            currency=invoice.currency,
            chain=invoice.chain,
            amount=amount.quantize(step),  # as OKX writes it: the coin's decimals
            to_address=invoice.address,
            memo=invoice.tag,
        )

    def lease(self, name: str) -> LeaseStore:
        """The lease called ``name`` (the replica lease of the singleton jobs is "jobs")."""
        return LeaseStore(self.db, name)

    @property
    def shared_database(self) -> bool:
        """Several replicas may share this database (PostgreSQL). SQLite is one replica,
        always the primary: nobody to pass a request on to."""
        return self.db.dialect == "postgresql"

    async def health(self) -> Health:
        """Whether the database can be read, and OKX's state as the payment cycle recorded it."""
        return await check_health(self.db)

    async def start_checks(self, *, allow_unsafe_key: bool) -> list[str]:
        """Refuse an API key that can trade or withdraw; load chain status and the address pool.
        Returns warnings (e.g. no IP whitelist, a chain without an address). Measures the offset
        to OKX's clock first, so nothing is stamped with the host's clock once it serves.
        Stars only: nothing to check."""
        if not self.crypto:
            return []
        await self.okx_clock.sync(self.exchange.server_time_ms)
        warnings = await self.check_key(allow_unsafe_key=allow_unsafe_key)
        await self.refresh_directory()
        return warnings

    async def check_key(self, *, allow_unsafe_key: bool) -> list[str]:
        """Refuse an API key that can trade or withdraw (UnsafeApiKey); returns warnings. Until
        the check passes it stays pending, and the payment cycle reads no deposit before it has
        run it again (OKX down at start-up must not let a key skip the check)."""
        if not self.crypto:
            return []
        self.key_check_pending, self.allow_unsafe_key = True, allow_unsafe_key
        warnings = check_api_key(
            await self.exchange.fetch_key_info(), allow_unsafe=allow_unsafe_key
        )
        self.key_check_pending = False
        now = self.okx_clock.now_ms()
        async with self.db.transaction() as conn:
            await set_value(conn, KEY_ACCEPTED, now, now)
        return warnings

    async def key_ever_accepted(self) -> bool:
        """Whether OKX has ever answered a key check on this database (a key that worked once
        and is refused now is an outage to tell admins about; one never accepted, a setting)."""
        async with self.db.read() as conn:
            return await get_int(conn, KEY_ACCEPTED) is not None

    async def unlisted_chains(self) -> list[str]:
        """The catalogue's networks OKX does not list at all (a coin or chain name that is wrong
        in the plans file), as "COIN network CODE (chain)"; one request. OKX listing a chain with
        deposits suspended is not this: that is a status, refreshed hourly."""
        if not self.crypto:
            return []
        listed = {
            (info.currency, info.chain)
            for info in await self.exchange.fetch_chains(list(self.catalog.currencies))
        }
        return [
            f"{coin.symbol} network {network.code} ({network.chain})"
            for coin in self.catalog.coins
            for network in coin.networks
            if (coin.symbol, network.chain) not in listed
        ]

    async def refresh_directory(self) -> None:
        """Chain status (canDep, minDep, fee) and every deposit address; hourly."""
        if not self.crypto:
            return
        now = self.okx_clock.now_ms()
        await refresh_chains(self.db, self.exchange, self.catalog, now_ms=now)
        await refresh_addresses(self.db, self.exchange, self.catalog, now_ms=now)

    async def polled_until(self) -> int | None:
        """OKX time up to which a poll has completed (expiry waits for it)."""
        async with self.db.read() as conn:
            return await get_int(conn, POLLED_UNTIL_KEY)

    async def expire_due(self) -> int:
        until = await self.polled_until()
        if until is None:
            return 0
        return await expire_invoices(self.db, self.okx_clock, self.settings, polled_until=until)

    async def remind_and_expire(self, *, batch: int = 500) -> ReminderReport:
        """Subscription reminders (3 days and 1 day before the end) and expiry, in transactions
        of ``batch`` subscriptions until none is due; returns the totals."""
        reminded: dict[int, int] = {}
        expired = 0
        while True:
            async with self.db.transaction() as conn:
                report = await run_reminders_and_expiry(
                    conn, now_ms=self.okx_clock.now_ms(), limit=batch
                )
            for days, count in report.reminded.items():
                reminded[days] = reminded.get(days, 0) + count
            expired += report.expired
            if not report.more:
                break
        return ReminderReport(reminded=reminded, expired=expired, more=False)

    async def stats(self) -> ShopStats:
        """Figures for admins: subscribers, sales in the last 24 h and 30 d, the outbox."""
        return await shop_stats(self.db, now_ms=self.okx_clock.now_ms())

    async def prune_history(self, *, chunk: int = PRUNE_CHUNK) -> PruneReport:
        """Delete settled history older than RETENTION_DAYS (nothing when it is 0), in
        transactions of at most ``chunk`` rows; money and audit rows are never deleted."""
        return await prune(
            self.db, now_ms=self.okx_clock.now_ms(), days=self.settings.retention_days, chunk=chunk
        )

    async def check_capacity(self) -> list[CapacityWarning]:
        """Low free amounts or pool addresses; admins are told once a day about each."""
        if not self.crypto:
            return []
        return await check_capacity(
            db=self.db,
            catalog=self.catalog,
            quotes=self.quotes,
            clock=self.okx_clock,
            settings=self.settings,
        )

    def check_capacity_soon(self) -> None:
        """A customer was told "busy": check capacity in the background, at most one check at a
        time and one a minute, however many refusals ask (a burst must not start a check each)."""
        now = self.okx_clock.now_ms()
        running = self._capacity_task is not None and not self._capacity_task.done()
        if running or (
            self._capacity_asked_at is not None and now - self._capacity_asked_at < MINUTE_MS
        ):
            return
        self._capacity_asked_at = now
        self._capacity_task = asyncio.get_running_loop().create_task(
            self.check_capacity(), name="capacity-check"
        )
        self._capacity_task.add_done_callback(_log_failure)

    async def close(self) -> None:
        if self._capacity_task is not None and not self._capacity_task.done():
            self._capacity_task.cancel()
            with contextlib.suppress(BaseException):
                await self._capacity_task
        await self.webhooks.close()
        await self.exchange.close()
        await self.db.close()
