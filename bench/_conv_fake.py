"""The fake side of the conversation benchmark: the fake Bot API and fake OKX, and simulated
customers, all in a child process so the bot process's CPU time is the bot's own.

The customers react inside the fake's event loop (an observer on every answered request), so
nothing polls. A customer's script is a list of bursts; a burst is one or more actions sent
back to back; the next burst goes once every action of the last one has its reply. A reply is
the first sendMessage / sendPhoto / editMessage* request about the chat after its update; the
k-th reply after a burst belongs to its k-th action (per-chat order), and is checked against
the action's ``expect`` text. Latency: the reply request arriving at the fake, minus the time
the update was handed out (getUpdates answer or webhook POST).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from fakes.okx import FakeOkx
from fakes.telegram import FakeTelegram
from fakes.telegram_state import SentRequest, flat_buttons

REPLIES = {"sendMessage", "sendPhoto", "editMessageText", "editMessageCaption"}
REPLIES |= {"editMessageReplyMarkup"}


@dataclass(frozen=True)
class Action:
    kind: str  # "text" (send ``value``) or "press" (the first button whose label has ``value``)
    value: str
    step: str  # the name figures are reported under
    expect: str = ""  # the reply's text, caption or a button label must contain this


Script = list[list[Action]]


@dataclass
class _Customer:
    uid: int
    burst: int = -1
    pending: deque[tuple[Action, int]] = field(default_factory=deque)
    last: dict[str, Any] | None = None
    photos: int = 0
    done: bool = False


@dataclass
class Outcome:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # step -> seconds
    updates: int = 0
    replies: int = 0
    photos: int = 0
    finished: int = 0  # customers through their whole script
    out_of_order: int = 0  # replies not matching their action's ``expect``
    missing: int = 0  # actions without a reply at the deadline
    wall_s: float = 0.0  # first update handed out -> last reply
    error: str = ""  # the driver failed (a button not found ...)


class Driver:
    """Customers ``uids`` following ``script`` against ``tg`` (runs in tg's event loop)."""

    def __init__(self, tg: FakeTelegram, script: Script, uids: list[int], auto: bool) -> None:
        self.tg, self.script, self.auto = tg, script, auto
        self.customers = {uid: _Customer(uid) for uid in uids}
        self.outcome = Outcome()
        self._first: float | None = None
        self._last = 0.0
        self._idle: asyncio.Event | None = None
        self._outstanding = 0
        self._sequential: deque[int] = deque()
        tg.observers.append(self.observe)

    # --- reacting to the bot ------------------------------------------------------------------

    def observe(self, request: SentRequest, result: Any) -> None:
        if request.method not in REPLIES:
            return
        try:
            self._observe(request, result)
        except Exception as exc:  # a broken script: end the run now and say why
            self.outcome.error = repr(exc)
            if self._idle is not None:
                self._idle.set()

    def _observe(self, request: SentRequest, result: Any) -> None:
        customer = self.customers.get(_int(request.params.get("chat_id")))
        if customer is None or not customer.pending:
            return
        action, update_id = customer.pending.popleft()
        self._outstanding -= 1
        out = self.outcome
        out.replies += 1
        handed = self.tg.handed_out.get(update_id)
        if handed is not None:
            out.latencies.setdefault(action.step, []).append(request.ts - handed)
            self._first = handed if self._first is None else min(self._first, handed)
        self._last = max(self._last, request.ts)
        message = result if isinstance(result, dict) else {}
        seen = str(message.get("text") or message.get("caption") or "")
        seen += "\n".join(t for t, _ in flat_buttons(message.get("reply_markup")))
        if action.expect and action.expect not in seen:
            out.out_of_order += 1
        if request.method == "sendPhoto":
            customer.photos += 1
            out.photos += 1
        if flat_buttons(message.get("reply_markup")):
            customer.last = message  # the newest message with buttons: the one to press
        if not customer.pending:
            if customer.burst == len(self.script) - 1:
                customer.done = True
                out.finished += 1
                if self._sequential:
                    self._fire(self.customers[self._sequential.popleft()])
            elif self.auto:
                self._fire(customer)
        if self._idle is not None and self._outstanding == 0 and self._settled():
            self._idle.set()

    def _settled(self) -> bool:
        return not self.auto or all(c.done for c in self.customers.values())

    def _fire(self, customer: _Customer) -> None:
        customer.burst += 1
        for action in self.script[customer.burst]:
            with self.tg._lock:  # the update id send_text/press just used
                if action.kind == "text":
                    self.tg.send_text(customer.uid, action.value)
                else:
                    message_id, data = self._button(customer, action.value)
                    self.tg.press(customer.uid, message_id, data)
                update_id = self.tg._next_update_id - 1
            customer.pending.append((action, update_id))
            self._outstanding += 1
            self.outcome.updates += 1

    @staticmethod
    def _button(customer: _Customer, label: str) -> tuple[int, str]:
        message = customer.last or {}
        for text, data in flat_buttons(message.get("reply_markup")):
            if label in text and data is not None:
                return int(message["message_id"]), data
        raise RuntimeError(f"customer {customer.uid}: no button {label!r} in {message!r}")

    # --- the three ways customers arrive ------------------------------------------------------

    async def lockstep(self, burst: int, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Every customer sends burst ``burst`` at once; until every reply is in."""
        self.outcome = Outcome()
        self._first, self._last = None, 0.0
        self._idle = asyncio.Event()
        for customer in self.customers.values():
            self._fire(customer)
        return await self._finish(timeout)

    async def arrivals(self, interval_s: float | None, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """A customer starts every ``interval_s`` (None: when the previous one is done) and
        walks the whole script, each burst as soon as the last one is answered."""
        self._idle = asyncio.Event()
        uids = list(self.customers)
        if interval_s is None:
            self._sequential.extend(uids[1:])
            self._fire(self.customers[uids[0]])
        else:
            loop = asyncio.get_running_loop()
            for n, uid in enumerate(uids):
                loop.call_later(n * interval_s, self._fire, self.customers[uid])
        return await self._finish(timeout)

    async def _finish(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self._idle is not None
        with contextlib.suppress(TimeoutError):  # what is left counts as missing
            await asyncio.wait_for(self._idle.wait(), timeout)
        out = self.outcome
        out.missing = sum(len(c.pending) for c in self.customers.values())
        if self.auto:
            out.missing += sum(len(self.script) - 1 - c.burst for c in self.customers.values())
        out.wall_s = self._last - self._first if self._first is not None else 0.0
        return out.__dict__ | {"latencies": dict(out.latencies)}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def serve(conn: Connection, delay_ms: int) -> None:
    """The child process: start the fakes, send their addresses, then obey ``conn``:
    ("customers", script, uids, auto) / ("lockstep", burst, timeout) /
    ("arrivals", interval_s | None, timeout) / ("stop",)."""
    tg = FakeTelegram(delay_ms=delay_ms).start()
    okx = FakeOkx().start()
    driver: Driver | None = None
    try:
        conn.send(
            {
                "TELEGRAM_BOT_TOKEN": tg.token,
                "TELEGRAM_API_URL": tg.base_url.removesuffix("/bot"),
                "OKX_API_KEY": okx.api_key,
                "OKX_SECRET_KEY": okx.secret,
                "OKX_PASSPHRASE": okx.passphrase,
                "OKX_API_URL": okx.base_url,
            }
        )
        while True:
            command = conn.recv()
            if command[0] == "stop":
                break
            if command[0] == "customers":
                _, script, uids, auto = command
                for uid in uids:
                    tg.user(uid, first_name=f"User{uid}", language_code="en")
                if driver is not None:
                    tg.observers.remove(driver.observe)
                driver = Driver(tg, script, uids, auto)
                conn.send(True)
                continue
            assert driver is not None and tg._loop is not None
            if command[0] == "lockstep":
                run = driver.lockstep(command[1], command[2])
            else:
                run = driver.arrivals(command[1], command[2])
            started = time.perf_counter()
            result = asyncio.run_coroutine_threadsafe(run, tg._loop).result()
            conn.send(result | {"driver_s": time.perf_counter() - started})
    finally:
        tg.stop()
        okx.stop()


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
