"""The JSON API under ``/api``: what is on sale, create a payment (crypto, or Telegram Stars
with ``crypto_currency: "XTR"``), follow it, cancel or claim it, list payments, the customer.

Callers authenticate as a Mini App user (``tma``) or as the merchant's backend (``Bearer``), see
:mod:`bot.web.auth`; a customer only ever sees their own payments (another's id is a 404, as an
unknown one). Every error is ``{"error": "<stable_code>", "detail": "<text>"}``: call
:func:`install_error_handlers` on the app so FastAPI's own errors take that shape too.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, cast

from fastapi import APIRouter, FastAPI, Path, Query, Response
from fastapi.responses import StreamingResponse
from telegram.error import TelegramError

from bot import invoice_card
from bot.config import Settings
from bot.handlers.account import CLAIM_REASONS, claim_text
from bot.handlers.checkout import mark_photos, refusal
from bot.handlers.stars import invoice_link
from bot.refusals import invoice_refusal
from bot.services import Services
from bot.texts import Html
from bot.web import signing
from bot.web.auth import CurrentUser, Merchant, Principal
from bot.web.deps import Context, ServicesDep, WebContext
from bot.web.schemas import (
    AnyPayment,
    ApiError,
    CatalogAnswer,
    CatalogCoin,
    CatalogNetwork,
    CatalogPlan,
    ClaimAnswer,
    ClaimOutcome,
    ClaimRequest,
    Created,
    ErrorBody,
    InitializeRequest,
    PaymentCreated,
    PaymentHistory,
    PaymentStatus,
    StarsCharge,
    StarsPaymentCreated,
    StarsPaymentStatus,
    StarsStatus,
    Status,
    Subscription,
    UserMe,
    install_error_shape,
)
from payments import InvoiceView, errors, states
from payments.catalog import Catalog, Coin, Network, Plan
from payments.deposits import claims
from payments.ops import BadRange, export_range, to_csv
from payments.stars import CURRENCY, SUBSCRIPTION_PERIOD_S, StarsOrder, StarsPayment

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
PaymentId = Annotated[str, Path(min_length=1, max_length=32, examples=["K7QW2M9D"])]


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, "description": HTTPStatus(s).phrase} for s in statuses}


router = APIRouter(prefix="/api", responses=_documented(503))


def install_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error", "detail"}`` (FastAPI's validation errors and 404s included,
    never a stack trace), and request bodies under ``/api`` capped at 64 KiB (413)."""
    install_error_shape(app, body_limit=MAX_BODY_BYTES, prefix=router.prefix + "/")


# --- routes ----------------------------------------------------------------------------------


@router.post(
    "/payments/crypto/initialize",
    tags=["payments"],
    summary="Create an invoice (or hand back the open one for the same choice)",
    responses=_documented(401, 403, 409, 413, 422, 429),
)
async def initialize(
    user: CurrentUser,
    body: InitializeRequest,
    context: Context,
    services: ServicesDep,
) -> Created:
    if body.crypto_currency.strip().upper() == CURRENCY:
        plan = _stars_choice(services.catalog, body)
        if user.scheme == "tma":
            await services.customers.touch(user.user_id, user.language)
        return await _stars_order(context, services, user, plan)
    plan, coin, network = _choice(services.catalog, body)
    if user.scheme == "tma":
        await services.customers.touch(user.user_id, user.language)
    lang = await _language(services, user)
    await services.directory_settled()
    try:
        view = await services.payments.invoices.create(
            user.user_id, plan.id, coin.symbol, network.code, language=lang
        )
    except errors.PaymentsError as exc:
        if isinstance(exc, errors.NoFreeAmount):
            services.payments.check_capacity_soon()  # one at a time, one a minute
        stars = plan.stars is not None  # crypto unavailable: the detail offers Stars ("XTR")
        raise _creation_error(services, lang, exc, coin, network, stars=stars) from None
    return PaymentCreated(
        rail="crypto",
        payment_id=view.id,
        status=cast(Status, view.status),
        plan=view.plan_id,
        plan_name=view.plan_name,
        deposit_address=view.address,
        deposit_tag=view.tag,
        crypto_currency=view.currency,
        network=view.network,
        network_label=view.network_label,
        crypto_amount=view.amount_text,
        amount_usd=str(view.price_usd),
        expires_at=_iso(view.expires_at),
        expires_in_seconds=_seconds_left(services, view),
        instructions=_instructions(services, lang, view),
        qr_png_url=_qr_link(context, view.id),
        reused=view.reused,
    )


