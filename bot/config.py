"""One Settings object from the environment and ``.env``.

A missing or malformed setting stops start-up with one line naming the variable
(:func:`load_settings` raises :class:`payments.errors.ConfigError`). Secrets are ``SecretStr``:
they never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.terms import MESSAGE_LIMIT, longest_terms
from bot.texts import LANGUAGES, Language, TextsError, load_languages
from payments import OKX_SETTINGS
from payments.config import PaymentSettings
from payments.errors import ConfigError
from payments.ops import WHERE_FROM

QrPayload = Literal["default", "uri", "address"]
OkxMode = Literal["live", "simulated"]
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")  # Telegram's characters; 16+ ours
MAX_SHOP_NAME = 64
MAX_WELCOME = 2000  # the greeting's body; the plans and subscriptions follow in the same message
MIN_SECRET = 16  # shorter secrets are guessable, and the log filter skips very short ones
_HTTPS_URL = re.compile(r"https://[^\s/?#]+\.[^\s/?#]+(?:[/?#]\S*)?")
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,31}")  # Telegram's: 5-32 characters
_TME = re.compile(r"(?:https://)?(?:t\.me|telegram\.me)/[A-Za-z0-9_+][A-Za-z0-9_+/?=&-]{0,200}")
_EMAIL = re.compile(r"[^\s@<>\"]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*:)[^/]*@")
# `ADMIN_IDS=123   # your id`: a .env reader drops the comment, `docker run --env-file` keeps it
_INLINE_COMMENT = re.compile(r"(?:^|\s)#.*$", re.DOTALL)
_TEXT_COMMENT = re.compile(r"\s#\s.*$", re.DOTALL)  # free text: "order #5" is no comment


def _and(names: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def support_contact(raw: str) -> str:
    """SUPPORT_CONTACT as customers read it: an @username, a t.me link (made https://) or an
    e-mail address; ValueError for anything else."""
    contact = raw.strip()
    if _USERNAME.fullmatch(contact) or (_EMAIL.fullmatch(contact) and len(contact) <= 254):
        return contact
    if _TME.fullmatch(contact):
        return contact if contact.startswith("https://") else f"https://{contact}"
    raise ValueError("must be an @username, a t.me link (https://t.me/name) or an e-mail address")


def inline_comment(name: str, value: str) -> str | None:
    """The one-line problem of a value that ends in a `` # comment`` (``docker run --env-file``
    keeps it as part of the value); None for a value without one. A secret's comment is not
    quoted: a passphrase may hold " #" itself."""
    pattern = _TEXT_COMMENT if name == "terms_text" else _INLINE_COMMENT
    found = pattern.search(value)
    if found is None:
        return None
    comment = found.group().strip()
    shown = "" if name in _SECRET_FIELDS else f" (' {comment}')"
    return (
        f"{name.upper()}: the value ends in a comment{shown}: put comments on their own line;"
        " docker --env-file keeps them"
    )


def mask_url(url: str) -> str:
    """``postgresql://user:***@host/db``: a database URL without its password."""
    return _URL_PASSWORD.sub(r"\1***@", url)


