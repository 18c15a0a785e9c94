"""What goes wrong during a soak: faults injected into the fakes, and SIGKILL crashes of the bot.

* Faults (:class:`Faults`): OKX answers 50011 (HTTP 429), HTTP 500 or hangs past the client's
  time-out on a share of requests; Telegram answers 429 (retry_after 1), 500 or hangs past PTB's
  time-out on a share of Bot API calls (never getUpdates / setWebhook); the merchant's backend
  (:class:`FlakyReceiver`) answers 500 to a share of webhook deliveries.
* Crashes (:class:`Crasher`): SIGKILL at a random moment, "mid-poll" (the next deposit-history
  request hangs and the bot is killed while the fake holds it) and "mid-send" (killed by the fake
  Telegram the moment an activation message has been delivered, before the bot gets the answer,
  so the outbox does not know it was sent), then started again with the same environment.
* Pauses (:class:`Pauser`, replicas on PostgreSQL): the process holding the jobs lease is
  stopped with SIGSTOP in the middle of an outside call its singleton jobs make: an outbox send
  (the fake Telegram holds a notification's sendMessage), a merchant-webhook run (the receiver
  holds a POST) or a chat-access run (the fake Telegram holds a banChatMember or
  createChatInviteLink). It stays stopped until its lease has lapsed and another replica has
  taken over, and OKX time has moved past the claims it held; then the held call is let through
  and the process resumes (SIGCONT) believing it still runs the jobs.
* Unbans failing after bans (``FakeTelegram.fail_unbans_after_bans``): a share of the
  unbanChatMember calls that follow a successful ban of the same user fail (500 or a time-out),
  so a kick leaves the user banned; :class:`Intruder` makes kicks happen (a customer who has not
  paid yet joins through another customer's invite link, is removed, and pays later).

Every send in flight when a process is killed or paused is recorded (``in_flight``): a second
copy of that message is no violation (the bot cannot know Telegram delivered the first). So are
the sends the fake reads after the kill or pause, before anyone else could send (the process
had written them; the socket still held them), and those answered after the bot's read
time-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web

from bot.texts import CATALOGUE, DEFAULT_LANGUAGE
from fakes.okx import FakeOkx
from fakes.receiver import Received, WebhookReceiver
from fakes.telegram import FakeTelegram
from fakes.telegram_state import SentRequest
from tests.soak.invariants_delivery import notification_pattern

MESSAGES = CATALOGUE[DEFAULT_LANGUAGE]

HISTORY = "/api/v5/asset/deposit-history"
OKX_KINDS = ("rate_limit", "server_error", "timeout")
TELEGRAM_KINDS = ("429", "500", "timeout")
OKX_HANG_S = 11.0  # longer than the bot's 10 s OKX time-out: a real time-out
TELEGRAM_HANG_S = 6.0  # longer than PTB's 5 s read time-out
# what the activation message starts with ("✅ Payment received for invoice ")
ACTIVATION = MESSAGES["invoice_paid"].split("{invoice}")[0]


class ShiftedClock:
    """Real time plus an offset that only grows: the fake OKX's clock. The bot synchronises its
    own OKX clock to it at every poll (payments/clock.py), so moving it moves the bot's notion of
    OKX time, as a long wait would, without waiting."""

    def __init__(self) -> None:
        self._offset_ms = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self._offset_ms

    def advance_to(self, target_ms: int) -> int:
        """Move the clock forward to ``target_ms`` (never back); returns the offset now."""
        with self._lock:
            self._offset_ms = max(self._offset_ms, target_ms - time.time_ns() // 1_000_000)
            return self._offset_ms

    @property
    def offset_ms(self) -> int:
        return self._offset_ms


@dataclass
class ReceiverHold:
    taken: threading.Event
    released: threading.Event

    def release(self) -> None:
        self.released.set()


class FlakyReceiver(WebhookReceiver):
    """The merchant's backend answering 500 to a share of deliveries (every request recorded)."""

    def __init__(self) -> None:
        super().__init__()
        self._rate = 0.0
        self._random = random.Random(0)
        self.failed = 0
        self._holds: list[ReceiverHold] = []

    def fail_rate(self, rate: float, seed: int = 0) -> None:
        with self._lock:
            self._rate, self._random = rate, random.Random(seed)

    def hold_next(self) -> ReceiverHold:
        """The next delivery waits (unanswered) until the returned hold is released."""
        hold = ReceiverHold(threading.Event(), threading.Event())
        with self._lock:
            self._holds.append(hold)
        return hold

    def drop_hold(self, hold: ReceiverHold) -> None:
        with self._lock:
            if hold in self._holds:
                self._holds.remove(hold)
        hold.release()

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            hold = self._holds.pop(0) if self._holds else None
        if hold is not None:
            hold.taken.set()
            assert self._stopping is not None
            while not hold.released.is_set() and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):  # stop() ends the wait at once
                    await asyncio.wait_for(self._stopping.wait(), 0.01)
        with self._lock:
            fail = self._rate > 0 and self._random.random() < self._rate
            self.failed += int(fail)
        if not fail:
            return await super().dispatch(request)
        body = await request.read()
        received = Received(request.path, request.query_string, dict(request.headers), body, 500)
        with self._lock:
            self._received.append(received)
        return web.Response(status=500, text="no")


