"""Who is calling the JSON API: a Telegram Mini App user or the merchant's own backend.

- ``Authorization: tma <initData>``: the Mini App's launch data, signed by Telegram with a key
  derived from the bot token (https://core.telegram.org/bots/webapps#validating-data-received-
  via-the-mini-app). Valid for a day after ``auth_date``.
- ``Authorization: Bearer <API_TOKEN>`` plus ``X-Telegram-User-Id: <id>``: server to server;
  refused while API_TOKEN is unset. It acts only for a customer who has started the bot (or
  whom an admin has dealt with), unless API_ANY_CUSTOMER is set: the token would otherwise let
  one backend make invoices, and hold unique amounts, for any number of made-up user ids. The
  backend must check the user id it passes itself: the bot cannot.

Merchant-only routes (the payments export) take the Bearer token alone, with no user id, and
refuse a Mini App user (403): see :func:`merchant`.

Everything but :func:`current_user` and :func:`merchant` (the FastAPI dependencies) is a
pure function of its arguments, the clock included. Errors name the reason, never the token or
the initData.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import Depends, Header
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from bot.web.deps import Context, ServicesDep
from bot.web.schemas import ApiError

log = logging.getLogger(__name__)

MAX_AGE_S = 86_400  # initData is accepted for a day after auth_date
MAX_FUTURE_S = 300  # and up to five minutes ahead of our clock
MAX_INIT_DATA = 8192  # characters; real initData is well under 2 KB
MAX_USER_ID = 2**53 - 1  # Telegram user ids have at most 52 significant bits
CHALLENGE = 'tma realm="subsbot", Bearer realm="subsbot"'


@dataclass(frozen=True)
class Principal:
    user_id: int
    language: str | None  # the Mini App's language_code; None for Bearer calls
    scheme: Literal["tma", "bearer"]


class AuthError(Exception):
    """Not authenticated: ``error`` is a stable code, ``detail`` says why (no secrets)."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


# --- Telegram Mini App initData ------------------------------------------------------------


def init_data_hash(fields: Mapping[str, str], bot_token: str) -> str:
    """Telegram's hash of initData ``fields`` (URL-decoded; any ``hash`` field is left out)."""
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def parse_init_data(init_data: str) -> dict[str, str]:
    """The URL-decoded fields; a repeated field or a broken query string is malformed."""
    if len(init_data) > MAX_INIT_DATA:
        raise AuthError("auth_malformed", "initData is too long")
    try:
        pairs = parse_qsl(
            init_data,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=64,
        )
    except ValueError:  # UnicodeDecodeError included
        raise AuthError("auth_malformed", "initData is not a URL-encoded query string") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise AuthError("auth_malformed", f"initData repeats the field {key!r}")
        fields[key] = value
    return fields


def validate_init_data(init_data: str, bot_token: str, *, now: float) -> Principal:
    """The Mini App user ``init_data`` names, when Telegram signed it for this bot recently."""
    if not init_data:
        raise AuthError("auth_malformed", "the tma scheme needs the Mini App's initData")
    fields = parse_init_data(init_data)
    given = fields.get("hash")
    if not given:
        raise AuthError("auth_malformed", "initData has no hash")
    expected = init_data_hash(fields, bot_token)
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise AuthError("auth_bad_signature", "initData is not signed for this bot")
    auth_date = fields.get("auth_date", "")
    if not auth_date.isascii() or not auth_date.isdigit():
        raise AuthError("auth_malformed", "initData has no valid auth_date")
    age = now - int(auth_date)
    if age > MAX_AGE_S:
        raise AuthError("auth_expired", "initData is more than a day old: reopen the Mini App")
    if age < -MAX_FUTURE_S:
        raise AuthError("auth_expired", "initData's auth_date is in the future")
    user_id, language = _user(fields.get("user"))
    return Principal(user_id, language, "tma")


def _user(raw: str | None) -> tuple[int, str | None]:
    if raw is None:
        raise AuthError("auth_malformed", "initData names no user")
    try:
        user: Any = json.loads(raw)
    except ValueError:
        raise AuthError("auth_malformed", "initData's user is not JSON") from None
    if not isinstance(user, dict):
        raise AuthError("auth_malformed", "initData's user is not an object")
    user_id, language = user.get("id"), user.get("language_code")
    if type(user_id) is not int or not 0 < user_id <= MAX_USER_ID:
        raise AuthError("auth_malformed", "initData's user has no valid id")
    if not isinstance(language, str) or not language:
        language = None
    return user_id, language


# --- the Authorization header --------------------------------------------------------------


def parse_user_id(raw: str | None) -> int:
    """X-Telegram-User-Id: a positive decimal integer."""
    if raw is None or not raw.strip():
        raise AuthError("auth_user_missing", "Bearer calls name the customer in X-Telegram-User-Id")
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_USER_ID:
        raise AuthError("auth_user_invalid", "X-Telegram-User-Id must be a positive integer")
    return int(text)


