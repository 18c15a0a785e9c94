"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1, in a thread with its own event loop.

    fake = FakeTelegram()                       # token "123456:TEST-TOKEN"
    with fake:                                  # or fake.start() ... fake.stop()
        app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).build()
        fake.send_text(42, "/start")
        [reply] = await fake.wait_bot_messages(42, 1)

It answers PTB's form-encoded, multipart and JSON requests with Telegram's envelope and shapes,
long-polls ``getUpdates``, POSTs updates to a webhook, serves uploaded files and injects faults
(``fail_next``, ``block``, ``delay_ms``, and ``hold_next``: a request held until the test
lets it through, as for a process paused inside a call). Users, messages and controls
(``send_text``, ``press``, ``messages`` ...) come from
:class:`fakes.telegram_state.TelegramState`; channels, groups, members, invite links and join
requests (``add_chat``, ``join_by_link``, ``members`` ...) from
:class:`fakes.telegram_chats.TelegramChats`; Telegram Stars invoices, payments, subscriptions,
refunds and the Star ledger (``invoices``, ``pay``, ``charge_renewals`` ...) from
:class:`fakes.telegram_stars.TelegramStars`. ``allowed_updates`` is remembered between calls and
by default excludes ``chat_member``, as on Telegram.

Standalone: ``python -m fakes.telegram --port 8081 [--chat -100123...]`` prints the base URL and
token (each ``--chat`` adds a channel where the bot is an administrator with every right).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from fakes.loopback import LoopbackServer
from fakes.telegram_state import (
    FILE_NAMES,
    METHODS,
    ApiError,
    ChatMessage,
    SentRequest,
    TelegramState,
    bad_request,
    flat_buttons,
)

T = TypeVar("T")
FAULT_KINDS = ("429", "500", "502", "forbidden", "bad_request", "timeout")
JSON_KEYS = {"reply_markup", "allowed_updates", "commands", "entities", "caption_entities"}
JSON_KEYS |= {"link_preview_options", "reply_parameters", "scope", "menu_button", "prices"}
INT_KEYS = {"chat_id", "message_id", "offset", "limit", "timeout", "user_id", "cache_time"}
BOOL_KEYS = {"show_alert", "drop_pending_updates", "disable_notification", "protect_content"}
INT_KEYS |= {"expire_date", "member_limit", "until_date"}
BOOL_KEYS |= {"only_if_banned", "creates_join_request", "revoke_messages"}
CANONICAL = {name.lower(): name for name in METHODS}
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active;"
    " use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request;"
    " make sure that only one bot instance is running"
)
RATE_EXEMPT = frozenset({"getupdates", "setwebhook"})  # fail_rate never fails these
_API_PATH = re.compile(r"/bot([^/]+)/([A-Za-z]+)/?")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass
class Hold:
    """A Bot API call the fake keeps waiting before it runs (:meth:`FakeTelegram.hold_next`):
    ``taken`` is set once a call matched and waits; :meth:`release` lets it run and answer."""

    match: Callable[[str, dict[str, Any]], bool]
    taken: threading.Event
    released: threading.Event
    request: SentRequest | None = None

    @property
    def arrived(self) -> threading.Event:
        """The same as ``taken``: the call reached the fake and waits."""
        return self.taken

    def release(self) -> None:
        self.released.set()


@dataclass
class _Fault:
    method: str  # lower-case name, or "*" for any
    kind: str
    chat_id: int | None
    retry_after: int
    hang_s: float | None
    description: str | None


def _calls_of(name: str, chat_id: int | None) -> Callable[[str, dict[str, Any]], bool]:
    """Picks the calls of method ``name`` ("*": any), to ``chat_id`` only unless None."""

    def match(method: str, params: dict[str, Any]) -> bool:
        to_chat = chat_id is None or str(chat_id) == str(params.get("chat_id"))
        return name in ("*", method.lower()) and to_chat

    return match


