"""Invoice QR codes: what the code says (``qr_payload``) and the photo itself (``QrRenderer``).

Payloads: BIP21 for BTC, Solana Pay (never ``spl-token``) for native SOL,
EIP-681 for native ETH/BNB only with QR_PAYLOAD=uri, and the bare address for everything else.
Token payment URIs are never produced: wallets have sent tokens to the token contract instead.

The image is built from the module matrix with one ``Image.frombytes`` + a nearest-neighbour
resize (not one rectangle per module). The mask pattern is fixed (``MASK``): qrcode's automatic
choice tries all eight masks and scores each in pure Python, about 80 % of a render, while any
mask is valid and every reader decodes it (the tests decode each image with zxing).
``QrRenderer`` still runs renders in a worker thread and caches the PNGs.

qrcode and Pillow (about 5 MB) are imported by the first render, in the worker thread, not
when the bot starts: a bot that has not shown an invoice photo yet does not hold them.
"""

from __future__ import annotations

import asyncio
import io
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Context, Decimal
from functools import partial
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from PIL import ImageFont

QrMode = Literal["default", "uri", "address"]
Font: TypeAlias = "ImageFont.FreeTypeFont | ImageFont.ImageFont"

_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_FORBIDDEN_IN_ADDRESS = re.compile(r"[\s?&]")
_EVM_CHAIN_IDS = {("ETH", "ETH-ERC20"): 1, ("BNB", "BNB-BSC"): 56}  # native coins only
_WEI = 18

BORDER = 4  # quiet zone, in modules
MASK = 0  # fixed mask pattern: no pure-Python scoring of all eight (see the module docstring)
MODULE_PX = 8
MIN_WIDTH = 300
MAX_LINES = 3
_INK = bytes.maketrans(b"\x00\x01", b"\xff\x00")  # matrix False/True -> white/black
_fonts = threading.local()


def qr_payload(
    *,
    mode: QrMode,
    currency: str,
    chain: str,
    address: str,
    amount_text: str,
    tag: str | None = None,
) -> str:
    """The text of the invoice QR code; ``amount_text`` is the exact decimal amount ("0.0003")."""
    if mode not in ("default", "uri", "address"):
        raise ValueError(f"unknown QR payload mode {mode!r}")
    if not address or _FORBIDDEN_IN_ADDRESS.search(address):
        raise ValueError(f"not a deposit address: {address!r}")
    if not _PLAIN_DECIMAL.fullmatch(amount_text) or Decimal(amount_text) <= 0:
        raise ValueError(f"amount must be a plain positive decimal, got {amount_text!r}")
    if mode == "address" or tag:
        return address
    if currency == "BTC" and chain == "BTC-Bitcoin" and _places(amount_text) <= 8:
        return f"bitcoin:{address}?amount={amount_text}"
    if currency == "SOL" and chain == "SOL-Solana" and _places(amount_text) <= 9:
        return f"solana:{address}?amount={amount_text}"
    chain_id = _EVM_CHAIN_IDS.get((currency, chain))
    if mode == "uri" and chain_id is not None:
        wei = Decimal(amount_text).scaleb(_WEI, Context(prec=len(amount_text) + _WEI))  # exact
        if wei == wei.to_integral_value():
            return f"ethereum:{address}@{chain_id}?value={int(wei)}"
    return address


def _places(amount_text: str) -> int:
    return len(amount_text.partition(".")[2])


def render_invoice_png(payload: str, lines: Sequence[str]) -> bytes:
    """A PNG (mode L): the QR code of ``payload`` with up to three text lines centred under it."""
    if len(lines) > MAX_LINES:
        raise ValueError(f"at most {MAX_LINES} text lines, got {len(lines)}")
    import qrcode
    from PIL import Image, ImageDraw

    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=BORDER, mask_pattern=MASK
    )
    code.add_data(payload)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    n = len(matrix)
    scale = max(MODULE_PX, math.ceil(MIN_WIDTH / n))
    side = n * scale
    pixels = b"".join(map(bytes, matrix)).translate(_INK)
    qr = Image.frombytes("L", (n, n), pixels).resize((side, side), Image.Resampling.NEAREST)

    margin = 2 * scale
    fitted = [
        _fit(text, side - 2 * margin, side // (11 if i == 0 else 17))
        for i, text in enumerate(lines)
    ]
    heights = [_line_height(font) for _, font in fitted]
    band = sum(heights) + margin if fitted else 0
    image = Image.new("L", (side, side + band), 255)
    image.paste(qr, (0, 0))
    draw = ImageDraw.Draw(image)
    y = side  # text starts below the quiet zone (4 white modules)
    for (text, font), height in zip(fitted, heights, strict=True):
        x = (side - draw.textlength(text, font=font)) / 2
        draw.text((x, y), text, font=font, fill=0)
        y += height
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _font(size: int) -> Font:
    """Pillow's embedded Aileron at ``size`` px (per thread); the bitmap font without FreeType."""
    from PIL import ImageFont

    cache: dict[int, Font] = _fonts.__dict__.setdefault("cache", {})
    if size not in cache:
        try:
            cache[size] = ImageFont.load_default(size=size)
        except (ImportError, OSError):
            cache[size] = ImageFont.load_default()
    return cache[size]


def _fit(text: str, width: int, size: int) -> tuple[str, Font]:
    """Shrink the font (down to 12 px) and then cut the text with '...' to fit ``width``."""
    from PIL import ImageFont

    font = _font(size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        text = text.encode("latin-1", "replace").decode("latin-1")  # the bitmap font's charset
    while font.getlength(text) > width and size > 12:
        size = max(12, int(size * 0.85))
        font = _font(size)
    full = font.getlength(text)
    if full > width:
        text = text[: max(0, int(len(text) * width / full))]
        while text and font.getlength(text + "...") > width:
            text = text[:-1]
        text += "..."
    return text, font


def _line_height(font: Font) -> int:
    return int(font.getbbox("Ag0")[3] * 1.3)


Key = tuple[str, tuple[str, ...]]


class QrRenderer:
    """Renders invoice photos off the event loop, with an LRU cache and one render per key.

    ``misses`` counts renders actually started; ``hits`` counts calls answered from the cache
    or by joining a render already in flight. Call ``close()`` when done (it shuts the worker
    thread down, waiting for a render in progress).
    """

    def __init__(self, *, cache_size: int = 256, workers: int = 1) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qr-render")
        self._cache_size = cache_size
        self._cache: OrderedDict[Key, bytes] = OrderedDict()
        self._inflight: dict[Key, asyncio.Future[bytes]] = {}
        self.hits = 0
        self.misses = 0

    async def render(self, payload: str, lines: Sequence[str]) -> bytes:
        key: Key = (payload, tuple(lines))
        png = self._cache.get(key)
        if png is not None:
            self._cache.move_to_end(key)
            self.hits += 1
            return png
        future = self._inflight.get(key)
        if future is None:
            self.misses += 1
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._executor, render_invoice_png, payload, key[1])
            self._inflight[key] = future
            future.add_done_callback(partial(self._finished, key))
        else:
            self.hits += 1
        # shield: one cancelled caller must not cancel the render the others are waiting for
        return await asyncio.shield(future)

    def _finished(self, key: Key, future: asyncio.Future[bytes]) -> None:
        self._inflight.pop(key, None)
        if future.cancelled() or future.exception() is not None:
            return  # not cached; the waiters get the error (and it is marked as retrieved)
        self._cache[key] = future.result()
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
