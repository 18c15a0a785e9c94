"""The HTTP side: one FastAPI app serving the Telegram webhook, ``/healthz`` and the JSON API.

    app = create_web_app(application, settings, webhook=True)

It runs next to the python-telegram-bot Application in the same process and event loop
(:mod:`bot.serve`); routes reach the bot's services through :func:`bot.web.deps.services`.
"""

from bot.web.app import create_web_app

__all__ = ["create_web_app"]
