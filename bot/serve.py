"""Run the bot in one of its two modes, with the HTTP server beside it when there is one.

- Long polling (WEBHOOK_URL unset): the Updater polls getUpdates. The HTTP server (``/healthz``
  and the JSON API) runs only when PORT is set, so two instances on a laptop never fight over
  a port.
- Webhook (WEBHOOK_URL set): no Updater; ``setWebhook`` with the secret and the update types,
  and uvicorn on HOST:PORT (default 8080) feeds the Application's update queue.

The Application and uvicorn share one event loop. Start-up binds the port first (a port in use
stops start-up with one line, before anything else happened), then starts the bot, then the
server; shutdown runs in the reverse order. SIGINT and SIGTERM stop it gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import BadRequest

from bot.app import build_application
from bot.config import Settings, mask_url
from bot.jobs import Timings
from bot.runner import running
from bot.services import BotApplication
from bot.version import package_version
from payments.clock import Clock
from payments.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

WEBHOOK_DEFAULT_PORT = 8080


@dataclass
class Served:
    application: BotApplication
    web: FastAPI | None
    address: tuple[str, int] | None  # where the HTTP server listens (None: no HTTP server)

    @property
    def base_url(self) -> str:
        assert self.address is not None, "no HTTP server in this mode"
        host, port = self.address
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def _server(app: FastAPI) -> Any:
    """uvicorn without its own signal handling: :func:`run` owns SIGINT/SIGTERM and stops the
    server and the bot in order (uvicorn would re-raise the signal after its own shutdown).
    uvicorn and FastAPI are imported only when there is an HTTP server (0.4 s, 30 MB)."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", server_header=False
    )
    return _Server(config)


def http_port(settings: Settings) -> int | None:
    """The port to serve HTTP on, or None for no server (long polling without PORT)."""
    if settings.webhook_url:
        return settings.port or WEBHOOK_DEFAULT_PORT
    return settings.port


def bind(host: str, port: int) -> socket.socket:
    """Bind before starting anything: a port in use is a one-line start-up error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"PORT: cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serving(
    settings: Settings,
    *,
    clock: Clock | None = None,
    timings: Timings | None = None,
    sock: socket.socket | None = None,
    poll_timeout: int = 10,
    rate_limit: bool = True,
) -> AsyncIterator[Served]:
    """The bot running in the mode the settings choose, and its HTTP server when it has one.
    ``sock`` (tests): a socket already bound, used instead of HOST:PORT."""
    webhook = bool(settings.webhook_url)
    port = http_port(settings)
    if sock is None and port is not None:
        sock = bind(settings.host, port)
    application = build_application(
        settings, clock=clock, timings=timings, webhook=webhook, rate_limit=rate_limit
    )
    try:
        async with running(application, polling=not webhook, poll_timeout=poll_timeout):
            if webhook:
                await _set_webhook(application, settings)
            if sock is None:
                yield Served(application, None, None)
                return
            from bot.web import create_web_app

            web = create_web_app(application, settings, webhook_mode=webhook)
            server = _server(web)
            task = asyncio.create_task(server.serve(sockets=[sock]), name="http-server")
            try:
                while not server.started:
                    if task.done():  # failed while starting: say why
                        await task
                        raise RuntimeError("the HTTP server stopped while starting")
                    await asyncio.sleep(0.01)
                address = sock.getsockname()[:2]
                log.info("HTTP server on %s:%d", address[0], address[1])
                yield Served(application, web, (str(address[0]), int(address[1])))
            finally:
                server.should_exit = True
                await task
    finally:
        if sock is not None:
            sock.close()


async def _set_webhook(application: BotApplication, settings: Settings) -> None:
    from bot.web.webhook import webhook_url

    assert settings.webhook_url is not None and settings.webhook_secret is not None
    url = webhook_url(settings.webhook_url)
    try:
        await application.bot.set_webhook(
            url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=Update.ALL_TYPES,
        )
    except BadRequest as exc:  # e.g. "bad webhook: An HTTPS URL must be provided for webhook"
        raise ConfigError(f"WEBHOOK_URL: Telegram refused the webhook {url} ({exc})") from None
    log.info("webhook set to %s", url)


async def run(settings: Settings) -> None:
    """``python -m bot run``: serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    async with serving(settings) as served:
        log.info(
            "subsbot %s is running as @%s (%s), database %s",
            package_version(),
            served.application.bot.username,
            "webhook" if settings.webhook_url else "long polling",
            mask_url(settings.database_url),  # without its password
        )
        await stop.wait()
        log.info("stopping")