@dataclass
class Faults:
    tg: FakeTelegram
    okx: FakeOkx
    receiver: FlakyReceiver
    rate: float
    seed: int

    def start(self) -> None:
        if self.rate <= 0:
            return
        self.okx.hang_s = OKX_HANG_S
        self.okx.fail_rate(self.rate, OKX_KINDS, seed=self.seed)
        self.tg.fail_rate(self.rate, TELEGRAM_KINDS, seed=self.seed, hang_s=TELEGRAM_HANG_S)
        self.receiver.fail_rate(self.rate, seed=self.seed)

    def stop(self) -> None:
        self.okx.fail_rate(0)
        self.tg.fail_rate(0)  # not clear_faults(): that would unblock the customers who blocked
        self.receiver.fail_rate(0)

    def counts(self) -> dict[str, int]:
        found = {f"okx:{k}": n for k, n in sorted(self.okx.faults_injected.items())}
        found |= {f"telegram:{k}": n for k, n in sorted(self.tg.faults_injected.items())}
        found["webhook:500"] = self.receiver.failed
        return found


Kill = Callable[[], Awaitable[int | None]]  # SIGKILL the target process; returns its pid


@dataclass
class Crasher:
    """``count`` crashes, one every few seconds, cycling mid-poll, mid-send and random.

    ``target`` names the pid to kill now (the replica holding the jobs lease, or the only one);
    ``restart`` starts it again (None: leave it dead). A mid-poll or mid-send moment that does
    not come within ``arm_s`` (nothing to send, say) falls back to a random kill."""

    tg: FakeTelegram
    okx: FakeOkx
    faults: Faults
    target: Callable[[], Awaitable[int | None]]
    restart: Callable[[int], Awaitable[None]] | None
    count: int
    rng: random.Random
    gap_s: tuple[float, float] = (3.0, 9.0)
    arm_s: float = 30.0
    after_kill: Callable[[], object] | None = None  # e.g. let OKX time pass (claims lapse)
    where: list[str] = field(default_factory=list)
    in_flight: list[tuple[int, str]] = field(default_factory=list)  # sends a kill cut off
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)  # shared with a Pauser
    _killed_at: float = 0.0  # time.time() of the last kill

    async def run(self) -> None:
        for i in range(self.count):
            await asyncio.sleep(self.rng.uniform(*self.gap_s))
            async with self.turn:  # no kill while a pause waits for a take-over
                await self._crash(i)

    async def _crash(self, i: int) -> None:
        kinds = ("mid-poll", "mid-send", "random")
        kind = kinds[i % len(kinds)]
        pid = await self.target()
        if pid is None:
            self.where.append("skipped (no process)")
            return
        if kind == "mid-poll":
            done = await self._mid_poll(pid)
        elif kind == "mid-send":
            done = await self._mid_send(pid)
        else:
            done = False
        if not done:
            self._kill(pid)
            kind = "random" if kind == "random" else f"random ({kind} did not come)"
        self.where.append(kind)
        if self.after_kill is not None:
            self.after_kill()
        await asyncio.sleep(self.rng.uniform(0.2, 2.0))  # down for a moment
        # what the process wrote before it died, read by the fake only after the kill
        self.in_flight += sends_received_since(self.tg, self._killed_at)
        if self.restart is not None:
            await self.restart(pid)

    def _kill(self, pid: int) -> None:
        """SIGKILL, and the sends in flight at that moment."""
        _kill(pid)
        self._killed_at = time.time()
        self.in_flight += sends_in_flight(self.tg)

    async def _mid_poll(self, pid: int) -> bool:
        """The next deposit-history request hangs; kill once the fake holds it."""
        before = self.okx.count(HISTORY)
        self.okx.fail_next(1, "timeout", HISTORY, hang_s=self.arm_s + 30)
        if not await _until(lambda: self.okx.count(HISTORY) > before, self.arm_s):
            self.okx.clear_faults()  # the hang was never taken: drop it, restore the rate
            self.faults.start()
            return False
        await asyncio.sleep(self.rng.uniform(0, 0.3))
        self._kill(pid)
        return True

    async def _mid_send(self, pid: int) -> bool:
        """Killed by the fake right after it delivered an activation message, before the answer
        reaches the bot (observers run before the HTTP response is written)."""
        fired = threading.Event()

        def observer(request: SentRequest, result: Any) -> None:
            text = str(request.params.get("text") or request.params.get("caption") or "")
            if not fired.is_set() and text.startswith(ACTIVATION):
                fired.set()
                self._kill(pid)  # this send among those in flight

        self.tg.observers.append(observer)
        try:
            return await _until(fired.is_set, self.arm_s)
        finally:
            self.tg.observers.remove(observer)


