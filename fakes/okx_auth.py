"""OKX v5 request authentication, as the fake OKX checks it.

OK-ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)), where
requestPath includes the query string exactly as sent and OK-ACCESS-TIMESTAMP is ISO 8601 UTC with
milliseconds (``2020-12-08T09:08:57.715Z``), refused when more than 30 s off the server's clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

MAX_SKEW_MS = 30_000


def sign(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    prehash = f"{timestamp}{method.upper()}{request_path}{body}"
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def parse_timestamp(text: str) -> int | None:
    """OK-ACCESS-TIMESTAMP -> ms since the epoch (None when it is not ISO 8601 with a zone)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return int(parsed.timestamp() * 1000 + 0.5)


def check_request(
    headers: Mapping[str, str],
    method: str,
    request_path: str,
    body: str,
    *,
    api_key: str,
    secret: str,
    passphrase: str,
    now_ms: int,
) -> tuple[str, str] | None:
    """None when the request is authentic, else OKX's (code, msg) of the refusal."""
    key = headers.get("OK-ACCESS-KEY", "")
    given_passphrase = headers.get("OK-ACCESS-PASSPHRASE", "")
    signature = headers.get("OK-ACCESS-SIGN", "")
    timestamp = headers.get("OK-ACCESS-TIMESTAMP", "")
    required = (
        (key, "50103", "OK-ACCESS-KEY"),
        (given_passphrase, "50104", "OK-ACCESS-PASSPHRASE"),
        (signature, "50106", "OK-ACCESS-SIGN"),
        (timestamp, "50107", "OK-ACCESS-TIMESTAMP"),
    )
    for value, code, name in required:
        if not value:
            return code, f"Request header {name} can't be empty."
    ts_ms = parse_timestamp(timestamp)
    if ts_ms is None:
        return "50112", "Invalid OK-ACCESS-TIMESTAMP"
    if abs(ts_ms - now_ms) > MAX_SKEW_MS:
        return "50102", "Timestamp request expired"
    if not hmac.compare_digest(key, api_key):
        return "50111", "Invalid OK-ACCESS-KEY"
    if not hmac.compare_digest(given_passphrase, passphrase):
        return "50105", "Invalid OK-ACCESS-PASSPHRASE"
    expected = sign(secret, timestamp, method, request_path, body)
    if not hmac.compare_digest(signature, expected):
        return "50113", "Invalid Sign"
    return None