@router.get(
    "/payments/crypto/status/{payment_id}",
    tags=["payments"],
    summary="One payment of the caller",
    responses=_documented(401, 404, 422),
)
async def payment_status(
    user: CurrentUser,
    payment_id: PaymentId,
    context: Context,
    services: ServicesDep,
) -> AnyPayment:
    try:
        view = await services.payments.invoices.get(payment_id, customer_id=user.user_id)
    except errors.InvoiceNotFound:
        rail = services.payments.stars
        order = await rail.order(payment_id, customer_id=user.user_id)
        if order is None:
            raise ApiError(404, "payment_not_found", "no such payment") from None
        charges = await rail.payments_for([order.id])
        renews = await _renewals(services, user.user_id)
        return _stars_payment(services, order, charges.get(order.id, []), renews)
    if view.status in states.OPEN_STATUSES:
        services.poll.request()  # debounced, as the bot's "Check payment" button
    tx_ids = await services.storefront.tx_ids(view.id)
    lang = await _language(services, user)
    return _payment(context, services, lang, view, tx_ids)


@router.get(
    "/payments/history",
    tags=["payments"],
    summary="The caller's payments, newest first",
    responses=_documented(401, 422),
)
async def payment_history(
    user: CurrentUser,
    context: Context,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PaymentHistory:
    entries = await services.storefront.history(user.user_id, limit=limit)
    lang = await _language(services, user)
    rail = services.payments.stars
    orders = await rail.orders_of(user.user_id, limit=limit)
    charges = await rail.payments_for([o.id for o in orders])
    renews = await _renewals(services, user.user_id) if orders else {}
    dated: list[tuple[int, AnyPayment]] = [
        (e.invoice.created_at, _payment(context, services, lang, e.invoice, e.tx_ids))
        for e in entries
    ]
    dated += [
        (o.created_at, _stars_payment(services, o, charges.get(o.id, []), renews)) for o in orders
    ]
    dated.sort(key=lambda pair: pair[0], reverse=True)
    return PaymentHistory(payments=[p for _, p in dated[:limit]])


Day = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples=["2026-01-31"]),
]


@router.get(
    "/export",
    tags=["merchant"],
    summary="Every payment of a date range, as CSV (the merchant's backend only)",
    description=(
        "Every payment paid from `from` to `to` (YYYY-MM-DD, UTC days, both included; by "
        "default the last 30 days): crypto invoices that received money and Telegram Stars "
        "charges, ordered by time, one CSV row each with a header row, `rail` first. Amounts "
        "are exact decimal strings. `Authorization: Bearer <API_TOKEN>` only, with no "
        "X-Telegram-User-Id; a Mini App user (`tma`) gets 403."
    ),
    dependencies=[Merchant],
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "The payments as CSV (header row only when there were none)",
        },
        **_documented(401, 403, 422),
    },
)
async def export_payments(
    services: ServicesDep,
    first: Annotated[Day, Query(alias="from")] = None,
    last: Annotated[Day, Query(alias="to")] = None,
) -> StreamingResponse:
    try:
        days = export_range(first, last, now_ms=services.payments.okx_clock.now_ms())
    except BadRange as exc:
        raise ApiError(422, "bad_dates", str(exc)) from None
    export = services.payments.export

    async def lines() -> AsyncIterator[str]:
        header = True
        async for chunk in export.chunks(days.from_ms, days.to_ms):
            yield to_csv(chunk, header=header)
            header = False
        if header:
            yield to_csv([])

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{days.file_name}"'},
    )