WEBHOOK_PATH = "/telegram/webhook"  # Telegram's updates, under WEBHOOK_URL
MINI_APP_PATH = "/app"  # the Mini App's page, under PUBLIC_URL (or WEBHOOK_URL)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,  # "PORT=" in a .env template means unset, not "not a number"
    )

    telegram_bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    admin_ids: Annotated[tuple[int, ...], NoDecode]
    allow_unsafe_api_key: bool = False
    # all three for crypto payments through OKX; none of them: a shop selling for Stars only
    okx_api_key: SecretStr | None = None
    okx_secret_key: SecretStr | None = None
    okx_passphrase: SecretStr | None = None
    okx_api_url: str = "https://www.okx.com"
    # simulated: test mode, an in-process simulated exchange instead of OKX (no keys, no money)
    okx_mode: OkxMode = "live"
    database_url: str = "sqlite:///data/subsbot.sqlite3"
    plans_file: Path | None = None
    payment_poll_seconds: float = Field(default=60, ge=0.1, le=3600)
    invoice_ttl_minutes: int = 120
    # how often Telegram's Stars ledger is read against the recorded Stars payments
    stars_reconcile_seconds: float = Field(default=600, ge=1, le=86400)
    payment_monitor_hours: int = 24
    payment_tolerance_percent: Decimal = Decimal(2)
    amount_offset_cap_percent: Decimal = Decimal("0.5")
    amount_offset_cap_max_percent: Decimal = Decimal("1.5")
    max_open_invoices: int = 3
    max_held_amounts: int = 20
    unpaid_amount_budget_percent: Decimal = Decimal(50)
    settle_on_state: int = 2
    retention_days: int = 90
    qr_payload: QrPayload = "default"
    timezone: str = "UTC"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    public_url: str | None = None
    webapp_url: str | None = None  # the Mini App; default: PUBLIC_URL's (else WEBHOOK_URL's) /app
    host: str = "0.0.0.0"
    port: int | None = Field(default=None, ge=1, le=65535)
    api_token: SecretStr | None = None
    api_any_customer: bool = False
    api_docs: bool = False  # /docs (Swagger UI, its script and styles from a CDN): opt-in
    grace_days: int = Field(default=0, ge=0, le=365)
    merchant_webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    merchant_webhook_secret: SecretStr | None = None
    support_contact: str | None = None
    terms_text: str | None = None
    terms_url: str | None = None
    texts_dir: Path | None = None  # the shop's own words: <lang>.po files over the bundled ones
    shop_name: str | None = None
    welcome_text: str | None = None
    log_level: str = "INFO"

    render_external_url: str | None = None  # set by Render: WEBHOOK_URL when that is unset
    _languages: dict[str, Language] | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_comments(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, str) and (problem := inline_comment(name, value)):
                    raise ValueError(problem)
        return data

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            parts = [p.strip() for p in raw.replace(";", ",").split(",") if p.strip()]
            try:
                return tuple(int(p) for p in parts)
            except ValueError:
                raise ValueError("must be comma-separated numeric Telegram user ids") from None
        return raw

    @field_validator("admin_ids")
    @classmethod
    def _at_least_one(cls, ids: tuple[int, ...]) -> tuple[int, ...]:
        if not ids:
            raise ValueError("at least one admin is required: someone must see unmatched deposits")
        if any(i <= 0 for i in ids):
            raise ValueError("Telegram user ids are positive numbers")
        return ids

    @field_validator("merchant_webhook_urls", mode="before")
    @classmethod
    def _split_urls(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        return raw

    @field_validator("merchant_webhook_urls")
    @classmethod
    def _http_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for number, url in enumerate(urls, 1):
            if not url.startswith(("http://", "https://")) or len(url) > 500:
                raise ValueError(f"URL number {number} must start with http:// or https://")
        if len(set(urls)) != len(urls):
            raise ValueError("a URL is listed twice")
        return urls

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (e.g. UTC, Europe/Berlin)") from None
        return name

    @field_validator(
        "telegram_api_url",
        "okx_api_url",
        "webhook_url",
        "public_url",
        "render_external_url",
        "webapp_url",
    )
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")

    @field_validator("telegram_api_url")
    @classmethod
    def _without_bot(cls, url: str) -> str:
        """``http://host/bot`` (as the fake Bot API prints it, and as python-telegram-bot's
        base_url is spelt) means ``http://host``: the bot adds ``/bot<token>`` itself."""
        return url.removesuffix("/bot")

    @field_validator("support_contact")
    @classmethod
    def _contact(cls, contact: str | None) -> str | None:
        if contact is None:
            return None
        return support_contact(contact)

    @field_validator("terms_url")
    @classmethod
    def _https_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.strip()
        if not _HTTPS_URL.fullmatch(url):
            raise ValueError("must be an https:// link (no spaces, at most 500 characters)")
        return url

    @field_validator("shop_name")
    @classmethod
    def _shop_name(cls, name: str | None) -> str | None:
        name = name.strip() if name is not None else None
        if name and len(name) > MAX_SHOP_NAME:
            raise ValueError(f"must be at most {MAX_SHOP_NAME} characters")
        return name or None

    @field_validator("welcome_text")
    @classmethod
    def _welcome(cls, text: str | None) -> str | None:
        text = text.strip() if text is not None else None
        if text and len(text) > MAX_WELCOME:
            raise ValueError(
                f"is {len(text)} characters; at most {MAX_WELCOME} leave room for the plans "
                "under it in one Telegram message"
            )
        return text or None

    @field_validator("texts_dir")
    @classmethod
    def _texts_dir(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_dir():
            raise ValueError(f"{path} is not a directory (of <lang>.po files)")
        return path

    @field_validator("terms_text")
    @classmethod
    def _terms(cls, text: str | None) -> str | None:
        return text.strip() or None if text is not None else None

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret.get_secret_value()):
            raise ValueError(
                "must be 16-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's characters)"
            )
        return secret

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < MIN_SECRET:
            raise ValueError(f"must be at least {MIN_SECRET} characters")
        return token

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        given = [name for name, value in self._okx_settings() if value is not None]
        if given and self.okx_mode == "simulated":
            raise ValueError(
                f"OKX_MODE is simulated (test mode) but {_and(given)}"
                f" {'is' if len(given) == 1 else 'are'} set: a shop with real OKX keys must not"
                " take pretend payments; unset the OKX keys to rehearse, or set OKX_MODE=live"
            )
        if given and len(given) < len(OKX_SETTINGS):
            missing = [name for name in OKX_SETTINGS if name not in given]
            raise ValueError(
                f"{_and(missing)} {'is' if len(missing) == 1 else 'are'} not set"
                f" ({_and(given)} {'is' if len(given) == 1 else 'are'}): give all three OKX"
                " settings to take crypto, or none of them to sell for Telegram Stars only"
            )
        if self.webhook_url is None and self.render_external_url is not None:
            self.webhook_url = self.render_external_url  # Render: the service's own URL
        if self.webhook_url and not self.webhook_secret:
            source = (
                "WEBHOOK_URL is set"
                if self.webhook_url != self.render_external_url
                else "WEBHOOK_URL is taken from RENDER_EXTERNAL_URL (Render sets it)"
            )
            raise ValueError(f"WEBHOOK_SECRET is required when {source}")
        if self.merchant_webhook_urls and not self.merchant_webhook_secret:
            raise ValueError(
                "MERCHANT_WEBHOOK_SECRET is required when MERCHANT_WEBHOOK_URLS is set"
            )
        secret = self.merchant_webhook_secret
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET:
            raise ValueError("MERCHANT_WEBHOOK_SECRET must be at least 16 characters")
        self.payment_settings()  # the core's own range checks, named by variable
        if self.terms_text is not None:
            length = longest_terms(self.terms_text, self.terms_url)
            if length > MESSAGE_LIMIT:
                raise ValueError(
                    f"TERMS_TEXT is too long: /terms would be {length} characters and Telegram "
                    f"sends at most {MESSAGE_LIMIT}; shorten it by {length - MESSAGE_LIMIT} or "
                    "put the full terms at TERMS_URL"
                )
        if self.texts_dir is not None:
            try:
                self._languages = load_languages(self.texts_dir)
            except TextsError as exc:
                raise ValueError(str(exc)) from None
        return self

    def languages(self) -> Mapping[str, Language]:
        """The texts in force: the bundled catalogues with TEXTS_DIR's entries over them."""
        return self._languages if self._languages is not None else LANGUAGES

    def _okx_settings(self) -> list[tuple[str, SecretStr | None]]:
        values = (self.okx_api_key, self.okx_secret_key, self.okx_passphrase)
        return list(zip(OKX_SETTINGS, values, strict=True))

    @property
    def simulated(self) -> bool:
        """Test mode (OKX_MODE=simulated): the simulated exchange takes the crypto payments."""
        return self.okx_mode == "simulated"

    @property
    def okx_keys(self) -> tuple[str, str, str] | None:
        """OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE; None when none is set (the shop
        sells for Telegram Stars only). Validation refuses only some of them."""
        if self.okx_api_key is None or self.okx_secret_key is None or self.okx_passphrase is None:
            return None
        return (
            self.okx_api_key.get_secret_value(),
            self.okx_secret_key.get_secret_value(),
            self.okx_passphrase.get_secret_value(),
        )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "database_url" else value

    @property
    def public_base_url(self) -> str | None:
        """Where customers reach this service: PUBLIC_URL, else WEBHOOK_URL (the Telegram
        webhook is served under it), else unknown."""
        if self.public_url:
            return self.public_url
        if self.webhook_url:
            return self.webhook_url.removesuffix(WEBHOOK_PATH)
        return None

    @property
    def mini_app_url(self) -> str | None:
        """The Mini App the bot opens (menu button, /start): WEBAPP_URL, else ``/app`` on
        :attr:`public_base_url`; None when neither is known (the chat alone sells)."""
        if self.webapp_url:
            return self.webapp_url
        base = self.public_base_url
        return None if base is None else base + MINI_APP_PATH

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bot_api_base_url(self) -> str:
        return f"{self.telegram_api_url}/bot"

    @property
    def bot_file_base_url(self) -> str:
        return f"{self.telegram_api_url}/file/bot"

    def payment_settings(self) -> PaymentSettings:
        return PaymentSettings(
            invoice_ttl_minutes=self.invoice_ttl_minutes,
            monitor_hours=self.payment_monitor_hours,
            tolerance_percent=self.payment_tolerance_percent,
            offset_cap_percent=self.amount_offset_cap_percent,
            offset_cap_max_percent=max(
                self.amount_offset_cap_max_percent, self.amount_offset_cap_percent
            ),
            max_open_invoices=self.max_open_invoices,
            max_held_amounts=self.max_held_amounts,
            unpaid_amount_budget_percent=self.unpaid_amount_budget_percent,
            settle_on_state=self.settle_on_state,
            retention_days=self.retention_days,
            grace_days=self.grace_days,
        )


class _GivenSettings(Settings):
    """Settings from the mapping given to :func:`load_settings` only: not from the process
    environment or a ``.env`` file (a stray TELEGRAM_BOT_TOKEN or PORT must not leak in)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    def __repr_name__(self) -> str:
        return "Settings"


def load_settings(
    env: Mapping[str, str] | None = None, *, env_file: str | None = ".env"
) -> Settings:
    """Settings from ``env`` (default: the process environment) and ``env_file``.

    Raises ConfigError with one line naming the first bad variable (or every missing one, and,
    when reading the environment, where settings are read from), never its value.
    """
    try:
        if env is None:
            try:
                return Settings(_env_file=env_file)  # type: ignore[call-arg]
            except ValidationError as exc:
                problem = _first_problem(exc)
                if _missing(exc):
                    problem = f"{problem}: {WHERE_FROM}"
                raise ConfigError(problem) from None
        values: dict[str, Any] = {
            k.lower(): v
            for k, v in env.items()
            if k.lower() in Settings.model_fields and v.strip()  # empty means unset
        }
        return _GivenSettings(_env_file=None, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_first_problem(exc)) from None
    except ValueError as exc:  # PaymentSettings range checks name their variable already
        raise ConfigError(str(exc)) from None


def _missing(exc: ValidationError) -> list[str]:
    return [
        str(error["loc"][0]).upper()
        for error in exc.errors()
        if error.get("type") == "missing" and error.get("loc")
    ]


def _first_problem(exc: ValidationError) -> str:
    """Every missing setting in one line, else the first bad one."""
    if missing := _missing(exc):
        return f"{_and(missing)} {'is' if len(missing) == 1 else 'are'} not set"
    error = exc.errors()[0]
    where = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    name = where[0].upper() if where else ""
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    return f"{name}: {message}" if name else message


_SECRET_FIELDS = frozenset(
    name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
)
