"""The webhook body and its signature (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json

from payments.delivery.webhooks import build_body, sign, verify
from payments.delivery.webhooks.signing import headers

SECRET = "merchant-secret-0123456789"
NOW = 1_795_000_000


def body(timestamp: int = NOW) -> bytes:
    return build_body(
        public_id="evt_0123",
        type="invoice.paid",
        created_at="2026-11-26T15:04:05.123Z",
        timestamp=timestamp,
        data={"invoice_id": "K7P2QX", "amount": "29.0007", "note": "café"},
    )


def test_the_body_is_compact_utf8_json_with_the_attempts_timestamp() -> None:
    raw = body()
    assert b" " not in raw.replace("café".encode(), b"")  # compact
    assert "café".encode() in raw  # UTF-8, not \u escapes
    assert json.loads(raw) == {
        "id": "evt_0123",
        "type": "invoice.paid",
        "created_at": "2026-11-26T15:04:05.123Z",
        "timestamp": NOW,
        "data": {"invoice_id": "K7P2QX", "amount": "29.0007", "note": "café"},
    }


def test_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    raw = body()
    expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert sign(SECRET, raw) == f"sha256={expected}"
    sent = headers(SECRET, raw, event_type="invoice.paid", delivery_id=42, timestamp=NOW)
    assert sent == {
        "Content-Type": "application/json",
        "User-Agent": "subsbot",
        "X-Subsbot-Signature": f"sha256={expected}",
        "X-Subsbot-Timestamp": str(NOW),
        "X-Subsbot-Event": "invoice.paid",
        "X-Subsbot-Delivery": "42",
    }
    assert SECRET not in json.dumps(sent)


def test_verify_round_trip_tamper_wrong_secret_and_old_timestamp() -> None:
    raw = body()
    signature = sign(SECRET, raw)
    assert verify(SECRET, raw, signature, now=NOW + 10)
    assert not verify(SECRET, raw.replace(b"29.0007", b"29.0008"), signature, now=NOW)
    assert not verify("another-secret-0123456789", raw, signature, now=NOW)
    assert not verify(SECRET, raw, None, now=NOW)
    assert not verify(SECRET, raw, signature.removeprefix("sha256="), now=NOW)
    assert verify(SECRET, raw, signature, now=NOW + 300)
    assert not verify(SECRET, raw, signature, now=NOW + 301)  # a replay 5 minutes later
    # the timestamp is inside the signed body: moving it breaks the signature
    assert not verify(SECRET, body(NOW + 600), signature, now=NOW + 600)