@router.get(
    "/users/me",
    tags=["users"],
    summary="The caller and their subscriptions",
    responses=_documented(401),
)
async def users_me(user: CurrentUser, services: ServicesDep) -> UserMe:
    customer = await services.customers.get(user.user_id)
    subscriptions = await services.storefront.subscriptions(user.user_id)
    now_ms = services.payments.okx_clock.now_ms()
    return UserMe(
        id=user.user_id,
        language=(customer.language if customer else None) or user.language,
        created_at=_iso(customer.created_at) if customer else None,
        subscriptions=[
            Subscription(
                id=s.id,
                plan=s.plan_id,
                plan_name=_plan_name(services.catalog, s.plan_id),
                status=s.status,
                started_at=_iso(s.started_at),
                ends_at=_iso(s.ends_at),
                active=s.status == "active" and s.ends_at > now_ms,
            )
            for s in subscriptions
        ],
    )


@router.get(
    "/payments/crypto/qr/{payment_id}.png",
    tags=["payments"],
    summary="The invoice's QR image (a signed link from initialize/status; no Authorization)",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The PNG the Telegram photo shows"},
        **_documented(403, 404, 422),
    },
)
async def qr_png(
    payment_id: PaymentId,
    expires: Annotated[int, Query(description="Unix time the link stops working")],
    signature: Annotated[str, Query(max_length=128, description="hex HMAC-SHA256")],
    context: Context,
    services: ServicesDep,
) -> Response:
    now = context.now()
    if not signing.verify(_link_key(context), payment_id, expires, signature, now=now):
        raise ApiError(403, "bad_signature", "the link is invalid or expired: ask for a new one")
    try:
        view = await services.payments.invoices.get(payment_id)
    except errors.InvoiceNotFound:
        raise ApiError(404, "payment_not_found", "no such payment") from None
    customer = await services.customers.get(view.customer_id)
    lang = customer.language if customer else None
    png = await services.qr.render(
        invoice_card.payload(view, services.settings.qr_payload),
        invoice_card.image_lines(services.texts, lang, view),
    )
    max_age = max(0, min(signing.LIFETIME_S, int(expires - now)))
    return Response(
        png, media_type="image/png", headers={"Cache-Control": f"private, max-age={max_age}"}
    )


@router.get(
    "/catalog",
    tags=["shop"],
    summary="The plans on sale and the coins and networks taking deposits now",
    responses=_documented(401, 403),
)
async def catalog(user: CurrentUser, services: ServicesDep) -> CatalogAnswer:
    shop = services.catalog
    coins: list[CatalogCoin] = []
    if services.payments.crypto:
        await services.directory_settled()
        offered = await services.storefront.offered_networks()
        coins = [
            CatalogCoin(
                symbol=coin.symbol,
                name=coin.name,
                networks=[
                    CatalogNetwork(
                        code=o.network.code, label=o.network.label, needs_memo=o.needs_memo
                    )
                    for o in offered[coin.symbol]
                ],
            )
            for coin in shop.coins
            if offered.get(coin.symbol)
        ]
    titles = services.access.titles
    return CatalogAnswer(
        plans=[
            CatalogPlan(
                id=plan.id,
                name=plan.name,
                days=plan.days,
                price_usd=str(plan.price_usd),
                description=plan.description,
                chats=len(plan.chats),
                chat_titles=[titles[c] for c in plan.chats if titles.get(c)],
                stars=plan.stars,
                renews_by_itself=plan.renews_by_itself,
            )
            for plan in shop.plans
        ],
        coins=coins,
        crypto=services.payments.crypto,
        stars=bool(shop.stars_plans),
        test_mode=services.payments.simulated,
    )


