"""A merchant's backend for tests: a loopback HTTP server that records every webhook it gets.

    receiver = WebhookReceiver().start()
    url = receiver.url                      # http://127.0.0.1:PORT/hooks
    receiver.answer(500)                    # every request from now on gets a 500
    receiver.hang(30)                       # ... or no answer for 30 s
    receiver.stop(); receiver.start()       # down for a while, back on the same port

Every request is recorded (raw body, headers, the status it was answered with), whatever the
answer. Thread-safe: the server runs in its own thread (:class:`fakes.loopback.LoopbackServer`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fakes.loopback import LoopbackServer


@dataclass(frozen=True)
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (0: it hung until stopped)

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


class WebhookReceiver(LoopbackServer):
    name = "fake webhook receiver"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, path: str = "/hooks") -> None:
        super().__init__(host, port)
        self.path = path
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._status = 200
        self._hang_s: float | None = None

    @property
    def url(self) -> str:
        if not self.root_url:
            raise RuntimeError("start the receiver first")
        return f"{self.root_url}{self.path}"

    def answer(self, status: int) -> None:
        """Answer every request from now on with ``status`` (200 again to accept)."""
        with self._lock:
            self._status = status
            self._hang_s = None

    def hang(self, seconds: float) -> None:
        """Answer nothing for ``seconds`` (the sender times out first)."""
        with self._lock:
            self._hang_s = seconds

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def accepted(self) -> list[Received]:
        """The requests answered with a 2xx."""
        return [r for r in self.received if 200 <= r.status < 300]

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            status, hang_s = self._status, self._hang_s
        if hang_s is not None:
            await asyncio.sleep(hang_s)
            status = 0
        with self._lock:
            self._received.append(
                Received(
                    path=request.path,
                    query=request.query_string,
                    headers=dict(request.headers),
                    body=body,
                    status=status,
                )
            )
        if status == 0:
            return web.Response(status=504)
        return web.Response(status=status, text="ok" if status < 300 else "no")