PAUSE_KINDS = ("mid-send", "mid-webhook", "mid-access")
# a send answered this recently before a kill or pause counts as in flight: between reading
# Telegram's answer and committing "sent", the outbox cannot know it was delivered
ANSWER_GRACE_S = 2.0
ACCESS_CALLS = frozenset({"banchatmember", "createchatinvitelink"})
SENDS = frozenset({"sendmessage", "sendphoto"})


# python-telegram-bot's read time-out (5 s) less a second of slack for what the fake's clock does
# not see (reading the request, writing the answer): a send answered this late may have reached
# a bot that had given up on it, not knowing it went out, and sends it again
LATE_ANSWER_S = 4.0


def sends_answered_late(tg: FakeTelegram) -> list[tuple[int, str]]:
    """(chat id, text) of every send the fake carried out but answered so late
    (:data:`LATE_ANSWER_S`) that the bot's request may have timed out first."""
    return _sends(tg.slow_answers(LATE_ANSWER_S))


def slowest_answer(tg: FakeTelegram) -> float:
    """The longest the fake took to answer a call it carried out (getUpdates' long polls aside)."""
    return max(
        (r.answer_s or 0.0 for r in tg.requests if r.response_ok and r.method != "getUpdates"),
        default=0.0,
    )


def sends_received_since(tg: FakeTelegram, since: float) -> list[tuple[int, str]]:
    """(chat id, text) of every send the fake read at ``since`` (``time.time()``) or later. Right
    after a kill or a pause these are requests the process had written before it stopped: the
    socket still held them, and the fake carries them out."""
    return _sends([r for r in tg.requests if r.ts >= since])


def sends_in_flight(tg: FakeTelegram) -> list[tuple[int, str]]:
    """(chat id, text) of every send the fake has received and not answered yet, or answered so
    recently (:data:`ANSWER_GRACE_S`) that the bot may not have recorded it as sent."""
    return _sends(tg.in_flight(answered_within_s=ANSWER_GRACE_S))


def _sends(requests: list[SentRequest]) -> list[tuple[int, str]]:
    out = []
    for request in requests:
        text = request.params.get("text") or request.params.get("caption")
        if request.method.lower() in SENDS and text is not None:
            with contextlib.suppress(TypeError, ValueError):
                out.append((int(request.params["chat_id"]), str(text)))
    return out


def _notification(method: str, params: dict[str, Any]) -> bool:
    text = params.get("text") or params.get("caption")
    return method.lower() in SENDS and bool(notification_pattern().fullmatch(str(text or "")))


def _chat_access(method: str, params: dict[str, Any]) -> bool:
    return method.lower() in ACCESS_CALLS