@router.post(
    "/payments/{payment_id}/cancel",
    tags=["payments"],
    summary="Cancel the caller's open crypto invoice with nothing received (as /cancel)",
    responses=_documented(401, 403, 404, 409, 422),
)
async def cancel_payment(
    user: CurrentUser,
    payment_id: PaymentId,
    context: Context,
    services: ServicesDep,
) -> PaymentStatus:
    lang = await _language(services, user)
    invoices = services.payments.invoices
    try:
        cancelled = await invoices.cancel(payment_id, customer_id=user.user_id)
    except errors.InvoiceNotFound:
        order = await services.payments.stars.order(payment_id, customer_id=user.user_id)
        if order is None:
            raise ApiError(404, "payment_not_found", "no such payment") from None
        raise ApiError(
            409,
            "stars_not_cancellable",
            "a Telegram Stars order is not cancelled: unpaid, it lapses by itself",
        ) from None
    except errors.InvalidTransition:
        current = await invoices.get(payment_id, customer_id=user.user_id)
        code = "payment_received" if current.status == states.PROCESSING else "payment_closed"
        raise ApiError(409, code, _plain(refusal(services, lang, current))) from None
    await mark_photos(context.application.bot, services, lang, cancelled)
    return _payment(context, services, lang, cancelled, ())


@router.post(
    "/payments/{payment_id}/claim",
    tags=["payments"],
    summary="Claim a payment that was not matched, by its tx hash or OKX withdrawal ID",
    responses=_documented(401, 403, 404, 413, 422, 429),
)
async def claim_payment(
    user: CurrentUser,
    payment_id: PaymentId,
    body: ClaimRequest,
    services: ServicesDep,
) -> ClaimAnswer:
    lang = await _language(services, user)
    try:
        result = await services.payments.claims.claim(payment_id, user.user_id, body.reference)
    except errors.InvoiceNotFound:
        raise ApiError(404, "payment_not_found", "no such payment") from None
    detail = _plain(claim_text(services, lang, payment_id, result))
    if result.outcome == claims.REJECTED and result.reason == claims.BAD_REFERENCE:
        raise ApiError(422, "bad_reference", detail)
    if result.outcome == claims.REJECTED and result.reason == claims.RATE_LIMITED:
        # the limit counts the last hour's claims: in an hour at most, all of them are older
        raise ApiError(429, "claims_rate_limited", detail, {"Retry-After": "3600"})
    if result.outcome == claims.NOT_FOUND:
        services.poll.request()  # as the chat: the payment may be in OKX's next page
    view = await services.payments.invoices.get(payment_id, customer_id=user.user_id)
    return ClaimAnswer(
        payment_id=payment_id,
        outcome=cast(ClaimOutcome, result.outcome),
        reason=_claim_reason(result) if result.outcome == claims.REJECTED else None,
        status=cast(Status, view.status),
        detail=detail,
    )


def _claim_reason(result: claims.ClaimResult) -> str:
    """A refused claim's reason as the chat names it (the rest is "other")."""
    if result.reason.startswith("invoice_") or result.reason in CLAIM_REASONS:
        return result.reason
    return "other"


# --- building answers ------------------------------------------------------------------------


def _choice(catalog: Catalog, body: InitializeRequest) -> tuple[Plan, Coin, Network]:
    """The plan, coin and network asked for, or a 422 that lists what is offered."""
    plan = catalog.plan(body.plan)
    if plan is None:
        offered = ", ".join(p.id for p in catalog.plans)
        raise ApiError(422, "unknown_plan", f"unknown plan {body.plan!r}; plans: {offered}")
    coin = catalog.coin(body.crypto_currency.strip().upper())
    if coin is None:
        offered = ", ".join(catalog.currencies)
        raise ApiError(
            422,
            "unknown_currency",
            f"unknown crypto_currency {body.crypto_currency!r}; coins: {offered}",
        )
    codes = ", ".join(n.code for n in coin.networks)
    if body.network is None:
        if len(coin.networks) == 1:
            return plan, coin, coin.networks[0]
        raise ApiError(
            422, "network_required", f"{coin.symbol} is offered on several networks: {codes}"
        )
    network = coin.network(body.network.strip().upper())
    if network is None:
        raise ApiError(
            422,
            "unknown_network",
            f"{coin.symbol} is not offered on {body.network!r}; networks: {codes}",
        )
    return plan, coin, network


