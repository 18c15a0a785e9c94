"""A fake OKX v5 REST API: a real HTTP server on 127.0.0.1, in a thread with its own event loop.

    fake = FakeOkx(clock=manual_clock.now_ms)   # or FakeOkx() for real time
    with fake:                                  # or fake.start() ... fake.stop()
        exchange = OkxExchange(fake.api_key, fake.secret, fake.passphrase, base_url=fake.base_url)

It verifies OK-ACCESS-KEY / -PASSPHRASE / -TIMESTAMP / -SIGN like OKX on private endpoints,
answers with OKX's envelope and field names (numbers as strings), filters and pages the deposit
history newest first, and injects faults (``fail_next``, ``fail_rate``). Data and controls
(``add_deposit``, ``set_price`` ...) come from :class:`fakes.okx_state.OkxState`.

Standalone: ``python -m fakes.okx --port 8765`` prints the URL and credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fakes.loopback import LoopbackServer
from fakes.okx_auth import check_request
from fakes.okx_state import ClockLike, OkxParamError, OkxState

FAULT_KINDS = (
    "rate_limit",  # HTTP 429, code 50011
    "server_error",  # HTTP 500, HTML body
    "unavailable",  # HTTP 503, HTML body
    "timeout",  # no answer for ``hang_s`` seconds
    "maintenance",  # HTTP 503, code 50001
    "malformed",  # HTTP 200, code "0" but ``data`` is not a list
    "garbage",  # HTTP 200, a body that is not JSON
    "region",  # HTTP 403, code 51155: OKX does not serve the caller's country
    "region_page",  # HTTP 403, an HTML page saying the region is restricted (no code)
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RequestLog:
    method: str
    path: str
    params: dict[str, str]
    ts: int  # the fake's clock when the request arrived
    key: str = ""  # the OK-ACCESS-KEY header as sent ("" on public requests)


@dataclass
class _Fault:
    kind: str
    path_prefix: str | None
    hang_s: float | None


def envelope(data: list[Any], code: str = "0", msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def okx_error(code: str, msg: str, status: int = 200) -> web.Response:
    return web.json_response(envelope([], code, msg), status=status)


class FakeOkx(OkxState, LoopbackServer):
    """The fake OKX server; see the module docstring."""

    name = "fake-okx"

    def __init__(
        self,
        clock: ClockLike | None = None,
        *,
        api_key: str = "test-key",
        secret: str = "test-secret",
        passphrase: str = "test-pass",
        host: str = "127.0.0.1",
        port: int = 0,
        hang_s: float = 5.0,
    ) -> None:
        OkxState.__init__(self, clock)
        LoopbackServer.__init__(self, host, port)
        self.api_key = api_key
        self.secret = secret
        self.passphrase = passphrase
        self._keys: dict[str, tuple[str, str]] = {}  # add_key: more API keys, key -> secret, pass
        self.hang_s = hang_s  # how long a "timeout" fault hangs (ended early by stop())
        self.base_url = ""
        self._log: list[RequestLog] = []
        self._faults: list[_Fault] = []
        self._fault_rate = 0.0
        self._fault_kinds: tuple[str, ...] = ()
        self._fault_prefix: str | None = None
        self._random = random.Random(0)
        self.faults_injected: Counter[str] = Counter()  # kind -> how many faults were applied
        self._routes: dict[str, tuple[Handler, bool]] = {
            "/api/v5/public/time": (self._public_time, False),
            "/api/v5/public/instruments": (self._instruments, False),
            "/api/v5/market/ticker": (self._ticker, False),
            "/api/v5/market/tickers": (self._tickers, False),
            "/api/v5/asset/currencies": (self._currencies_ep, True),
            "/api/v5/asset/deposit-address": (self._deposit_address, True),
            "/api/v5/asset/deposit-history": (self._deposit_history, True),
            "/api/v5/account/config": (self._account_config, True),
        }

    async def started(self) -> None:
        self.base_url = self.root_url

    # --- faults and request log ---------------------------------------------------------------

    def fail_next(
        self, n: int, kind: str, path_prefix: str | None = None, *, hang_s: float | None = None
    ) -> None:
        """The next ``n`` requests (to paths starting with ``path_prefix``) fail with ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self._faults.extend(_Fault(kind, path_prefix, hang_s) for _ in range(n))

    def fail_rate(
        self,
        rate: float,
        kinds: Sequence[str] = ("rate_limit", "server_error"),
        seed: int = 0,
        path_prefix: str | None = None,
    ) -> None:
        """Fail each request with probability ``rate`` (0 turns it off), kind chosen at random."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._fault_rate = rate
            self._fault_kinds = tuple(kinds)
            self._fault_prefix = path_prefix
            self._random = random.Random(seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._fault_rate = 0.0

    def add_key(self, api_key: str, secret: str, passphrase: str) -> None:
        """Accept one more API key (e.g. one per replica, to see which of them calls OKX: every
        request's ``key`` is in :attr:`requests`)."""
        with self._lock:
            self._keys[api_key] = (secret, passphrase)

    def count(self, path: str | None = None, *, key: str | None = None) -> int:
        """How many requests arrived (for ``path``, or in all; sent with API key ``key``, or
        with any), faults and refusals included."""
        with self._lock:
            return sum(
                1
                for r in self._log
                if (path is None or r.path == path) and (key is None or r.key == key)
            )

    def queries(self, path: str) -> list[dict[str, str]]:
        """The query parameters of each request to ``path``, oldest first."""
        with self._lock:
            return [dict(r.params) for r in self._log if r.path == path]

    @property
    def requests(self) -> list[RequestLog]:
        with self._lock:
            return list(self._log)

    def reset_counts(self) -> None:
        with self._lock:
            self._log.clear()

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.path_prefix is None or path.startswith(fault.path_prefix):
                    return self._faults.pop(i)
            prefix_ok = self._fault_prefix is None or path.startswith(self._fault_prefix)
            if self._fault_rate > 0 and prefix_ok and self._random.random() < self._fault_rate:
                return _Fault(self._random.choice(self._fault_kinds), None, None)
        return None

    async def _apply_fault(self, fault: _Fault) -> web.Response | None:
        kind = fault.kind
        with self._lock:
            self.faults_injected[kind] += 1
        if kind == "rate_limit":
            return okx_error("50011", "Too Many Requests", status=429)
        if kind in ("server_error", "unavailable"):
            status = 500 if kind == "server_error" else 503
            title = "Internal Server Error" if status == 500 else "Service Temporarily Unavailable"
            html = f"<html><head><title>{status} {title}</title></head><body>{title}</body></html>"
            return web.Response(status=status, text=html, content_type="text/html")
        if kind == "maintenance":
            msg = "Service temporarily unavailable, please try again later."
            return okx_error("50001", msg, status=503)
        if kind == "region":
            msg = "Access from your country or region is restricted by compliance requirements."
            return okx_error("51155", msg, status=403)
        if kind == "region_page":
            html = "<html><body>403 Forbidden: service restricted in your region</body></html>"
            return web.Response(status=403, text=html, content_type="text/html")
        if kind == "malformed":
            return web.json_response({"code": "0", "msg": "", "data": {"unexpected": True}})
        if kind == "garbage":
            return web.Response(text="<html>upstream says hello</html>", content_type="text/html")
        # "timeout": hang, then answer normally (the client has given up by then)
        assert self._stopping is not None
        hang = self.hang_s if fault.hang_s is None else fault.hang_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), hang)
        return None

    # --- request handling ---------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        params = {key: request.query[key] for key in request.query}
        with self._lock:
            key = request.headers.get("OK-ACCESS-KEY", "")
            self._log.append(RequestLog(request.method, path, params, self.now_ms(), key))
        fault = self._take_fault(path)
        if fault is not None:
            faulted = await self._apply_fault(fault)
            if faulted is not None:
                return faulted
        route = self._routes.get(path)
        if route is None:
            return web.Response(status=404, text="Not Found")
        if request.method != "GET":
            return okx_error("50115", "Invalid request method.", status=405)
        handler, private = route
        if private:
            refusal = await self._authenticate(request)
            if refusal is not None:
                return refusal
        try:
            return await handler(request)
        except OkxParamError as exc:
            return okx_error(exc.code, exc.msg, status=400)

    async def _authenticate(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("OK-ACCESS-KEY", "")
        with self._lock:
            extra = self._keys.get(given)
        api_key, (secret, passphrase) = (
            (given, extra) if extra is not None else (self.api_key, (self.secret, self.passphrase))
        )
        refusal = check_request(
            request.headers,
            request.method,
            request.raw_path,
            await request.text(),
            api_key=api_key,
            secret=secret,
            passphrase=passphrase,
            now_ms=self.now_ms(),
        )
        return None if refusal is None else okx_error(*refusal, status=401)

    async def _public_time(self, request: web.Request) -> web.Response:
        return web.json_response(envelope([{"ts": str(self.now_ms())}]))

    async def _instruments(self, request: web.Request) -> web.Response:
        inst_type = request.query.get("instType", "")
        if not inst_type:
            return okx_error("50014", "Parameter instType can not be empty.", status=400)
        rows = self.instrument_rows() if inst_type == "SPOT" else []
        inst_id = request.query.get("instId")
        if inst_id:
            rows = [row for row in rows if row["instId"] == inst_id]
        return web.json_response(envelope(rows))

    async def _ticker(self, request: web.Request) -> web.Response:
        inst_id = request.query.get("instId", "")
        if not inst_id:
            return okx_error("50014", "Parameter instId can not be empty.", status=400)
        rows = [row for row in self.ticker_rows() if row["instId"] == inst_id]
        if not rows:
            return okx_error("51001", "Instrument ID does not exist", status=400)
        return web.json_response(envelope(rows))

    async def _tickers(self, request: web.Request) -> web.Response:
        inst_type = request.query.get("instType", "")
        if not inst_type:
            return okx_error("50014", "Parameter instType can not be empty.", status=400)
        rows = self.ticker_rows() if inst_type == "SPOT" else []
        return web.json_response(envelope(rows))

    async def _currencies_ep(self, request: web.Request) -> web.Response:
        text = request.query.get("ccy", "")
        ccys = {c.strip() for c in text.split(",") if c.strip()} or None
        return web.json_response(envelope(self.currency_rows(ccys)))

    async def _deposit_address(self, request: web.Request) -> web.Response:
        ccy = request.query.get("ccy", "")
        if not ccy:
            return okx_error("50014", "Parameter ccy can not be empty.", status=400)
        return web.json_response(envelope(self.address_rows(ccy)))

    async def _deposit_history(self, request: web.Request) -> web.Response:
        params = {key: request.query[key] for key in request.query}
        return web.json_response(envelope(self.deposit_history(params)))

    async def _account_config(self, request: web.Request) -> web.Response:
        return web.json_response(envelope([self.account_row()]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake OKX v5 REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fake = FakeOkx(host=args.host, port=args.port).start()
    print(fake.base_url, flush=True)
    print(
        json.dumps({"api_key": fake.api_key, "secret": fake.secret, "passphrase": fake.passphrase}),
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
