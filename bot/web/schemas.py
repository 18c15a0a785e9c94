"""The JSON API's wire format: request and response models (they make ``/openapi.json``) and
the one error shape, ``{"error": "<stable_code>", "detail": "<human text>"}``, with the
exception handlers that answer every error in it.

Amounts travel as strings: ``Decimal(crypto_amount)`` is the exact amount to
send. Times are ISO 8601 in UTC (``2026-01-15T12:05:00Z``).

A payment is on one of two rails, named by ``rail``: ``"crypto"`` (an invoice paid into the
merchant's OKX account) or ``"stars"`` (Telegram Stars, ``crypto_currency`` ``"XTR"``: an
invoice link the Mini App opens with ``Telegram.WebApp.openInvoice``; Stars are whole numbers).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

Status = Literal["pending", "processing", "paid", "expired", "cancelled", "invalid"]
StarsStatus = Literal["pending", "paid", "expired", "cancelled"]


class ApiError(HTTPException):
    """An answer of the API that is an error: status, stable code, human detail."""

    def __init__(
        self, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, detail, dict(headers) if headers else None)
        self.error = error


class ErrorBody(BaseModel):
    error: str = Field(description="A stable, machine-readable code", examples=["unknown_plan"])
    detail: str = Field(description="What went wrong, for a person")


class InitializeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(min_length=1, max_length=64, examples=["pro"])
    crypto_currency: str = Field(min_length=1, max_length=16, examples=["USDT"])
    network: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        examples=["TRC20"],
        description=("Required when the coin is offered on several networks; none for XTR (Stars)"),
    )


class PaymentCreated(BaseModel):
    rail: Literal["crypto"]
    payment_id: str
    status: Status
    plan: str
    plan_name: str
    deposit_address: str
    deposit_tag: str | None = Field(description="A memo/tag the deposit must carry, if any")
    crypto_currency: str
    network: str = Field(examples=["TRC20"])
    network_label: str = Field(examples=["Tron (TRC20)"])
    crypto_amount: str = Field(
        description="The exact amount to send (it must ARRIVE exactly)", examples=["29.0037"]
    )
    amount_usd: str = Field(examples=["29"])
    expires_at: str
    expires_in_seconds: int
    instructions: str = Field(description="Plain text for the customer")
    qr_png_url: str = Field(description="Signed link to the invoice's QR image (10 minutes)")
    reused: bool = Field(description="An open invoice for the same choice was handed back")


class PaymentStatus(BaseModel):
    rail: Literal["crypto"]
    payment_id: str
    status: Status
    confirmed: bool = Field(description='True exactly when status is "paid"')
    plan: str
    plan_name: str
    tx_hash: str | None = Field(description="The first attached deposit's transaction hash")
    tx_hashes: list[str]
    crypto_currency: str
    network: str
    network_label: str
    crypto_amount: str
    topup_amount: str | None = Field(
        description="After a partial payment: the exact amount still to send"
    )
    amount_usd: str
    deposit_address: str
    deposit_tag: str | None
    exceptions: list[str] = Field(examples=[["paid_over"]])
    created_at: str
    expires_at: str
    expires_in_seconds: int
    paid_at: str | None
    instructions: str | None = Field(description="While the invoice is open: what to send")
    qr_png_url: str | None = Field(description="While the invoice is open: a fresh signed link")


class StarsPaymentCreated(BaseModel):
    """A Telegram Stars order: open ``invoice_link`` with ``Telegram.WebApp.openInvoice``."""

    rail: Literal["stars"]
    payment_id: str = Field(description="The order's id (status/{payment_id} follows it)")
    status: StarsStatus
    plan: str
    plan_name: str
    crypto_currency: Literal["XTR"]
    stars: int = Field(description="The price in Telegram Stars", examples=[1500])
    subscription: bool = Field(description="Telegram charges again every 30 days")
    subscription_period: int | None = Field(
        description="Seconds between charges (2592000) for a subscription, else null"
    )
    invoice_link: str = Field(description="For Telegram.WebApp.openInvoice")
    expires_at: str = Field(description="The link is refused at payment from then on")
    expires_in_seconds: int
    reused: bool = Field(description="The open order for the same plan was handed back")


class StarsCharge(BaseModel):
    """One charge Telegram made for an order: the first payment or a renewal."""

    id: str = Field(examples=["XTRK7QW2M9D"])
    stars: int
    paid_at: str
    renewal: bool
    refunded_at: str | None


class StarsPaymentStatus(BaseModel):
    rail: Literal["stars"]
    payment_id: str
    status: StarsStatus
    confirmed: bool = Field(description='True exactly when status is "paid"')
    plan: str
    plan_name: str
    crypto_currency: Literal["XTR"]
    stars: int
    subscription: bool
    renews: bool | None = Field(
        description="A paid subscription: whether Telegram renews it; else null"
    )
    refunded: bool = Field(description="Its latest charge was refunded")
    charges: list[StarsCharge] = Field(description="Oldest first")
    created_at: str
    expires_at: str
    expires_in_seconds: int
    paid_at: str | None
    invoice_link: str | None = Field(description="While the order is open: the link to pay")


Created = Annotated[PaymentCreated | StarsPaymentCreated, Field(discriminator="rail")]
AnyPayment = Annotated[PaymentStatus | StarsPaymentStatus, Field(discriminator="rail")]


class PaymentHistory(BaseModel):
    payments: list[AnyPayment] = Field(description="Both rails, newest first")


class Subscription(BaseModel):
    id: int
    plan: str
    plan_name: str
    status: str = Field(examples=["active", "expired"])
    started_at: str
    ends_at: str
    active: bool = Field(description="Running now (active and not past its end)")


class UserMe(BaseModel):
    id: int
    language: str | None
    created_at: str | None = Field(description="None until the customer first wrote or paid")
    subscriptions: list[Subscription]


class CatalogNetwork(BaseModel):
    code: str = Field(description="What initialize's `network` takes", examples=["TRC20"])
    label: str = Field(examples=["Tron (TRC20)"])
    needs_memo: bool = Field(
        description="Deposits on this network must carry the invoice's `deposit_tag` (memo)"
    )


class CatalogCoin(BaseModel):
    symbol: str = Field(description="What initialize's `crypto_currency` takes", examples=["USDT"])
    name: str = Field(examples=["Tether"])
    networks: list[CatalogNetwork] = Field(description="Those taking deposits now")


class CatalogPlan(BaseModel):
    id: str = Field(description="What initialize's `plan` takes", examples=["pro"])
    name: str
    days: int
    price_usd: str = Field(examples=["29"])
    description: str
    chats: int = Field(description="How many paid channels or groups a subscriber may join")
    chat_titles: list[str] = Field(description="Their titles, where the bot knows them")
    stars: int | None = Field(description="The price in Telegram Stars, or null: crypto only")
    renews_by_itself: bool = Field(
        description="Paid in Stars, Telegram charges it again every 30 days"
    )


class CatalogAnswer(BaseModel):
    plans: list[CatalogPlan] = Field(description="The plans on sale, in the shop's order")
    coins: list[CatalogCoin] = Field(
        description="The coins taking deposits now (as the chat's buttons); none in a shop "
        "selling for Telegram Stars only"
    )
    crypto: bool = Field(description="The shop takes crypto (OKX)")
    stars: bool = Field(description="Some plan is sold for Telegram Stars (`XTR`)")
    test_mode: bool = Field(
        default=False,
        description="Test mode (OKX_MODE=simulated): crypto payments are a rehearsal on a "
        "simulated exchange, not real; show it",
    )


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(
        min_length=1,
        max_length=256,
        description="The payment's transaction hash, or the OKX withdrawal ID of an "
        "OKX-to-OKX transfer",
        examples=["0x9f2c4be1"],
    )


ClaimOutcome = Literal["attached", "not_found", "admin", "rejected"]


class ClaimAnswer(BaseModel):
    payment_id: str
    outcome: ClaimOutcome = Field(
        description="attached: the payment is now on this invoice; not_found: no such "
        "payment has reached the shop's account yet (try again in a few minutes); admin: "
        "passed to an admin to decide; rejected: it cannot go on this invoice (`reason`)"
    )
    reason: str | None = Field(
        description="When rejected: already_attached, other_currency, older_than_invoice, "
        "after_invoice_window, blocked, invoice_<status> or other",
        examples=["already_attached"],
    )
    status: Status = Field(description="The payment's status after the claim")
    detail: str = Field(description="What the chat would say, plain text")


# --- answering errors: one JSON shape, bodies capped -----------------------------------------

_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    503: "unavailable",
}


def error_response(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def install_error_shape(app: FastAPI, *, body_limit: int, prefix: str) -> None:
    """Every error as ``{"error", "detail"}`` (validation errors, unknown routes and crashes
    too, never a stack trace); request bodies under ``prefix`` capped at ``body_limit``."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(_BodyCap, limit=body_limit, prefix=prefix)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers a body that is not UTF-8 with a bare 400: it is invalid JSON too
        return error_response(422, "invalid_json", "the request body is not valid JSON")
    status = exc.status_code
    error = exc.error if isinstance(exc, ApiError) else _CODES.get(status, f"http_{status}")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    if status in (204, 304):
        return Response(status_code=status, headers=exc.headers)
    return error_response(status, error, detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(422, "invalid_json", "the request body is not valid JSON")
    parts = []
    for problem in problems[:5]:
        where = ".".join(str(part) for part in problem.get("loc", ()))
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")


async def _internal_error(request: Request, exc: Exception) -> Response:
    # the server logs the traceback (the exception is raised on after this answer)
    log.error(
        "API request failed: %s %s (%s)", request.method, request.url.path, type(exc).__name__
    )
    return error_response(500, "internal_error", "something went wrong on our side")


class _BodyCap:
    """Refuses (413) a request body over ``limit`` bytes under ``prefix``: by its declared
    Content-Length before reading, or as soon as more than that has arrived."""

    def __init__(self, app: ASGIApp, *, limit: int, prefix: str) -> None:
        self.app = app
        self.limit = limit
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large()(scope, receive, send)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # FastAPI re-raises it; _http_error answers
                    raise ApiError(413, "body_too_large", self._detail())
            return message

        await self.app(scope, capped, send)

    def _detail(self) -> str:
        return f"the request body is larger than {self.limit // 1024} KiB"

    def _too_large(self) -> Response:
        return error_response(413, "body_too_large", self._detail())
