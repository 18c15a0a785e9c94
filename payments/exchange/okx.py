"""OKX v5 over ``ccxt.async_support.okx``: the :class:`~payments.exchange.base.Exchange` protocol.

Only ccxt's raw (implicit) endpoint methods are used, so every amount stays OKX's string and is
parsed with ``Decimal`` here; ccxt's unified methods turn amounts into floats and drop data
(non-selected deposit addresses, states 11/13/14/17, ``minDep``). Markets are never loaded.

Errors: every method raises only :class:`payments.errors.ExchangeError` subclasses, and no
message contains the secret, the passphrase or the API key (ccxt's DEBUG log of request headers,
which includes the passphrase, goes through a redacting logger).

Time: requests are signed with OKX's time as last measured by :meth:`OkxExchange.server_time_ms`
(local clock + offset). A 50102 "timestamp expired" answer triggers one re-measurement and one
retry; if OKX still refuses, it is reported as :class:`ExchangeUnavailable` (a clock problem,
not a credentials problem: the admins should fix the host's clock, not the key).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from payments.clock import Clock, SystemClock, offset_from
from payments.errors import (
    ExchangeAuthError,
    ExchangeDataError,
    ExchangeError,
    ExchangeRateLimited,
    ExchangeUnavailable,
    UnsafeApiKey,
)
from payments.exchange.base import ChainInfo, DepositRecord, KeyInfo, PoolAddress, Ticker
from payments.exchange.okx_parse import (
    envelope_rows,
    parse_address,
    parse_chain,
    parse_deposit,
    parse_integer,
    parse_key_info,
    parse_lenient,
    parse_ticker,
)

log = logging.getLogger(__name__)
_CCXT_LOG = logging.getLogger(f"{__name__}.ccxt")

DEFAULT_BASE_URL = "https://www.okx.com"
HISTORY_MAX_LIMIT = 100
# ccxt's request costs are per rateLimit (OKX: 110 ms), so any one second carries at most
# 1000/110 cost units: 5.5 deposit-history or address requests (OKX allows 6/s), 2 account/config
# (OKX: 5 per 2 s). OKX counts per endpoint; ccxt's budget is shared, so it is stricter.
ROLLING_WINDOW_MS = 1000
DANGEROUS_PERMISSIONS = ("withdraw", "trade")
KNOWN_PERMISSIONS = frozenset({"read_only", *DANGEROUS_PERMISSIONS})
_MAX_MESSAGE = 300

# --- API key check --------------------------------------------------------------------------------


def check_api_key(info: KeyInfo, *, allow_unsafe: bool) -> list[str]:
    """Refuse a key that can move money unless allowed; return warnings for the admins / log."""
    warnings: list[str] = []
    dangerous = [p for p in DANGEROUS_PERMISSIONS if p in info.permissions]
    if dangerous:
        names = " and ".join(f'"{p}"' for p in dangerous)
        if not allow_unsafe:
            raise UnsafeApiKey(
                f"The OKX API key has the {names} permission: subsbot needs a read-only key. "
                "Create a key with only the Read permission, or set ALLOW_UNSAFE_API_KEY=true "
                "to accept the risk (not recommended)."
            )
        warnings.append(
            f"The OKX API key has the {names} permission (accepted because "
            "ALLOW_UNSAFE_API_KEY is set); a read-only key is safer."
        )
    unknown = sorted(info.permissions - KNOWN_PERMISSIONS)
    if unknown:
        warnings.append(f"The OKX API key has unknown permission(s): {', '.join(unknown)}.")
    if not info.ip_whitelist.strip():
        warnings.append(
            "The OKX API key is not bound to any IP address (no IP whitelist): anyone who "
            "obtains it can use it. Bind it to this server's IP in the OKX API settings."
        )
    return warnings


# --- errors and secrets ---------------------------------------------------------------------------

_CODE = re.compile(r'"code"\s*:\s*"(\d+)"')
_MSG = re.compile(r'"msg"\s*:\s*"([^"]{0,200})"')
_REGION_WORDS = re.compile(r"restrict|region", re.IGNORECASE)
_FORBIDDEN = re.compile(r"\b403\b")
REGION_CODE = "51155"
REGION_RULE = (
    "OKX refuses requests from this server's region ({detail}): OKX does not serve some"
    " countries; run the bot in a region OKX serves (e.g. Singapore or Frankfurt), or set"
    " OKX_API_URL to your OKX region's site"
)
_SIGN_HEADER = re.compile(r"('OK-ACCESS-SIGN': )'[^']*'")


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def map_ccxt_error(exc: Exception, secrets: Sequence[str] = ()) -> ExchangeError:
    """A ccxt (or any) exception as the payments error a caller can act on."""
    from ccxt.base import errors as ccxt_errors  # already imported once ccxt raised

    text = redact(str(exc), secrets)
    code, msg = _CODE.search(text), _MSG.search(text)
    if code is not None:
        detail = f"OKX code {code.group(1)}: {msg.group(1) if msg else ''}".rstrip(": ")
    else:
        detail = f"{type(exc).__name__}: {text[:_MAX_MESSAGE]}"
    region = code.group(1) == REGION_CODE if code is not None else False
    if region or (_FORBIDDEN.search(text) and _REGION_WORDS.search(text)):
        return ExchangeAuthError(REGION_RULE.format(detail=detail))
    if isinstance(exc, ccxt_errors.RateLimitExceeded | ccxt_errors.DDoSProtection):
        return ExchangeRateLimited(f"OKX rate limit, slowing down ({detail})")
    if isinstance(exc, ccxt_errors.InvalidNonce):
        return ExchangeUnavailable(
            f"OKX refused the request time ({detail}): this host's clock is more than 30 s "
            "away from OKX's; fix the system clock (NTP)"
        )
    if isinstance(exc, ccxt_errors.NetworkError):
        return ExchangeUnavailable(f"OKX is unavailable ({detail})")
    if isinstance(exc, ccxt_errors.AuthenticationError):
        return ExchangeAuthError(
            f"OKX refused the API key ({detail}): check OKX_API_KEY, OKX_SECRET_KEY, "
            "OKX_PASSPHRASE and the key's IP whitelist"
        )
    if isinstance(exc, ccxt_errors.BadResponse):
        return ExchangeDataError(f"OKX answered something unreadable ({detail})")
    if isinstance(exc, ccxt_errors.OperationFailed):
        return ExchangeUnavailable(f"OKX request failed ({detail})")
    return ExchangeError(f"OKX error ({detail})")


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """ccxt's logger: its DEBUG lines print the request headers, passphrase included."""

    def __init__(self, logger: logging.Logger, secrets: Sequence[str]) -> None:
        super().__init__(logger, {})
        self._secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        text = _SIGN_HEADER.sub(r"\1'***'", text)
        self.logger.log(level, "%s", redact(text, self._secrets), **kwargs)


