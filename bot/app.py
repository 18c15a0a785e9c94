"""Build the Application: Defaults, rate limiter, update processor, every handler in a deliberate
order, the error handler, and ``post_init`` / ``post_shutdown`` that open and close the services
and schedule the jobs (python-telegram-bot's own examples are the model)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from telegram import BotCommand, LinkPreviewOptions, MenuButtonWebApp, Update, WebAppInfo
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatJoinRequestHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from bot import callbacks as cb
from bot import jobs
from bot.access import AccessWorker, call_limit
from bot.config import Settings
from bot.handlers import (
    access,
    account,
    admin,
    catalog,
    checkout,
    errors,
    presence,
    stars,
    support,
)
from bot.handlers import webhooks as merchant_webhooks
from bot.handlers.common import answer, language
from bot.ordering import ChatOrderedProcessor
from bot.qr import QrRenderer
from bot.replica import LeaseTimes, Replica, StandbyNudge
from bot.requests import ReadableUpdates, RetryingRateLimiter
from bot.seen import SeenRecently
from bot.sender import OutboxSender
from bot.services import BotApplication, BotContext, BotData, PollGate, Services
from bot.texts import DEFAULT_LANGUAGE, Texts
from bot.throttle import ReplyThrottle
from payments import PaymentCycle, Payments, load_catalog, payment_rails
from payments.catalog import default_plans_path
from payments.clock import Clock
from payments.delivery import WEBHOOK_BUDGET_S, WEBHOOK_TIMEOUT_S, WebhookSettings
from payments.errors import ConfigError, ExchangeAuthError, ExchangeError, UnsafeApiKey
from payments.exchange import Exchange, OkxExchange, SimulatedExchange

log = logging.getLogger(__name__)

CONCURRENT_UPDATES = 16

# the menu's order; /paysupport and /terms are what Telegram asks of every bot that sells
CUSTOMER_COMMANDS = ("start", "plans", "status", "history", "cancel", "paysupport", "terms", "help")

Handler = Callable[[Update, BotContext], Any]


class SubsbotApplication(Application[Any, Any, Any, Any, Any, Any]):
    """Stops the jobs first: PTB's stop() marks the application stopped while it drains the
    update queue, and a job firing in between would be created as an orphan task. The scheduler
    is paused first: JobQueue.stop(wait=True) waits for the runs in flight while the scheduler
    still fires new ones, and its shutdown then cancels those (logged as errors, and they ran on
    after the services were closed)."""

    async def stop(self) -> None:
        if self.job_queue is not None:
            if self.job_queue.scheduler.running:
                self.job_queue.scheduler.pause()
            await self.job_queue.stop(wait=True)
        await super().stop()


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    timings: jobs.Timings | None = None,
    rate_limit_retries: int = 2,
    webhook: bool = False,
    rate_limit: bool = True,
) -> BotApplication:
    """The bot, not yet started. ``clock`` (tests) replaces the host's clock for payments.
    ``webhook``: no Updater; a web server feeds ``application.update_queue`` instead.
    ``rate_limit`` False (benchmarks only): no rate limiter, to show the headroom."""
    timings = timings or jobs.Timings(stars_ledger=settings.stars_reconcile_seconds)

    async def post_init(application: BotApplication) -> None:
        services = await open_services(application, settings, clock, timings)
        application.bot_data.services = services
        assert application.job_queue is not None
        await services.replica.renew()  # before the first poll: a single replica polls at once
        jobs.schedule(
            application.job_queue,
            settings.payment_poll_seconds,
            timings,
            replicas=services.nudge is not None,
            crypto=services.payments.crypto,
        )
        if services.payments.crypto:
            services.start_background(jobs.load_directory(services, application.job_queue))
        else:  # Telegram Stars only: no chains or addresses to wait for
            services.directory_tried.set()
        await set_command_menus(
            application, services.texts, paid_chats=bool(services.catalog.chats)
        )
        services.mini_app_url = await set_mini_app_button(
            application, services.texts, settings.mini_app_url
        )

    async def post_shutdown(application: BotApplication) -> None:
        services = application.bot_data.services
        application.bot_data.services = None
        if services is not None:
            await services.close()

    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = ApplicationBuilder()
    if webhook:
        builder = builder.updater(None)
    if rate_limit:
        builder = builder.rate_limiter(RetryingRateLimiter(max_retries=rate_limit_retries))
    application = cast(
        BotApplication,
        builder.token(settings.telegram_bot_token.get_secret_value())
        .get_updates_request(ReadableUpdates(connection_pool_size=1))  # PTB's default pool
        .base_url(settings.bot_api_base_url)
        .base_file_url(settings.bot_file_base_url)
        .context_types(ContextTypes(context=BotContext, bot_data=BotData))
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                tzinfo=settings.zone,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .concurrent_updates(ChatOrderedProcessor(CONCURRENT_UPDATES))
        .application_class(SubsbotApplication)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build(),
    )
    register_handlers(application)
    return application


async def open_services(
    application: BotApplication,
    settings: Settings,
    clock: Clock | None,
    timings: jobs.Timings,
) -> Services:
    catalog = load_catalog(settings.plans_file)
    keys = settings.okx_keys
    try:
        rails = payment_rails(catalog, okx_keys=keys is not None, simulated=settings.simulated)
    except ConfigError as exc:  # no OKX keys, and a plan without a Stars price
        plans_file = settings.plans_file or default_plans_path()
        raise ConfigError(f"PLANS_FILE {plans_file}: {exc}") from None
    # Telegram Stars only: no OKX client at all (nothing polls, checks or loads from OKX)
    exchange: Exchange | None = None
    if rails.crypto and rails.simulated:  # test mode: no OKX, no keys, no money
        exchange = SimulatedExchange(catalog, clock=clock)
    elif rails.crypto and keys is not None:
        exchange = OkxExchange(*keys, base_url=settings.okx_api_url, clock=clock)
    lease_times = LeaseTimes.for_poll(settings.payment_poll_seconds)
    limiter = application.bot.rate_limiter
    # each POST must end while this replica surely still holds the lease: its time-out (and a
    # run's budget with it) fits in what is left of the lease just before a renewal
    margin = lease_times.ttl_s - 2 * lease_times.renew_s
    timeout = min(WEBHOOK_TIMEOUT_S, margin / 2)
    secret = settings.merchant_webhook_secret
    webhooks = WebhookSettings(
        urls=tuple(settings.merchant_webhook_urls),
        secret="" if secret is None else secret.get_secret_value(),
        timeout_s=timeout,
        budget_s=min(WEBHOOK_BUDGET_S, margin - timeout),
    )
    try:
        payments = await Payments.open(
            database_url=settings.database_url,
            exchange=exchange,
            catalog=catalog,
            settings=settings.payment_settings(),
            clock=clock,
            webhooks=webhooks,
        )
    except BaseException:
        if exchange is not None:
            await exchange.close()
        raise
    # Before serving: the key (an unsafe one stops start-up) and that OKX lists every network
    # of the plans file (a misspelt coin or chain stops it too), one request each. Chain status
    # and addresses load in the background right after (jobs.load_directory): about a second
    # of rate-limited OKX requests that would otherwise delay the first update.
    try:
        for warning in await payments.check_key(allow_unsafe_key=settings.allow_unsafe_api_key):
            log.warning("%s", warning)
        unlisted = await payments.unlisted_chains()
    except UnsafeApiKey:
        await payments.close()
        raise
    except ExchangeAuthError as exc:
        if not await payments.key_ever_accepted():  # a first start: a setting to fix, not an outage
            await payments.close()
            raise ConfigError(
                f"OKX_API_KEY: OKX refused the key ({exc}); check OKX_API_KEY, OKX_SECRET_KEY,"
                " OKX_PASSPHRASE, OKX_API_URL's region and the key's IP whitelist"
                " (python -m bot check)"
            ) from None
        # it worked before: serve (Stars still sell), refuse crypto invoices and tell the admins
        log.error("OKX refused the API key (the poller keeps trying): %s", exc)
    except ExchangeError as exc:  # OKX down: serve the bot, keep retrying
        log.error("OKX start-up checks failed (the poller keeps trying): %s", exc)
    else:
        if unlisted:  # a misspelt coin or chain in the plans file: a setting to fix
            await payments.close()
            plans_file = settings.plans_file or default_plans_path()
            raise ConfigError(
                f"PLANS_FILE {plans_file}: OKX does not list {', '.join(unlisted)}"
                " (python -m bot check shows every chain)"
            )
    # once start-up can no longer be refused: a refusal stays the one line it prints
    log.info("%s", rails.line())
    if (unused := rails.warning()) is not None:
        log.warning("%s", unused)
    texts = Texts(settings.zone, settings.languages(), test_mode=payments.simulated)
    customers, photos = payments.customers, payments.photos
    seen = SeenRecently()
    replica = Replica(payments.lease("jobs"), payments.okx_clock.local, lease_times)
    # SQLite is one replica, always the primary: nobody to pass a tap on to
    nudge = None
    if payments.shared_database:
        nudge = StandbyNudge(payments.signals, payments.okx_clock.local)
    sender = OutboxSender(
        application.bot,
        payments,
        customers,
        photos,
        texts,
        settings.admin_ids,
        on_unreachable=seen.forget,
        replica=replica,
    )
    # before the jobs: the URLs in force (a new one gets the events from now on); the admins
    # hear once of deliveries left pending to URLs that are gone
    await payments.webhooks.start()
    return Services(
        settings=settings,
        payments=payments,
        customers=customers,
        photos=photos,
        texts=texts,
        qr=QrRenderer(),
        storefront=payments.storefront,
        sender=sender,
        poll=PollGate(
            partial(jobs.payment_cycle, PaymentCycle(payments), sender),
            allowed=lambda: replica.primary,
            standby=None if nudge is None else nudge.ask,
        ),
        admin_ids=frozenset(settings.admin_ids),
        access=AccessWorker(
            application.bot,
            payments.access,
            payments.okx_clock,
            budget_s=timings.access_budget,
            replica=replica,
            call_s=call_limit(lease_times),
            room=limiter.room if isinstance(limiter, RetryingRateLimiter) else None,
        ),
        replica=replica,
        timings=timings,
        seen=seen,
        free_text=ReplyThrottle(payments.okx_clock.local),
        directory_ready=not payments.crypto,  # Stars only: no chains or addresses to load
        webhooks=payments.webhooks,
        nudge=nudge,
    )


async def set_command_menus(
    application: BotApplication, texts: Texts, *, paid_chats: bool = False
) -> None:
    """The command menu in English for everyone, and in each other catalogue language for
    clients set to it. A menu is nice to have: failing to set it does not stop start-up."""
    names = CUSTOMER_COMMANDS + (("join",) if paid_chats else ())
    for lang in texts.catalogue:
        commands = [BotCommand(c, texts.get(lang, f"command_{c}")) for c in names]
        try:
            if lang == DEFAULT_LANGUAGE:
                await application.bot.set_my_commands(commands)
            else:
                await application.bot.set_my_commands(commands, language_code=lang)
        except TelegramError as exc:
            log.warning("could not set the %s command menu: %s", lang, exc)


async def set_mini_app_button(
    application: BotApplication, texts: Texts, url: str | None
) -> str | None:
    """Every private chat's menu button opens the Mini App at ``url`` (the default menu button,
    in the default language: Telegram keeps one). Returns ``url`` once Telegram took it, else
    None: then /start offers no Mini App either (Telegram would refuse that button too), and
    the chat alone sells, as without a URL."""
    if url is None:
        return None
    button = MenuButtonWebApp(texts.get(DEFAULT_LANGUAGE, "button_checkout_menu"), WebAppInfo(url))
    try:
        await application.bot.set_chat_menu_button(menu_button=button)
    except TelegramError as exc:
        log.warning("could not set the Mini App menu button (%s): %s", url, exc)
        return None
    return url


def _on(action: type[object]) -> Callable[[object], bool]:
    def check(data: object) -> bool:
        return isinstance(data, str) and isinstance(cb.parse(data), action)

    return check


async def stale_button(update: Update, context: BotContext) -> None:
    """Callback data we do not recognise (forged, or from an older version): change nothing."""
    if update.callback_query is not None:
        text = context.services.texts.get(language(update), "stale_button")
        await answer(update.callback_query, text, alert=True)


def register_handlers(application: BotApplication) -> None:
    private = filters.ChatType.PRIVATE
    # first, for every update, without stopping it: the customer is reachable, in this language
    application.add_handler(TypeHandler(Update, presence.touch), group=-1)
    commands: list[tuple[str, Handler]] = [
        ("start", catalog.start),
        ("plans", catalog.plans),
        ("status", account.status),
        ("history", account.history),
        ("help", account.help_command),
        ("cancel", account.cancel),
        # Telegram's rules for bots that sell: answered to anyone, blocked or not, and whatever
        # they were in the middle of (a claim's awaited tx hash stays awaited); commands, so
        # they come before the catch-all text handler below, which would take them as a claim
        ("paysupport", support.paysupport),
        ("terms", support.terms),
        # admins (each handler refuses anyone not in ADMIN_IDS)
        ("pending", admin.pending),
        ("confirm", admin.confirm),
        ("reject", admin.reject),
        ("reassign", admin.reassign),
        ("refunded", admin.refunded),
        ("stats", admin.stats),
        ("export", admin.export),
        ("user", admin.user),
        ("grant", admin.grant),
        ("simulate_deposit", admin.simulate_deposit),
        ("refund", stars.refund),
        ("block", admin.block),
        ("unblock", admin.unblock),
        ("webhooks", merchant_webhooks.overview),
        ("redeliver", merchant_webhooks.redeliver),
        ("members", access.members),
        ("join", access.join),
    ]
    # new messages only: CommandHandler also takes edited ones by default, and an admin fixing
    # a typo in an old "/grant 1 pro 7" must not grant again (edits are ignored altogether)
    new_private = private & filters.UpdateType.MESSAGE
    for name, callback in commands:
        application.add_handler(CommandHandler(name, callback, filters=new_private))
    buttons: list[tuple[type[object], Handler]] = [
        (cb.Menu, catalog.on_menu),
        (cb.ChoosePlan, catalog.on_plan),
        (cb.Renew, catalog.on_plan),
        (cb.ChooseCoin, catalog.on_coin),
        (cb.ChooseNetwork, catalog.on_network),
        (cb.PayStars, stars.on_pay),
        (cb.StarsRenewal, stars.on_renewal),
        (cb.CheckInvoice, checkout.on_check),
        (cb.ClaimInvoice, checkout.on_claim),
        (cb.CancelInvoice, checkout.on_cancel),
        (cb.AdminConfirm, admin.on_confirm),
        (cb.AdminReject, admin.on_reject),
        (cb.AdminPage, admin.on_page),
    ]
    for action, callback in buttons:
        application.add_handler(CallbackQueryHandler(callback, pattern=_on(action)))
    application.add_handler(CallbackQueryHandler(stale_button))
    # paid channels and groups: who joins or leaves, join requests, the bot's own rights
    application.add_handler(ChatMemberHandler(access.on_chat_member, ChatMemberHandler.CHAT_MEMBER))
    application.add_handler(
        ChatMemberHandler(access.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER)
    )
    application.add_handler(ChatJoinRequestHandler(access.on_join_request))
    # Telegram Stars: the pre-checkout question (answered within 10 s) and the payment itself,
    # before the catch-all below would take it for free text
    application.add_handler(PreCheckoutQueryHandler(stars.on_pre_checkout))
    application.add_handler(
        MessageHandler(private & filters.SUCCESSFUL_PAYMENT, stars.on_successful_payment)
    )
    # anything else a customer sends: a claim's tx hash when one is awaited, else the help
    application.add_handler(MessageHandler(new_private, account.text))
    application.add_error_handler(errors.on_error)