def _stars_choice(catalog: Catalog, body: InitializeRequest) -> Plan:
    """The plan asked for in Telegram Stars, or a 422 that says which plans are."""
    if body.network is not None:
        raise ApiError(
            422, "network_not_applicable", "XTR (Telegram Stars) takes no network: leave it out"
        )
    plan = catalog.plan(body.plan)
    offered = ", ".join(p.id for p in catalog.stars_plans) or "none"
    if plan is None:
        raise ApiError(422, "unknown_plan", f"unknown plan {body.plan!r}; Stars plans: {offered}")
    if plan.stars is None:
        raise ApiError(
            422,
            "not_sold_for_stars",
            f"plan {plan.id!r} is not sold for Telegram Stars; Stars plans: {offered}",
        )
    return plan


async def _stars_order(
    context: WebContext, services: Services, user: Principal, plan: Plan
) -> StarsPaymentCreated:
    """Open (or hand back) the customer's Stars order for ``plan`` and its invoice link, made
    by the running bot (``createInvoiceLink``)."""
    lang = await _language(services, user)
    rail = services.payments.stars
    before = services.payments.okx_clock.now_ms()
    try:
        order = await rail.open_order(user.user_id, plan.id, lang)
    except errors.CustomerBlocked:
        raise ApiError(
            403, "customer_blocked", _plain(services.texts.get(lang, "error_blocked"))
        ) from None
    try:
        link = await invoice_link(context.application.bot, services, lang, order)
    except TelegramError as exc:
        log.warning("Stars invoice link for %s not made: %s", order.id, type(exc).__name__)
        raise ApiError(
            503,
            "stars_unavailable",
            _plain(services.texts.get(lang, "stars_unavailable")),
            {"Retry-After": "30"},
        ) from None
    return StarsPaymentCreated(
        rail="stars",
        payment_id=order.id,
        status=cast(StarsStatus, order.status),
        plan=order.plan_id,
        plan_name=plan.name,
        crypto_currency="XTR",
        stars=order.stars,
        subscription=order.recurring,
        subscription_period=SUBSCRIPTION_PERIOD_S if order.recurring else None,
        invoice_link=link,
        expires_at=_iso(order.expires_at),
        expires_in_seconds=max(0, (order.expires_at - before) // 1000),
        reused=order.reused,
    )


async def _renewals(services: Services, customer_id: int) -> dict[str, bool]:
    """Order id -> whether Telegram renews it, for the customer's paid subscriptions."""
    subs = await services.payments.stars.subscriptions_of(customer_id)
    return {s.order_id: s.renewal_on for s in subs}


def _stars_payment(
    services: Services,
    order: StarsOrder,
    charges: list[StarsPayment],
    renews: dict[str, bool],
) -> StarsPaymentStatus:
    is_open = order.status == "pending"
    now = services.payments.okx_clock.now_ms()
    return StarsPaymentStatus(
        rail="stars",
        payment_id=order.id,
        status=cast(StarsStatus, order.status),
        confirmed=order.status == "paid",
        plan=order.plan_id,
        plan_name=_plan_name(services.catalog, order.plan_id),
        crypto_currency="XTR",
        stars=order.stars,
        subscription=order.recurring,
        renews=renews.get(order.id) if order.recurring and order.status == "paid" else None,
        refunded=bool(charges) and charges[-1].refunded_at is not None,
        charges=[
            StarsCharge(
                id=c.id,
                stars=c.stars,
                paid_at=_iso(c.paid_at),
                renewal=c.renewal,
                refunded_at=_iso(c.refunded_at) if c.refunded_at is not None else None,
            )
            for c in charges
        ],
        created_at=_iso(order.created_at),
        expires_at=_iso(order.expires_at),
        expires_in_seconds=max(0, (order.expires_at - now) // 1000) if is_open else 0,
        paid_at=_iso(charges[0].paid_at) if charges else None,
        invoice_link=order.link if is_open else None,
    )


def _creation_error(
    services: Services,
    lang: str | None,
    exc: errors.PaymentsError,
    coin: Coin,
    network: Network,
    *,
    stars: bool = False,
) -> ApiError:
    """The bot's own words for a refused invoice (bot.refusals), as an ApiError."""
    refusal = invoice_refusal(
        services.texts,
        lang,
        exc,
        coin=coin.symbol,
        network=network.label,
        max_open=services.settings.max_open_invoices,
        stars=stars,
    )
    if refusal.status == 500:
        log.warning("invoice creation refused: %s", type(exc).__name__)
    retry = {"Retry-After": str(refusal.retry_after_s)} if refusal.retry_after_s else None
    return ApiError(refusal.status, refusal.code, _plain(refusal.text), retry)


def _payment(
    context: WebContext,
    services: Services,
    lang: str | None,
    view: InvoiceView,
    tx_ids: tuple[str, ...],
) -> PaymentStatus:
    is_open = view.status in states.OPEN_STATUSES
    return PaymentStatus(
        rail="crypto",
        payment_id=view.id,
        status=cast(Status, view.status),
        confirmed=view.status == states.PAID,
        plan=view.plan_id,
        plan_name=view.plan_name,
        tx_hash=tx_ids[0] if tx_ids else None,
        tx_hashes=list(tx_ids),
        crypto_currency=view.currency,
        network=view.network,
        network_label=view.network_label,
        crypto_amount=view.amount_text,
        topup_amount=view.topup_amount_text if is_open else None,
        amount_usd=str(view.price_usd),
        deposit_address=view.address,
        deposit_tag=view.tag,
        exceptions=sorted(view.exceptions),
        created_at=_iso(view.created_at),
        expires_at=_iso(view.expires_at),
        expires_in_seconds=_seconds_left(services, view),
        paid_at=_iso(view.paid_at) if view.paid_at is not None else None,
        instructions=_instructions(services, lang, view) if is_open else None,
        qr_png_url=_qr_link(context, view.id) if is_open else None,
    )


def _instructions(services: Services, lang: str | None, view: InvoiceView) -> str:
    """What to send, plain text: the exact amount (or the top-up after a partial payment)."""
    texts = services.texts
    tag_part = texts.get(lang, "api_instructions_tag", tag=view.tag) if view.tag else ""
    if view.topup_amount_text:
        text = texts.get(
            lang,
            "api_instructions_topup",
            topup=view.topup_amount_text,
            coin=view.currency,
            network=view.network_label,
            address=view.address,
            tag_part=Html(tag_part),
            expires=texts.date(view.monitor_until),
        )
    else:
        text = texts.get(
            lang,
            "api_instructions",
            amount=view.amount_text,
            coin=view.currency,
            network=view.network_label,
            address=view.address,
            tag_part=Html(tag_part),
            expires=texts.date(view.expires_at),
        )
    return _plain(text)


async def _language(services: Services, user: Principal) -> str | None:
    """The Mini App's language, else the one the bot knows for the customer."""
    if user.language:
        return user.language
    customer = await services.customers.get(user.user_id)
    return customer.language if customer else None


def _qr_link(context: WebContext, payment_id: str) -> str:
    """On PUBLIC_URL, else on WEBHOOK_URL's host, else relative to this API (never on the
    request's Host header, which the caller chooses)."""
    base = public_base_url(context.settings) or ""
    return signing.qr_link(base, _link_key(context), payment_id, now=context.now())


def public_base_url(settings: Settings) -> str | None:
    """Where customers reach this service (:attr:`Settings.public_base_url`)."""
    return settings.public_base_url


def _link_key(context: WebContext) -> bytes:
    return signing.link_key(context.settings.telegram_bot_token.get_secret_value())


def _seconds_left(services: Services, view: InvoiceView) -> int:
    return max(0, (view.expires_at - services.payments.okx_clock.now_ms()) // 1000)


def _plan_name(catalog: Catalog, plan_id: str) -> str:
    plan = catalog.plan(plan_id)
    return plan.name if plan else plan_id


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


_TAG = re.compile(r"<[^>]*>")


def _plain(text: str) -> str:
    """Telegram HTML as plain text: tags dropped, entities unescaped."""
    return html.unescape(_TAG.sub("", text))
