"""``python -m bot demo``: a whole purchase, offline, in a few seconds.

The real bot (the same Application ``python -m bot run`` builds) runs against the fake Bot API
and the fake OKX of :mod:`fakes`, both served on 127.0.0.1, with SQLite in a temporary
directory. A customer, Alice, sends /start and presses Pro, USDT and Tron (TRC20); the invoice
photo is written to ``--image``; the exact amount is then paid to the exact address on the fake
OKX, and the bot's poller settles the invoice and tells Alice. Then Bob buys the same plan with
Telegram Stars (the demo's plans file prices Pro at 1500 Stars too): he presses Pro and
"Telegram Stars", the bot makes a 30-day subscription link, the fake Bot API plays Telegram's
side (pre-checkout, then the charge) and the bot credits him. The conversation is printed as it
happens. No token, key or network is needed, and nothing is left running.

``--simulated`` rehearses test mode instead (``OKX_MODE=simulated``): no fake OKX at all, the
bot's own simulated exchange; every screen Alice sees says TEST, and the admin pays her invoice
with ``/simulate_deposit <invoice>``, which the bot settles as a real payment.

The bot's HTTP server (the JSON API and the Mini App page) runs too, on a free loopback port,
and its address is printed first (``Mini App: http://127.0.0.1:PORT/app``); ``--keep`` leaves
everything up after the purchases, until Ctrl-C, to look at it. Outside Telegram the page only
says to open it from the bot (it needs the signed initData Telegram gives it).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from bot.check import quiet_logging
from bot.config import load_settings
from bot.jobs import Timings
from bot.serve import serving
from fakes.okx import FakeOkx
from fakes.settings import bot_env
from fakes.telegram import FakeTelegram
from fakes.telegram_state import ChatMessage
from payments.catalog import default_plans_path, load_catalog

T = TypeVar("T")

CUSTOMER_ID = 1001
CUSTOMER_NAME = "Alice"
STARS_CUSTOMER_ID = 1002
STARS_CUSTOMER_NAME = "Bob"
PRO_STARS = 1500
ADMIN_ID = 900
PLAN = "Pro"
COIN = "USDT"
CHAIN = "USDT-TRC20"
STEP_TIMEOUT_S = 20.0
TIMINGS = Timings(outbox=0.2, subscriptions=60, directory=3600, directory_retry=1, first_poll=0.2)
INDENT = " " * 7


class DemoFailed(Exception):
    """A step did not happen: the message is the one-line reason."""


def default_image() -> Path:
    """Where the invoice image goes without ``--image``: the temporary directory, writable even
    where the working directory is not (/app in the Docker image)."""
    return Path(tempfile.gettempdir()) / "subsbot-demo-invoice.png"


def run_demo(
    *,
    image: str,
    step_timeout: float = STEP_TIMEOUT_S,
    keep: bool = False,
    simulated: bool = False,
) -> int:
    """Run the demo; 0 when the subscription was activated, 1 (with one line on stderr) if not.
    ``keep``: then serve until interrupted (Ctrl-C: 130). ``simulated``: in test mode."""
    target = Path(image).expanduser().resolve()
    if not target.parent.is_dir():
        print(f"subsbot demo: --image: no directory {target.parent}", file=sys.stderr)
        return 2
    try:
        asyncio.run(demo(target, step_timeout=step_timeout, keep=keep, simulated=simulated))
    except DemoFailed as exc:
        print(f"subsbot demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, not a traceback: the demo is for a first look
        print(f"subsbot demo: stopped on {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def demo_env(tg: FakeTelegram, okx: FakeOkx | None, workdir: Path, port: int) -> dict[str, str]:
    """The bot's settings, all pointing at the fakes (the fakes' own test credentials); long
    polling, with the HTTP server on 127.0.0.1:``port``. ``okx`` None: test mode (no OKX)."""
    database_url = f"sqlite:///{workdir / 'demo.sqlite3'}"
    env = bot_env(
        tg,
        okx,
        database_url,
        admins=str(ADMIN_ID),
        PAYMENT_POLL_SECONDS="1",
        PLANS_FILE=str(demo_plans(workdir)),
        HOST="127.0.0.1",
        PORT=str(port),
    )
    if okx is None:
        env["OKX_MODE"] = "simulated"
    return env


def demo_plans(workdir: Path) -> Path:
    """The bundled plans, with Pro also sold for Telegram Stars."""
    text = default_plans_path().read_text(encoding="utf-8")
    marked = 'id = "pro"\n'
    if marked not in text:
        raise DemoFailed("the bundled plans have no Pro plan to sell for Stars")
    path = workdir / "plans.toml"
    path.write_text(text.replace(marked, f"{marked}stars = {PRO_STARS}\n", 1), encoding="utf-8")
    return path


def loopback_socket() -> socket.socket:
    """A listening socket on a free 127.0.0.1 port, for the bot's HTTP server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def demo(
    image: Path,
    *,
    step_timeout: float = STEP_TIMEOUT_S,
    keep: bool = False,
    simulated: bool = False,
) -> None:
    network = next(
        n.label
        for c in load_catalog().coins
        if c.symbol == COIN
        for n in c.networks
        if n.chain == CHAIN
    )
    say(f"subsbot demo: {CUSTOMER_NAME} buys {PLAN} with {COIN} on {network}; then")
    say(f"{STARS_CUSTOMER_NAME} buys {PLAN} with Telegram Stars.")
    if simulated:
        say("Test mode (OKX_MODE=simulated): the real bot runs against a fake Telegram server on")
        say("127.0.0.1 and its own simulated exchange, with SQLite in a temporary directory; the")
        say("admin pays the invoice with /simulate_deposit.")
    else:
        say("The real bot runs against fake Telegram and OKX servers on 127.0.0.1, with SQLite")
        say("in a temporary directory: no token, keys or network needed.")
    say("")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="subsbot-demo-")))
        stack.enter_context(quiet_logging())
        tg = stack.enter_context(FakeTelegram())
        okx = None if simulated else stack.enter_context(FakeOkx())
        sock = loopback_socket()
        stack.callback(sock.close)  # serving() closes it too; closing twice is harmless
        port = int(sock.getsockname()[1])
        settings = load_settings(demo_env(tg, okx, workdir, port))
        async with serving(settings, timings=TIMINGS, sock=sock, poll_timeout=1) as served:
            say(f"Mini App: {served.base_url}/app")
            say("")
            chat = Chat(tg, CUSTOMER_ID, step_timeout)
            tg.user(CUSTOMER_ID, first_name=CUSTOMER_NAME, language_code="en")
            pay: Payer = _okx_payer(okx) if okx is not None else _admin_payer(tg, step_timeout)
            await purchase(chat, pay, network, image)
            say("")
            tg.user(STARS_CUSTOMER_ID, first_name=STARS_CUSTOMER_NAME, language_code="en")
            await stars_purchase(Chat(tg, STARS_CUSTOMER_ID, step_timeout), tg)
            if keep:
                say("")
                say(f"Still serving (Mini App: {served.base_url}/app); Ctrl-C stops.")
                await asyncio.Event().wait()


