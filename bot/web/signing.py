"""Signed, short-lived links to an invoice's QR image.

An ``<img>`` cannot send an Authorization header, so the JSON API hands out
``/api/payments/crypto/qr/{payment_id}.png?expires=<unix>&signature=<hex>`` instead: an
HMAC-SHA256 over the payment id and the expiry, keyed by a key derived from the bot token
(``HMAC(bot_token, "subsbot-qr-link")``), so no extra secret needs configuring and a new bot
token invalidates every link. Pure functions; the clock is the caller's.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

LIFETIME_S = 600  # a link works for 10 minutes
_KEY_LABEL = b"subsbot-qr-link"
_HEX_DIGEST_LEN = 64


def link_key(bot_token: str) -> bytes:
    """The signing key of QR links, derived from the bot token."""
    return hmac.new(bot_token.encode(), _KEY_LABEL, hashlib.sha256).digest()


def signature(key: bytes, payment_id: str, expires: int) -> str:
    message = f"{payment_id}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(key: bytes, payment_id: str, expires: int, given: str, *, now: float) -> bool:
    """The signature is this link's and it has not expired (constant-time comparison)."""
    if len(given) != _HEX_DIGEST_LEN or expires < now:
        return False
    expected = signature(key, payment_id, expires)
    return hmac.compare_digest(expected.encode(), given.lower().encode("ascii", "replace"))


def qr_path(payment_id: str) -> str:
    return f"/api/payments/crypto/qr/{payment_id}.png"


def qr_link(base_url: str, key: bytes, payment_id: str, *, now: float) -> str:
    """The signed URL of the QR image, valid for :data:`LIFETIME_S` from ``now``: on
    ``base_url``, or relative (``/api/...``) when it is empty."""
    expires = int(now) + LIFETIME_S
    query = urlencode({"expires": expires, "signature": signature(key, payment_id, expires)})
    return f"{base_url.rstrip('/')}{qr_path(payment_id)}?{query}"