@functools.cache
def _client_class() -> Any:
    """ccxt's okx, signing with the time OkxExchange gives it (OKX's time, not the host's).
    Imported when the first exchange is made, and without ccxt's other exchanges (see
    :mod:`payments.exchange.ccxt_loader`): the whole of ccxt is about 0.7 s and 90 MB."""
    from payments.exchange.ccxt_loader import okx_class

    class _SubsbotOkx(okx_class()):  # type: ignore[misc]
        time_source: Callable[[], int] | None = None

        def nonce(self) -> int:
            return self.time_source() if self.time_source is not None else int(super().nonce())

    return _SubsbotOkx


# --- the exchange ---------------------------------------------------------------------------------


class OkxExchange:
    """The :class:`~payments.exchange.base.Exchange` protocol over ccxt's OKX client."""

    def __init__(
        self,
        api_key: str,
        secret: str,
        passphrase: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_ms: int = 10_000,
        clock: Clock | None = None,
        throttle: bool = True,
    ) -> None:
        """``throttle``: ccxt's own pacing under OKX's limits (about 5.5 requests/s on the
        asset endpoints), counted over a rolling one-second window: a burst (the start-up
        checks) goes out at once up to that second's budget, instead of one request every
        0.18 s (ccxt's default leaky bucket). Only tests against the local fake turn it off."""
        self._secrets = tuple(s for s in (secret, passphrase, api_key) if s)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._offset_ms = 0
        rest_url = base_url.rstrip("/")
        client = _client_class()(
            {
                "apiKey": api_key,
                "secret": secret,
                "password": passphrase,
                "enableRateLimit": throttle,
                "rateLimiterAlgorithm": "rollingWindow",
                "rollingWindowSize": ROLLING_WINDOW_MS,
                "timeout": timeout_ms,
                "logger": _RedactingLogger(_CCXT_LOG, self._secrets),
                "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}},
            }
        )
        client.urls["api"]["rest"] = rest_url
        client.time_source = self.okx_now_ms
        if rest_url.startswith("http://"):
            client.timeout_on_exit = 0  # ccxt waits 250 ms on close for TLS; plain HTTP needs none
        self._client = client

    @property
    def time_offset_ms(self) -> int:
        """OKX's clock minus the local clock, as last measured (0 until measured)."""
        return self._offset_ms

    def okx_now_ms(self) -> int:
        """The local clock corrected by the measured offset: what requests are signed with."""
        return self._clock.now_ms() + self._offset_ms

    async def __aenter__(self) -> OkxExchange:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.close()

    async def _request(self, endpoint: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One raw ccxt call; ccxt errors mapped; a 50102 re-measures OKX time and retries once."""
        from ccxt.base.errors import InvalidNonce

        for attempt in (1, 2):
            try:
                response = await getattr(self._client, endpoint)(dict(params))
            except InvalidNonce as exc:
                if attempt == 1:
                    log.warning("OKX refused the request time; re-measuring OKX's clock")
                    await self.server_time_ms()
                    continue
                raise map_ccxt_error(exc, self._secrets) from None
            except Exception as exc:
                raise map_ccxt_error(exc, self._secrets) from None
            return envelope_rows(response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def server_time_ms(self) -> int:
        sent = self._clock.now_ms()
        rows = await self._request("publicGetPublicTime", {})
        received = self._clock.now_ms()
        if not rows:
            raise ExchangeDataError("OKX public/time answered no rows")
        server = parse_integer(rows[0], "ts")
        self._offset_ms = offset_from(server, sent, received, self._offset_ms)
        return server

    async def fetch_tickers(self, currencies: Sequence[str]) -> dict[str, Ticker]:
        """COIN-USDT tickers; a coin with no (usable) ticker is left out of the result."""
        wanted = {f"{c}-USDT" for c in currencies if c != "USDT"}
        if not wanted:
            return {}
        rows = await self._request("publicGetMarketTickers", {"instType": "SPOT"})
        mine = [row for row in rows if row.get("instId") in wanted]
        return {t.currency: t for t in parse_lenient(mine, parse_ticker, "ticker")}

    async def fetch_chains(self, currencies: Sequence[str]) -> list[ChainInfo]:
        wanted = sorted(set(currencies))
        if not wanted:
            return []
        rows = await self._request("privateGetAssetCurrencies", {"ccy": ",".join(wanted)})
        mine = [row for row in rows if row.get("ccy") in wanted]
        return parse_lenient(mine, parse_chain, "currency")

    async def fetch_deposit_addresses(self, currency: str) -> list[PoolAddress]:
        rows = await self._request("privateGetAssetDepositAddress", {"ccy": currency})
        mine = [row for row in rows if row.get("ccy") == currency]
        return parse_lenient(mine, parse_address, "deposit address")

    async def fetch_deposit_history(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = HISTORY_MAX_LIMIT,
        dep_id: str | None = None,
        tx_id: str | None = None,
        currency: str | None = None,
    ) -> list[DepositRecord]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: dict[str, Any] = {"limit": str(min(limit, HISTORY_MAX_LIMIT))}
        optional = {"after": after, "before": before, "depId": dep_id, "txId": tx_id}
        params.update({k: str(v) for k, v in optional.items() if v is not None})
        if currency is not None:
            params["ccy"] = currency
        rows = await self._request("privateGetAssetDepositHistory", params)
        records = []
        for row in rows:
            try:
                records.append(parse_deposit(row))
            except ExchangeDataError as exc:
                dep = row.get("depId")
                raise ExchangeDataError(f"OKX deposit {dep!r} is malformed: {exc}") from None
        return records

    async def fetch_key_info(self) -> KeyInfo:
        rows = await self._request("privateGetAccountConfig", {})
        if not rows:
            raise ExchangeDataError("OKX account/config answered no rows")
        return parse_key_info(rows[0])