Payer = Callable[[ChatMessage], Awaitable[None]]  # pays the invoice of this photo


def _okx_payer(okx: FakeOkx) -> Payer:
    async def pay(invoice: ChatMessage) -> None:
        amount = caption_value(invoice, "Send exactly: ")
        address = caption_value(invoice, "Address: ")
        okx.add_deposit(COIN, CHAIN, amount, to=address)
        say(f"okx  : deposit {amount} {COIN} on {CHAIN} to {address} seen (successful)")

    return pay


def _admin_payer(tg: FakeTelegram, timeout: float) -> Payer:
    """Test mode: the admin simulates the deposit in their own chat with the bot."""
    tg.user(ADMIN_ID, first_name="Admin", language_code="en")
    admin = Chat(tg, ADMIN_ID, timeout, speaker="admin")

    async def pay(invoice: ChatMessage) -> None:
        admin.send(f"/simulate_deposit {caption_value(invoice, 'Invoice ')}")
        await admin.expect("simulated a deposit", "the admin's simulated deposit")

    return pay


async def purchase(chat: Chat, pay: Payer, network: str, image: Path) -> None:
    chat.send("/start")
    await chat.expect("Welcome", "the welcome message")
    chat.press(PLAN)
    await chat.expect("Which coin", "the coin choice")
    chat.press(COIN)
    await chat.expect("Which network", "the network choice")
    chat.press(network)
    invoice = await chat.expect("Send exactly", "the invoice photo")
    if invoice.photo is None:
        raise DemoFailed("the invoice came without its QR code photo")
    try:
        await asyncio.to_thread(image.write_bytes, invoice.photo)
    except OSError as exc:
        raise DemoFailed(f"cannot write the invoice image to {image} ({exc.strerror})") from None
    say(f"Invoice image written to {image}")
    await pay(invoice)
    await chat.expect("Payment received", "the activation message (the deposit poll)")


