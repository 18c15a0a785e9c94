"""Invoice QR codes: payload rules per chain and mode, scannable images, the off-loop renderer."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageFont

from bench import qr_render
from bot import qr
from bot.qr import QrMode, QrRenderer, qr_payload, render_invoice_png
from payments.catalog import load_catalog

MODES: tuple[QrMode, ...] = ("default", "uri", "address")
BTC_ADDR = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
EVM_ADDR = "0x742d35Cc6634C0532925a3b844Bc454e4438f44e"
TRON_ADDR = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"
SOL_ADDR = "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"

# chain -> (currency, address, amount, {mode: expected payload}); None means the bare address
TABLE: dict[str, tuple[str, str, str, dict[QrMode, str | None]]] = {
    "BTC-Bitcoin": (
        "BTC",
        BTC_ADDR,
        "0.00032177",
        {
            "default": f"bitcoin:{BTC_ADDR}?amount=0.00032177",
            "uri": f"bitcoin:{BTC_ADDR}?amount=0.00032177",
            "address": None,
        },
    ),
    "ETH-ERC20": (
        "ETH",
        EVM_ADDR,
        "0.01234567",
        {"default": None, "uri": f"ethereum:{EVM_ADDR}@1?value=12345670000000000", "address": None},
    ),
    "USDT-TRC20": ("USDT", TRON_ADDR, "29.0037", {}),
    "USDT-ERC20": ("USDT", EVM_ADDR, "29.0037", {}),
    "USDT-BSC": ("USDT", EVM_ADDR, "29.0037", {}),
    "USDT-Solana": ("USDT", SOL_ADDR, "29.0037", {}),
    "USDC-ERC20": ("USDC", EVM_ADDR, "29.0037", {}),
    "USDC-Solana": ("USDC", SOL_ADDR, "29.0037", {}),
    "SOL-Solana": (
        "SOL",
        SOL_ADDR,
        "0.1934567",
        {
            "default": f"solana:{SOL_ADDR}?amount=0.1934567",
            "uri": f"solana:{SOL_ADDR}?amount=0.1934567",
            "address": None,
        },
    ),
    "BNB-BSC": (
        "BNB",
        EVM_ADDR,
        "0.05",
        {
            "default": None,
            "uri": f"ethereum:{EVM_ADDR}@56?value=50000000000000000",
            "address": None,
        },
    ),
}
# chains outside the default catalogue that must stay bare addresses too
OTHER_CHAINS = [
    ("ETH", "ETH-Arbitrum One"),
    ("ETH", "ETH-Optimism"),
    ("ETH", "ETH-Base"),
    ("BNB", "BNB-ERC20"),
    ("USDT", "USDT-Polygon"),
    ("USDC", "USDC-BSC"),
    ("BTC", "BTC-Lightning"),
    ("SOL", "SOL-ERC20"),
    ("XRP", "XRP-Ripple"),
    ("TON", "TON-TON"),
]


def test_table_covers_every_default_chain() -> None:
    chains = {n.chain for coin in load_catalog().coins for n in coin.networks}
    assert chains == set(TABLE)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chain", sorted(TABLE))
def test_payload_table(chain: str, mode: QrMode) -> None:
    currency, address, amount, expected = TABLE[chain]
    payload = qr_payload(
        mode=mode, currency=currency, chain=chain, address=address, amount_text=amount
    )
    assert payload == (expected.get(mode) or address)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chain", ["BTC-Bitcoin", "SOL-Solana", "ETH-ERC20", "BNB-BSC"])
def test_a_tag_or_memo_always_means_the_bare_address(chain: str, mode: QrMode) -> None:
    currency, address, amount, _ = TABLE[chain]
    payload = qr_payload(
        mode=mode, currency=currency, chain=chain, address=address, amount_text=amount, tag="123"
    )
    assert payload == address


def _all_payloads() -> Iterator[tuple[str, str]]:
    combos = [(TABLE[c][0], c) for c in TABLE] + OTHER_CHAINS
    addresses = (BTC_ADDR, EVM_ADDR, TRON_ADDR, SOL_ADDR)
    amounts = ("1", "29.0037", "0.00000001", "0.123456789012345678901")
    for (currency, chain), mode, tag, address, amount in itertools.product(
        combos, MODES, (None, "77"), addresses, amounts
    ):
        yield (
            address,
            qr_payload(
                mode=mode,
                currency=currency,
                chain=chain,
                address=address,
                amount_text=amount,
                tag=tag,
            ),
        )


TOKEN_URI = re.compile(r"spl-token|transfer|address=|uint256|reference=|0x[0-9a-f]{40}.*0x", re.I)
URI = re.compile(r"(bitcoin|solana|ethereum):([^@?]+)(@(1|56))?\?(amount|value)=[0-9.]+")


def test_no_payload_is_ever_a_token_payment_uri() -> None:
    seen = list(_all_payloads())
    assert len(seen) > 1000
    for address, payload in seen:
        assert not TOKEN_URI.search(payload), payload
        if payload != address:  # a URI must pay the deposit address itself, nothing else
            match = URI.fullmatch(payload)
            assert match is not None, payload
            assert match[2] == address, payload


@pytest.mark.parametrize("currency", ["USDT", "USDC"])
@pytest.mark.parametrize("mode", MODES)
def test_tokens_get_the_bare_address_on_every_chain(currency: str, mode: QrMode) -> None:
    for suffix in ("TRC20", "ERC20", "BSC", "Solana", "Polygon", "Arbitrum One"):
        payload = qr_payload(
            mode=mode,
            currency=currency,
            chain=f"{currency}-{suffix}",
            address=EVM_ADDR,
            amount_text="10",
        )
        assert payload == EVM_ADDR


def test_wei_must_be_whole_or_the_address_is_used() -> None:
    amount = "0." + "1" * 19  # 19 decimals: not a whole number of wei
    args = {"currency": "ETH", "chain": "ETH-ERC20", "address": EVM_ADDR}
    assert qr_payload(mode="uri", amount_text=amount, **args) == EVM_ADDR
    zeros = "2." + "0" * 30  # 30 decimals but a whole number of wei; the text is not reformatted
    assert qr_payload(mode="uri", amount_text=zeros, **args).endswith("?value=2" + "0" * 18)
    big = "123456789012.123456789012345678"  # 30 significant digits: exact, no rounding
    assert qr_payload(mode="uri", amount_text=big, **args).endswith(
        "?value=123456789012123456789012345678"
    )


@pytest.mark.parametrize(
    "address", ["", " ", "bc1q abc", "bc1q\tabc", "abc\n", "bc1q?amount=1", "a&b", "x?"]
)
def test_bad_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        qr_payload(
            mode="default", currency="BTC", chain="BTC-Bitcoin", address=address, amount_text="1"
        )


@pytest.mark.parametrize("amount", ["", "1E-8", "1e-8", "-1", "0", "0.000", ".5", "1.", "1,5"])
def test_amounts_must_be_plain_positive_decimals(amount: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        qr_payload(
            mode="default",
            currency="BTC",
            chain="BTC-Bitcoin",
            address=BTC_ADDR,
            amount_text=amount,
        )


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode"):
        qr_payload(
            mode="bip21",  # type: ignore[arg-type]
            currency="BTC",
            chain="BTC-Bitcoin",
            address=BTC_ADDR,
            amount_text="1",
        )


@given(
    units=st.integers(min_value=1, max_value=21_000_000 * 10**8),
    places=st.integers(min_value=0, max_value=8),
    mode=st.sampled_from(MODES),
)
def test_btc_amount_round_trips(units: int, places: int, mode: QrMode) -> None:
    amount = Decimal(units).scaleb(-places)
    text = format(amount, "f")  # "0.00000001", never "1E-8"
    payload = qr_payload(
        mode=mode, currency="BTC", chain="BTC-Bitcoin", address=BTC_ADDR, amount_text=text
    )
    if mode == "address":
        assert payload == BTC_ADDR
        return
    parts = urlsplit(payload)
    assert (parts.scheme, parts.path) == ("bitcoin", BTC_ADDR)
    (sent,) = parse_qs(parts.query)["amount"]
    assert sent == text
    assert Decimal(sent) == amount


# --- images -----------------------------------------------------------------------------------

PAYLOADS = {
    "trc20-address": TRON_ADDR,
    "btc-bip21": f"bitcoin:{BTC_ADDR}?amount=0.00032177",
    "solana-pay": f"solana:{SOL_ADDR}?amount=0.1934567",
    "eip681": f"ethereum:{EVM_ADDR}@56?value=50000000000000000",
}
LINES = ["29.0037 USDT", "Tron (TRC20)"]


def _decode(image: Image.Image) -> list[str]:
    return [
        b.text for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode
    ]


def _telegram(image: Image.Image) -> Image.Image:
    """What Telegram does to a photo, roughly: downscale and JPEG re-encode."""
    small = image.convert("RGB").resize(
        (round(image.width * 0.6), round(image.height * 0.6)), Image.Resampling.BILINEAR
    )
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=70)
    return Image.open(io.BytesIO(out.getvalue()))


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_rendered_code_decodes_to_the_payload(name: str) -> None:
    payload = PAYLOADS[name]
    png = render_invoice_png(payload, LINES)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.mode in ("L", "1")
    assert image.width >= 300
    assert _decode(image) == [payload]
    assert _decode(_telegram(image)) == [payload]


def test_text_band_under_the_code() -> None:
    image = Image.open(io.BytesIO(render_invoice_png(TRON_ADDR, LINES)))
    assert image.height > image.width
    band = image.crop((0, image.width, image.width, image.height))
    assert sum(band.histogram()[:64]) > 100  # dark text pixels under the code
    without = Image.open(io.BytesIO(render_invoice_png(TRON_ADDR, [])))
    assert without.size == (image.width, image.width)


def _ink_columns(image: Image.Image, top: int) -> tuple[int, int]:
    band = image.crop((0, top, image.width, image.height)).point(lambda v: 255 if v < 128 else 0)
    box = band.getbbox()
    assert box is not None
    return box[0], box[2]


@pytest.mark.parametrize("line", ["W" * 400, "0.123456789012345678 USDT on a very long network"])
def test_long_lines_stay_inside_the_image(line: str) -> None:
    image = Image.open(io.BytesIO(render_invoice_png(TRON_ADDR, [line, line, line])))
    left, right = _ink_columns(image, image.width)
    assert left > 0 and right < image.width
    assert _decode(image) == [TRON_ADDR]


def test_more_than_three_lines_is_an_error() -> None:
    with pytest.raises(ValueError, match="lines"):
        render_invoice_png(TRON_ADDR, ["a", "b", "c", "d"])


def test_non_ascii_text_renders() -> None:
    png = render_invoice_png(TRON_ADDR, ["29 USDT", "Сеть: Tron · 网络 ✓"])
    assert _decode(Image.open(io.BytesIO(png))) == [TRON_ADDR]


# --- renderer ---------------------------------------------------------------------------------


@pytest.fixture
def renderer() -> Iterator[QrRenderer]:
    r = QrRenderer(cache_size=4)
    yield r
    r.close()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = qr.render_invoice_png

    def counting(payload: str, lines: Sequence[str]) -> bytes:
        calls.append(payload)
        return real(payload, lines)

    monkeypatch.setattr(qr, "render_invoice_png", counting)
    return calls


async def test_second_render_is_a_cache_hit(renderer: QrRenderer, counted: list[str]) -> None:
    first = await renderer.render(TRON_ADDR, LINES)
    second = await renderer.render(TRON_ADDR, list(LINES))
    assert first == second == render_invoice_png(TRON_ADDR, LINES)
    assert (renderer.misses, renderer.hits, len(counted)) == (1, 1, 1)
    await renderer.render(TRON_ADDR, ["other"])
    assert (renderer.misses, len(counted)) == (2, 2)


async def test_concurrent_renders_of_one_key_render_once(
    renderer: QrRenderer, counted: list[str]
) -> None:
    results = await asyncio.gather(*(renderer.render(TRON_ADDR, LINES) for _ in range(20)))
    assert len(set(results)) == 1
    assert (renderer.misses, renderer.hits, len(counted)) == (1, 19, 1)


async def test_cache_is_lru_and_bounded(renderer: QrRenderer, counted: list[str]) -> None:
    for n in range(5):  # cache_size=4: the first one is evicted
        await renderer.render(f"{TRON_ADDR}{n}", LINES)
    await renderer.render(f"{TRON_ADDR}4", LINES)
    assert len(counted) == 5
    await renderer.render(f"{TRON_ADDR}0", LINES)
    assert len(counted) == 6


async def test_a_cancelled_caller_does_not_cancel_the_shared_render(
    renderer: QrRenderer, counted: list[str]
) -> None:
    first = asyncio.create_task(renderer.render(TRON_ADDR, LINES))
    second = asyncio.create_task(renderer.render(TRON_ADDR, LINES))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second).startswith(b"\x89PNG")
    with pytest.raises(asyncio.CancelledError):
        await first
    await renderer.render(TRON_ADDR, LINES)
    assert len(counted) == 1


async def test_errors_reach_every_waiter_and_are_not_cached(renderer: QrRenderer) -> None:
    huge = "x" * 5000  # more than a QR code holds
    results = await asyncio.gather(
        renderer.render(huge, []), renderer.render(huge, []), return_exceptions=True
    )
    assert all(isinstance(r, Exception) for r in results)
    with pytest.raises(ValueError, match="version"):  # qrcode: too much data for a QR code
        await renderer.render(huge, [])
    assert renderer.misses == 2


async def test_event_loop_stays_responsive_while_rendering(
    renderer: QrRenderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = 0
    during: list[int] = []  # loop ticks that happened while each render was running
    real = qr.render_invoice_png

    def watched(payload: str, lines: Sequence[str]) -> bytes:
        start = ticks
        try:
            return real(payload, lines)
        finally:
            during.append(ticks - start)

    monkeypatch.setattr(qr, "render_invoice_png", watched)
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(renderer.render(f"{TRON_ADDR}{n}", LINES) for n in range(10)))
    done = True
    await task
    assert len(during) == 10
    assert sum(during) >= 3  # rendering on the loop itself would leave this at 0


def test_benchmark_runs_on_tiny_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    qr_render.run(2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["qr", "render", "ms/image", "png", "bytes"]
    rows = {line[:34].strip(): line[34:].split() for line in lines[1:]}
    assert len(rows) == 9
    assert int(rows["fast path render_invoice_png"][1]) > 0
    assert rows["qrcode matrix only (make)"][1] == "-"


def test_without_freetype_the_bitmap_font_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_freetype(size: float | None = None) -> ImageFont.ImageFont:
        if size is not None:
            raise ImportError("The _imagingft C module is not installed")
        return ImageFont.load_default_imagefont()

    monkeypatch.setattr(ImageFont, "load_default", no_freetype)
    monkeypatch.setattr(qr, "_fonts", threading.local())
    line = "29.0037 USDT · Сеть " + "W" * 200
    image = Image.open(io.BytesIO(render_invoice_png(TRON_ADDR, [line, "Tron (TRC20)"])))
    left, right = _ink_columns(image, image.width)
    assert left > 0 and right < image.width
    assert _decode(image) == [TRON_ADDR]