@dataclass
class Pauser:
    """``count`` pauses, one every few seconds, cycling mid-send, mid-webhook and mid-access.

    ``target`` names the primary's pid; ``taken_over(pid)`` waits until another live process
    says it is primary (False: none did in time); ``after_takeover`` lets OKX time pass so the
    claims of the stopped process lapse; the new primary then has ``standby_s`` to act before
    the held call goes through and the stopped process resumes. A moment that does not come
    within ``arm_s`` falls back to a pause at a random moment."""

    tg: FakeTelegram
    receiver: FlakyReceiver
    target: Callable[[], Awaitable[int | None]]
    taken_over: Callable[[int], Awaitable[bool]]
    count: int
    rng: random.Random
    gap_s: tuple[float, float] = (3.0, 9.0)
    arm_s: float = 30.0
    standby_s: float = 3.0
    after_takeover: Callable[[], object] | None = None
    where: list[str] = field(default_factory=list)
    in_flight: list[tuple[int, str]] = field(default_factory=list)  # sends a pause caught
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)  # shared with a Crasher
    # customers with two notifications or more waiting (a mid-send pause prefers one of them:
    # the second is what a resumed process must not send again)
    queued: Callable[[], Awaitable[set[int]]] | None = None

    async def run(self) -> None:
        for i in range(self.count):
            await asyncio.sleep(self.rng.uniform(*self.gap_s))
            kind = PAUSE_KINDS[i % len(PAUSE_KINDS)]
            async with self.turn:  # no kill while this pause waits for a take-over
                pid = await self.target()
                if pid is None:
                    self.where.append("skipped (no process)")
                    continue
                self.where.append(await self._pause(pid, kind))

    async def _pause(self, pid: int, kind: str) -> str:
        release: Callable[[], None]
        if kind == "mid-webhook":
            receiver_hold = self.receiver.hold_next()
            taken = receiver_hold.taken
            release = partial(self.receiver.drop_hold, receiver_hold)
        else:
            match = _notification if kind == "mid-send" else _chat_access
            if kind == "mid-send" and self.queued is not None:
                match = partial(_notification_to, await self._queued())
            tg_hold = self.tg.hold_next(match)
            taken, release = tg_hold.taken, partial(self.tg.drop_hold, tg_hold)
        try:
            if not await _until(taken.is_set, self.arm_s):
                release()
                kind = f"random ({kind} did not come)"
            _signal(pid, signal.SIGSTOP)
            stopped_at = time.time()
            try:
                self.in_flight += sends_in_flight(self.tg)
                if not await self.taken_over(pid):
                    kind += " (nobody took over)"
                # what the process wrote before it stopped, read by the fake only after that
                # (before the take-over nobody else sends)
                self.in_flight += sends_received_since(self.tg, stopped_at)
                if self.after_takeover is not None:
                    self.after_takeover()
                await asyncio.sleep(self.standby_s)  # the new primary acts meanwhile
                release()
                await asyncio.sleep(0.2)  # the held answer is on its way
            finally:
                _signal(pid, signal.SIGCONT)
        finally:
            release()
        return kind

    async def _queued(self) -> set[int] | None:
        """Customers with notifications queued behind one another (None: none came soon)."""
        assert self.queued is not None
        deadline = time.monotonic() + self.arm_s / 2
        while time.monotonic() < deadline:
            if found := await self.queued():
                return found
            await asyncio.sleep(0.1)
        return None


def _notification_to(chats: set[int] | None, method: str, params: dict[str, Any]) -> bool:
    """A notification to one of ``chats`` (None: to anybody)."""
    if chats is not None and str(params.get("chat_id")) not in {str(c) for c in chats}:
        return False
    return _notification(method, params)


@dataclass
class Intruder:
    """Customers who have not paid yet (``who``, used once each) join through the first invite
    link the bot sends to somebody else, before its owner: the bot removes them (a ban and an
    unban); they pay later and must then be able to join with a link of their own."""

    tg: FakeTelegram
    who: list[int]
    joined: list[tuple[int, str]] = field(default_factory=list)  # (intruder, outcome)

    def __post_init__(self) -> None:
        self._left = list(self.who)
        self.tg.observers.append(self._observe)

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.tg.observers.remove(self._observe)

    def _observe(self, request: SentRequest, result: Any) -> None:
        if not self._left or request.method.lower() not in SENDS:
            return
        text = str(request.params.get("text") or "")
        found = INVITE_LINK.search(text)
        if found is None or str(request.params.get("chat_id")) in {str(u) for u in self.who}:
            return
        intruder = self._left.pop(0)
        self.joined.append((intruder, self.tg.join_by_link(intruder, found.group(0))))


INVITE_LINK = re.compile(r"https://t\.me/\+[A-Za-z0-9_-]+")


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def fault_figures(counts: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in counts.items()) or "none"