async def stars_purchase(chat: Chat, tg: FakeTelegram) -> None:
    """Pro for Stars: the subscription link, paid on the fake Bot API, credited by the bot."""
    chat.send("/start")
    await chat.expect("Welcome", "the welcome message")
    chat.press(PLAN)
    await chat.expect("Which coin", "the coin choice")
    chat.press("Telegram Stars")
    offer = await chat.expect("every 30 days", "the Stars subscription offer")
    links = [str(b["url"]) for row in _keyboard(offer) for b in row if b.get("url")]
    if not links:
        raise DemoFailed("the Stars offer came without its pay link")
    say(f"you  > [Pay] opens {links[0]}")
    payment = tg.pay(chat.user_id, links[0])
    await wait_for(payment.done.is_set, chat.timeout, "Telegram's pre-checkout and charge")
    if payment.outcome != "paid":
        raise DemoFailed(f"the Stars payment did not go through: {payment.outcome}")
    say(f"tg   : {payment.total_amount} Stars charged ({payment.charge_id})")
    await chat.expect("Payment received", "the bot's receipt for the Stars")


class Chat:
    """The customer's side of the private chat: sends, presses, and prints every new or edited
    bot message once (edits that arrive later are printed again, marked as edits)."""

    def __init__(
        self, tg: FakeTelegram, user_id: int, timeout: float, *, speaker: str = "you"
    ) -> None:
        self.tg = tg
        self.user_id = user_id
        self.timeout = timeout
        self.speaker = f"{speaker:<5}>"  # "you  >", "admin>"
        self.shown: dict[int, ChatMessage] = {}  # each message as last printed

    def send(self, text: str) -> None:
        say(f"{self.speaker} {text}")
        self.tg.send_text(self.user_id, text)

    def press(self, label: str) -> None:
        for message in reversed(self.tg.bot_messages(self.user_id)):
            for row in _keyboard(message):
                for button in row:
                    text, data = str(button.get("text", "")), button.get("callback_data")
                    if label in text and isinstance(data, str):
                        say(f"{self.speaker} [{text}]")
                        self.tg.press(self.user_id, message, data)
                        return
        raise DemoFailed(f"no button {label!r} in the chat")

    async def expect(self, needle: str, what: str) -> ChatMessage:
        """Print what the bot sends or edits until a message containing ``needle`` appears."""
        return await wait_for(lambda: self._news(needle), self.timeout, what)

    def _news(self, needle: str) -> ChatMessage | None:
        for message in self.tg.bot_messages(self.user_id):
            before = self.shown.get(message.message_id)
            if message.deleted or (before is not None and before.edits >= message.edits):
                continue
            self.shown[message.message_id] = message
            for line in render(message, before=before):
                say(line)
            if needle in message.plain:
                return message
        return None


async def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,  # noqa: ASYNC109 (polls a predicate; not an I/O timeout)
    what: str,
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise DemoFailed(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def render(message: ChatMessage, *, before: ChatMessage | None = None) -> list[str]:
    """``bot  < text`` (continuation lines indented), ``[photo]`` for a photo, buttons as
    ``[Label] [Label]``, one keyboard row per line. An edit (``before``: the message as printed
    last time) shows only the lines that are new, and says when the buttons went away."""
    lines = message.plain.splitlines() or [""]
    if before is not None:
        old = set(before.plain.splitlines())
        lines = [line for line in lines if line not in old] or ["(same text)"]
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
    first = lines[0]
    if message.photo is not None:
        first = f"[photo] {first}"
    if before is not None:
        first = f"(edited) {first}"
    out = [f"bot  < {first}"] + [f"{INDENT}{line}".rstrip() for line in lines[1:]]
    keyboard = _keyboard(message)
    for row in keyboard:
        out.append(INDENT + " ".join(f"[{b.get('text', '')}]" for b in row))
    if before is not None and not keyboard and _keyboard(before):
        out.append(f"{INDENT}(no buttons any more)")
    return out


def caption_value(message: ChatMessage, label: str) -> str:
    """The word after ``label`` on its line, e.g. the amount after "Send exactly: "."""
    for line in message.plain.splitlines():
        if line.startswith(label):
            return line.removeprefix(label).split(" ")[0]
    raise DemoFailed(f"the invoice has no {label.strip(': ')!r} line")


def _keyboard(message: ChatMessage) -> list[list[dict[str, Any]]]:
    rows = (message.reply_markup or {}).get("inline_keyboard") or []
    return [list(row) for row in rows]


def say(line: str) -> None:
    print(line, flush=True)