def authenticate(
    authorization: str | None,
    user_id_header: str | None,
    *,
    bot_token: str,
    api_token: str | None,
    now: float,
) -> Principal:
    """The caller of a request with these headers, or :class:`AuthError`."""
    if authorization is None or not authorization.strip():
        raise AuthError("auth_missing", "send Authorization: tma <initData> or Bearer <token>")
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    match scheme.lower():
        case "tma":
            return validate_init_data(credentials, bot_token, now=now)
        case "bearer":
            _check_bearer(credentials, api_token)
            return Principal(parse_user_id(user_id_header), None, "bearer")
    raise AuthError("auth_unknown_scheme", "the Authorization scheme must be tma or Bearer")


def _check_bearer(credentials: str, api_token: str | None) -> None:
    if api_token is None:
        raise AuthError("auth_bearer_disabled", "Bearer tokens are not enabled here")
    if not credentials:
        raise AuthError("auth_malformed", "the Bearer scheme needs a token")
    if not hmac.compare_digest(credentials.encode(), api_token.encode()):
        raise AuthError("auth_bad_token", "the Bearer token is not valid")


def authenticate_merchant(
    authorization: str | None, *, bot_token: str, api_token: str | None, now: float
) -> Literal["bearer", "tma"]:
    """Who calls a merchant-only route (the payments export): ``bearer`` for the API token;
    ``tma`` for a valid Mini App user, whom the route refuses (403); :class:`AuthError` for
    anything else. No X-Telegram-User-Id: the call acts for no customer."""
    if authorization is None or not authorization.strip():
        raise AuthError("auth_missing", "send Authorization: Bearer <token>")
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    match scheme.lower():
        case "tma":
            validate_init_data(credentials, bot_token, now=now)
            return "tma"
        case "bearer":
            _check_bearer(credentials, api_token)
            return "bearer"
    raise AuthError("auth_unknown_scheme", "the Authorization scheme must be Bearer")


# --- FastAPI --------------------------------------------------------------------------------

tma_scheme = APIKeyHeader(
    name="Authorization",
    scheme_name="TelegramMiniApp",
    description="`Authorization: tma <initData>`: Telegram.WebApp.initData of the Mini App",
    auto_error=False,
)
bearer_scheme = HTTPBearer(
    scheme_name="ApiToken",
    description="`Authorization: Bearer <API_TOKEN>` and `X-Telegram-User-Id: <user id>`",
    auto_error=False,
)


async def current_user(
    context: Context,
    services: ServicesDep,
    tma: Annotated[str | None, Depends(tma_scheme)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    x_telegram_user_id: Annotated[
        str | None,
        Header(description="With Bearer: the Telegram user id the call acts for"),
    ] = None,
) -> Principal:
    """The authenticated caller, or a 401 naming the reason."""
    settings = context.settings
    api_token = settings.api_token.get_secret_value() if settings.api_token else None
    try:
        principal = authenticate(
            tma,  # the raw Authorization header, whatever its scheme
            x_telegram_user_id,
            bot_token=settings.telegram_bot_token.get_secret_value(),
            api_token=api_token,
            now=context.now(),
        )
    except AuthError as exc:
        log.info("API call refused: %s", exc.error)
        raise ApiError(401, exc.error, exc.detail, {"WWW-Authenticate": CHALLENGE}) from None
    unknown = (
        principal.scheme == "bearer"
        and not settings.api_any_customer
        and await services.customers.get(principal.user_id) is None
    )
    if unknown:
        log.info("API call refused: customer_unknown")
        raise ApiError(
            403,
            "customer_unknown",
            "this user has not started the bot: a Bearer call acts only for its customers",
        )
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


async def merchant(
    context: Context,
    tma: Annotated[str | None, Depends(tma_scheme)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """The merchant's backend (Bearer API_TOKEN) only: a 401 naming the reason, or a 403 for a
    Mini App user (customers never reach a merchant-only route)."""
    settings = context.settings
    api_token = settings.api_token.get_secret_value() if settings.api_token else None
    try:
        scheme = authenticate_merchant(
            tma,  # the raw Authorization header, whatever its scheme
            bot_token=settings.telegram_bot_token.get_secret_value(),
            api_token=api_token,
            now=context.now(),
        )
    except AuthError as exc:
        log.info("API call refused: %s", exc.error)
        raise ApiError(401, exc.error, exc.detail, {"WWW-Authenticate": CHALLENGE}) from None
    if scheme != "bearer":
        log.info("API call refused: merchant_only")
        raise ApiError(403, "merchant_only", "only the merchant's backend (Bearer) may call this")


Merchant = Depends(merchant)
