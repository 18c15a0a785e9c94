"""A real aiohttp server on 127.0.0.1, in a thread with its own event loop: the base of the fakes.

Tests (and the code under test) run in their own event loop and talk to it over real HTTP, so
nothing is patched. A subclass answers every request in :meth:`dispatch` and may hook
:meth:`started` (in the server loop, once listening), :meth:`stopping` (called in the server loop
when stop() begins) and :meth:`cleanup` (in the server loop, before it closes).
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer:
    name = "fake server"
    client_max_size = 1024**2

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.root_url = ""  # http://127.0.0.1:PORT once started
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None  # set when stop() begins: ends hangs
        self._startup_error: BaseException | None = None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def started(self) -> None:
        """Hook: the server listens (runs in the server loop)."""

    def stopping(self) -> None:
        """Hook: stop() begins (runs in the server loop); wake whatever waits."""

    async def cleanup(self) -> None:
        """Hook: the loop is about to close (runs in the server loop)."""

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self.name)
        self._thread.daemon = True
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name} did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"{self.name} could not start") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None:
            return
        if stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        loop.call_soon_threadsafe(self.stopping)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._startup_error = exc
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.run_until_complete(self.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=self.client_max_size)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = int(port)
        self.root_url = f"http://{host}:{port}"
        await self.started()