class FakeTelegram(TelegramState, LoopbackServer):
    """The fake Bot API server; see the module docstring."""

    name = "fake-telegram"
    client_max_size = 50 * 1024 * 1024

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        host: str = "127.0.0.1",
        port: int = 0,
        delay_ms: int = 0,
        *,
        hang_s: float = 30.0,
    ) -> None:
        TelegramState.__init__(self, token)
        LoopbackServer.__init__(self, host, port)
        self.delay_ms = delay_ms  # every answer is delayed this long
        self.hang_s = hang_s  # how long a "timeout" fault hangs (ended early by stop())
        self.base_url = ""  # http://127.0.0.1:PORT/bot, for ApplicationBuilder().base_url()
        self.base_file_url = ""
        self._faults: list[_Fault] = []
        self._holds: list[Hold] = []
        self._rate = 0.0  # fail_rate: the share of calls that fail, and how
        self._rate_kinds: tuple[str, ...] = ()
        self._rate_hang_s: float | None = None
        self._rate_random = random.Random(0)
        self.faults_injected: Counter[str] = Counter()  # kind -> how many faults were applied
        self._waiters: set[asyncio.Future[None]] = set()
        self._poll_generation = 0
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._delivery: asyncio.Task[None] | None = None
        self._backends: list[str] | None = None  # balance_webhooks: replicas' root URLs
        self._next_backend = 0
        self.webhook_backends: Counter[str] = Counter()  # backend -> updates it accepted
        # benchmarks: when each update was first handed out (time.time(), by update_id), and
        # callbacks run in the server loop after every answered request (request, result)
        self.handed_out: dict[int, float] = {}
        self.observers: list[Callable[[SentRequest, Any], None]] = []
        self._open: dict[int, SentRequest] = {}  # id() -> a call not answered yet
        self._answered: deque[tuple[float, SentRequest]] = deque(maxlen=2000)  # (when, call)
        self._unban_rate = 0.0  # fail_unbans_after_bans
        self._unban_kinds: tuple[str, ...] = ()
        self._unban_hang_s: float | None = None
        self._unban_random = random.Random(0)
        self._just_banned: set[tuple[str, str]] = set()  # (chat, user) banned, not unbanned yet

    async def started(self) -> None:
        self.base_url = f"{self.root_url}/bot"
        self.base_file_url = f"{self.root_url}/file/bot"
        self._delivery = asyncio.create_task(self._deliver_webhooks())

    def stopping(self) -> None:
        self._wake()  # ends long polls now

    async def cleanup(self) -> None:
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery

    # --- waking long polls and the webhook sender ---------------------------------------------

    def _notify(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def _waiter(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        return waiter

    # --- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        kind: str,
        count: int = 1,
        chat_id: int | None = None,
        retry_after: int = 1,
        *,
        hang_s: float | None = None,
        description: str | None = None,
    ) -> None:
        """The next ``count`` calls of ``method`` ("*": any; for ``chat_id`` only) fail."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        fault = _Fault(method.lower(), kind, chat_id, retry_after, hang_s, description)
        with self._lock:
            self._faults.extend(fault for _ in range(count))

    def fail_rate(
        self,
        rate: float,
        kinds: Sequence[str] = ("429", "500", "timeout"),
        seed: int = 0,
        *,
        hang_s: float | None = None,
    ) -> None:
        """Fail each Bot API call but getUpdates and setWebhook with probability ``rate`` (0
        turns it off), the kind chosen at random; a 429 says retry after 1 s, a "timeout" hangs
        ``hang_s`` (default ``self.hang_s``). ``faults_injected`` counts every applied fault."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self._rate = rate
            self._rate_kinds = tuple(kinds)
            self._rate_hang_s = hang_s
            self._rate_random = random.Random(seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._blocked.clear()
            for hold in self._holds:
                hold.release()
            self._holds.clear()
            self._rate = 0.0
            self._unban_rate = 0.0

    def fail_unbans_after_bans(
        self,
        rate: float,
        kinds: Sequence[str] = ("500", "timeout"),
        seed: int = 0,
        *,
        hang_s: float | None = None,
    ) -> None:
        """Fail with probability ``rate`` (0 turns it off) an unbanChatMember that comes right
        after a successful banChatMember of the same user in the same chat (a kick whose second
        half fails: the user stays banned); the kind is chosen at random from ``kinds``, a
        "timeout" hangs ``hang_s`` (default ``self.hang_s``) and never unbans. Counted in
        ``faults_injected`` as "unban:<kind>" (and under the kind, as every fault)."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self._unban_rate, self._unban_kinds = rate, tuple(kinds)
            self._unban_hang_s, self._unban_random = hang_s, random.Random(seed)

    def _unban_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        key = (str(params.get("chat_id")), str(params.get("user_id")))
        with self._lock:
            if method.lower() != "unbanchatmember" or key not in self._just_banned:
                return None
            self._just_banned.discard(key)
            if self._unban_rate <= 0 or self._unban_random.random() >= self._unban_rate:
                return None
            kind = self._unban_random.choice(self._unban_kinds)
            self.faults_injected[f"unban:{kind}"] += 1
            return _Fault("unbanchatmember", kind, None, 1, self._unban_hang_s, None)

    def _remember_ban(self, method: str, params: dict[str, Any]) -> None:
        if method.lower() == "banchatmember" and self._unban_rate > 0:
            with self._lock:
                self._just_banned.add((str(params.get("chat_id")), str(params.get("user_id"))))

    # --- holding a call, and what is in flight ---------------------------------------------------

    def hold_next(
        self, what: str | Callable[[str, dict[str, Any]], bool], chat_id: int | None = None
    ) -> Hold:
        """The next call that ``what`` picks (a method name, "*" for any, optionally for
        ``chat_id`` only; or a ``match(method, params)`` function) waits, before it runs, until
        the returned hold is released (or the fake stops): a call in flight, for as long as a
        test needs (to pause the process that made it, say)."""
        match = _calls_of(what.lower(), chat_id) if isinstance(what, str) else what
        hold = Hold(match, threading.Event(), threading.Event())
        with self._lock:
            self._holds.append(hold)
        return hold

    def drop_hold(self, hold: Hold) -> None:
        """Forget a hold that was never taken; release one that was."""
        with self._lock:
            if hold in self._holds:
                self._holds.remove(hold)
        hold.release()

    async def _held(self, method: str, entry: SentRequest) -> None:
        with self._lock:
            hold = next((h for h in self._holds if h.match(method, entry.params)), None)
            if hold is None:
                return
            self._holds.remove(hold)
            hold.request = entry
        hold.taken.set()
        assert self._stopping is not None
        while not hold.released.is_set() and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):  # stop() ends the wait at once
                await asyncio.wait_for(self._stopping.wait(), 0.01)

    def slow_answers(self, over_s: float) -> list[SentRequest]:
        """The calls carried out whose answer took ``over_s`` seconds or more: a caller with a
        shorter read time-out gave up on it without knowing it went through."""
        with self._lock:
            return [
                dataclasses.replace(r)
                for r in self._log
                if r.response_ok and r.answer_s is not None and r.answer_s >= over_s
            ]

    def in_flight(self, answered_within_s: float = 0.0) -> list[SentRequest]:
        """The calls received and not answered yet (getUpdates included), oldest first; plus
        those answered in the last ``answered_within_s`` seconds (their answer may not have
        been read, or acted on, by the caller yet)."""
        since = time.monotonic() - answered_within_s
        with self._lock:
            recent = [r for at, r in self._answered if answered_within_s > 0 and at >= since]
            return [dataclasses.replace(r) for r in [*recent, *self._open.values()]]

    def reset(self) -> None:
        self.clear_faults()
        super().reset()

    def _take_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.method in ("*", method.lower()) and (
                    fault.chat_id is None or str(fault.chat_id) == str(params.get("chat_id"))
                ):
                    return self._faults.pop(i)
            exempt = self._rate <= 0 or method.lower() in RATE_EXEMPT
            if not exempt and self._rate_random.random() < self._rate:
                kind = self._rate_random.choice(self._rate_kinds)
                return _Fault("*", kind, None, 1, self._rate_hang_s, None)
        return None

    async def _apply_fault(self, fault: _Fault) -> ApiError:
        with self._lock:
            self.faults_injected[fault.kind] += 1
        if fault.kind == "429":
            n = fault.retry_after
            return ApiError(429, f"Too Many Requests: retry after {n}", {"retry_after": n})
        if fault.kind in ("500", "502"):
            phrase = "Internal Server Error" if fault.kind == "500" else "Bad Gateway"
            return ApiError(int(fault.kind), fault.description or phrase)
        if fault.kind == "forbidden":
            return ApiError(403, fault.description or "Forbidden: bot was blocked by the user")
        if fault.kind == "bad_request":
            return bad_request(fault.description or "injected fault")
        assert self._stopping is not None  # "timeout": hang, then give up
        hang = self.hang_s if fault.hang_s is None else fault.hang_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), hang)
        return ApiError(504, "Gateway Timeout")

    # --- request handling ---------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(f"/file/bot{self.token}/"):
            path = request.path.removeprefix(f"/file/bot{self.token}/")
            with self._lock:
                data = next((f.data for f in self._files.values() if f.path == path), None)
            if data is None:
                return web.json_response(ApiError(404, "Not Found").body(), status=404)
            return web.Response(body=data, content_type="image/png")
        match = _API_PATH.fullmatch(request.path)
        if match is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        method = CANONICAL.get(match[2].lower(), match[2])
        early: ApiError | None
        try:
            params, files = await self._read_params(request)
        except ApiError as error:
            params, files, early = {}, {}, error
        else:
            early = None if match[1] == self.token else ApiError(401, "Unauthorized")
        entry = self._record(method, params, files)
        with self._lock:
            self._open[id(entry)] = entry
        try:
            return await self._answer(method, params, files, entry, early)
        finally:
            with self._lock:
                self._open.pop(id(entry), None)
                self._answered.append((time.monotonic(), entry))
                entry.answered_at = time.time()

    async def _answer(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, bytes],
        entry: SentRequest,
        early: ApiError | None,
    ) -> web.StreamResponse:
        polling = method == "getUpdates"
        self._in_flight += 0 if polling else 1
        try:
            if self.delay_ms:
                await asyncio.sleep(self.delay_ms / 1000)
            if early is not None:
                raise early
            await self._held(method, entry)
            fault = self._unban_fault(method, params) or self._take_fault(method, params)
            if fault is not None:
                raise await self._apply_fault(fault)
            result = await self._call(method.lower(), params, files)
            self._remember_ban(method, params)
        except ApiError as error:
            return web.json_response(error.body(), status=error.status)
        finally:
            self._in_flight -= 0 if polling else 1
            self._last_activity = time.monotonic() if not polling else self._last_activity
        with self._lock:
            entry.response_ok = True
        for observer in self.observers:
            observer(entry, result)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.can_read_body and request.content_type == "application/json":
            body = await request.json()
            params |= body if isinstance(body, dict) else {}
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    params.setdefault(FILE_NAMES, {})[key] = value.filename
                else:
                    params[key] = value
        for key in JSON_KEYS & params.keys():
            if isinstance(params[key], str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    raise bad_request(f"can't parse {key} JSON object") from None
        for key in INT_KEYS & params.keys():  # form values arrive as text
            with contextlib.suppress(TypeError, ValueError):
                params[key] = int(params[key])
        for key in BOOL_KEYS & params.keys():
            params[key] = params[key] in (True, "true", "True", "1")
        return params, files

    async def _call(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if method == "getupdates":
            return await self._get_updates(params)
        if method in ("setwebhook", "deletewebhook"):  # setWebhook with no url deletes it too
            hook: dict[str, Any] | None = None
            if method == "setwebhook" and params.get("url"):
                secret = params.get("secret_token")
                if secret is not None and not _SECRET.fullmatch(str(secret)):
                    raise bad_request("secret token contains unallowed characters")
                hook = {"url": str(params["url"]), "secret_token": secret}
                allowed = params.get("allowed_updates")  # None keeps the setting, [] resets it
                hook["allowed_updates"] = allowed if isinstance(allowed, list) else None
            with self._lock:
                self.webhook, self.webhook_error = hook, None
                if params.get("drop_pending_updates"):
                    self._updates.clear()
            self._wake()
            return True
        if method == "getwebhookinfo":
            with self._lock:
                hook = self.webhook or {"url": ""}
                info = {"url": hook["url"], "has_custom_certificate": False}
                info |= {"pending_update_count": len(self._updates), "max_connections": 40}
                if hook.get("allowed_updates"):
                    info["allowed_updates"] = hook["allowed_updates"]
                if self.webhook_error is not None:
                    info["last_error_date"], info["last_error_message"] = self.webhook_error
                return info
        return self.api(method, params, files)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = int(params["offset"]) if params.get("offset") not in (None, "") else None
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        allowed = params.get("allowed_updates")
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older long poll is ended with a Conflict, as Telegram does
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(params.get("timeout") or 0)
        assert self._stopping is not None
        while True:
            batch = self.take_updates(offset, limit, allowed if isinstance(allowed, list) else None)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._stopping.is_set():
                self._last_activity = time.monotonic() if batch else self._last_activity
                self._hand_out(batch)
                return batch
            if generation != self._poll_generation:
                raise ApiError(409, POLL_CONFLICT)
            waiter = self._waiter()
            await asyncio.wait({waiter}, timeout=remaining)
            self._waiters.discard(waiter)

    def balance_webhooks(self, backends: Sequence[str] | None) -> None:
        """Deliver webhook updates to ``backends`` (root URLs, "http://127.0.0.1:PORT"), as a
        load balancer in front of replicas: each update goes to one of them, keeping the path
        and query of the URL the bot registered; they take turns (round-robin), and one that
        refuses the connection, times out or answers 5xx is skipped for that update (the next
        is tried, like a balancer's health check). When all fail, the update is retried as
        without balancing. ``webhook_backends`` counts the updates each backend accepted.
        None (or empty): deliver to the registered URL again."""
        with self._lock:
            self._backends = [url.rstrip("/") for url in backends] if backends else None
            self._next_backend = 0
        self._notify()

    def _webhook_targets(self, url: str) -> list[tuple[str | None, str]]:
        """(backend, URL) to try in order for one delivery: the registered URL alone, or every
        backend starting with the next in turn."""
        with self._lock:
            backends = list(self._backends) if self._backends else None
            start = self._next_backend
            if backends:
                self._next_backend = (start + 1) % len(backends)
        if not backends:
            return [(None, url)]
        parts = urlsplit(url)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        return [(backend, backend + tail) for backend in backends[start:] + backends[:start]]

    async def _post_update(
        self, session: aiohttp.ClientSession, hook: dict[str, Any], update: dict[str, Any]
    ) -> str | None:
        """POST one update (through the balancer when one is set); None when it was accepted,
        else the error Telegram would report in getWebhookInfo."""
        secret = hook.get("secret_token")
        headers = {"X-Telegram-Bot-Api-Secret-Token": str(secret)} if secret else {}
        timeout = aiohttp.ClientTimeout(total=10)
        error: str | None = None
        for backend, url in self._webhook_targets(hook["url"]):
            try:
                async with session.post(
                    url, json=update, headers=headers, timeout=timeout
                ) as response:
                    if response.ok:
                        if backend is not None:
                            with self._lock:
                                self.webhook_backends[backend] += 1
                        return None
                    error = f"Wrong response from the webhook: {response.status} {response.reason}"
                    if response.status < 500:
                        return error  # a balancer passes a 4xx on: no other backend is tried
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"Connection failed: {exc!r}"
        return error

    async def _deliver_webhooks(self) -> None:
        """POST queued updates to the webhook one at a time, retrying every 0.2 s on failure."""
        async with aiohttp.ClientSession() as session:
            while True:
                waiter = self._waiter()
                with self._lock:
                    hook = dict(self.webhook) if self.webhook else None
                batch = self.take_updates(None, 1, hook.get("allowed_updates")) if hook else []
                if not hook or not batch:
                    await waiter
                    continue
                self._waiters.discard(waiter)
                self._hand_out(batch)
                error = await self._post_update(session, hook, batch[0])
                if error is None:
                    self.take_updates(batch[0]["update_id"] + 1, 0, None)
                    continue
                with self._lock:
                    self.webhook_error = (int(time.time()), error)
                await asyncio.sleep(0.2)

    def _hand_out(self, batch: list[dict[str, Any]]) -> None:
        now = time.time()
        for update in batch:
            self.handed_out.setdefault(update["update_id"], now)

    # --- waiting (from the test's own event loop) ---------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], T | bool | None],
        timeout: float = 10.0,  # noqa: ASYNC109 (polls a predicate; not an I/O timeout)
        what: str = "it",
    ) -> T:
        """The first truthy value of ``predicate`` (polled every 10 ms) or AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return cast(T, value)
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}\n{self.dump()}"
                )
            await asyncio.sleep(0.01)

    async def wait_bot_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[ChatMessage]:
        """The bot's messages in ``chat_id`` once there are at least ``count``."""

        def enough() -> list[ChatMessage] | None:
            found = self.bot_messages(chat_id)
            return found if len(found) >= count else None

        return await self.wait_for(enough, timeout, f"{count} bot message(s) in chat {chat_id}")

    async def wait_idle(self, timeout: float = 10.0, quiet_s: float = 0.2) -> None:  # noqa: ASYNC109
        """Until no update is pending and, for ``quiet_s``, no call but getUpdates ran and no
        update was handed out (a heuristic: a slow handler may still be busy)."""

        def idle() -> bool:
            quiet = time.monotonic() - self._last_activity >= quiet_s
            return self.pending_updates() == 0 and self._in_flight == 0 and quiet

        await self.wait_for(idle, timeout, "the bot to go idle")

    def dump(self, last: int = 8) -> str:
        """The newest bot messages of every chat, for failure messages."""
        with self._lock:
            found = [m for chat in self._chats.values() for m in chat if m.from_bot]
        found.sort(key=lambda m: m.date)
        lines = [
            f"  chat {m.chat_id} #{m.message_id}{' (deleted)' if m.deleted else ''}:"
            f" {m.plain!r} buttons={flat_buttons(m.reply_markup)}"
            for m in found[-last:]
        ]
        return "last bot messages:\n" + ("\n".join(lines) or "  (none)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Telegram Bot API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--chat", type=int, action="append", default=[], help="add a channel")
    args = parser.parse_args(argv)
    fake = FakeTelegram(token=args.token, host=args.host, port=args.port).start()
    for chat_id in args.chat:
        fake.add_chat(chat_id)
    print(fake.base_url, flush=True)
    print(json.dumps({"token": fake.token, "base_file_url": fake.base_file_url}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
