"""The body of a webhook and its signature (pure functions, no I/O).

The body is compact UTF-8 JSON::

    {"id": "evt_...", "type": "invoice.paid", "created_at": "2026-11-26T15:04:05.123Z",
     "timestamp": 1795000000, "data": {...}}

``timestamp`` is the unix time (seconds) of THIS attempt; the signature covers the raw body, so
the timestamp is signed with it: ``X-Subsbot-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.
A receiver recomputes the HMAC over the bytes it received, compares in constant time, and
refuses a timestamp more than five minutes away from its clock (a replayed old delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "X-Subsbot-Signature"
TIMESTAMP_HEADER = "X-Subsbot-Timestamp"
EVENT_HEADER = "X-Subsbot-Event"
DELIVERY_HEADER = "X-Subsbot-Delivery"
PREFIX = "sha256="
TOLERANCE_S = 300


def build_body(
    *,
    public_id: str,
    type: str,
    created_at: str,
    timestamp: int,
    data: Mapping[str, Any],
) -> bytes:
    document = {
        "id": public_id,
        "type": type,
        "created_at": created_at,
        "timestamp": timestamp,
        "data": dict(data),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of the raw body with the secret."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def headers(
    secret: str, body: bytes, *, event_type: str, delivery_id: int, timestamp: int
) -> dict[str, str]:
    """Every header of one attempt (the signature over ``body``)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "subsbot",
        SIGNATURE_HEADER: sign(secret, body),
        TIMESTAMP_HEADER: str(timestamp),
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: str(delivery_id),
    }


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """True when ``header`` is the signature of ``body`` and the body's timestamp is within
    ``tolerance_s`` of ``now`` (unix seconds)."""
    if not header or not hmac.compare_digest(sign(secret, body), header.strip()):
        return False
    try:
        timestamp = json.loads(body)["timestamp"]
    except (ValueError, KeyError, TypeError):
        return False
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        return False
    return abs(now - timestamp) <= tolerance_s
