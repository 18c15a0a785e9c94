"""The bot's settings pointed at these fakes: the one place that knows which variable names which
fake (the demo, the tests and the benchmarks all start the bot this way)."""

from __future__ import annotations

import os
from pathlib import Path

from fakes.okx import FakeOkx
from fakes.telegram import FakeTelegram


def bot_env(
    tg: FakeTelegram,
    okx: FakeOkx | None,
    database_url: str,
    *,
    admins: str = "900",
    home: Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """Token, Bot API URL, OKX key and URL, admins and DATABASE_URL, then ``extra`` (e.g.
    ``PAYMENT_POLL_SECONDS="1"``). ``okx`` None: no OKX setting at all (Telegram Stars only, or
    test mode with ``OKX_MODE="simulated"`` in ``extra``). With ``home``: a bare environment
    for a subprocess (PATH, and HOME at ``home``, so no developer's ``.env`` or settings leak
    in)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)} if home is not None else {}
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_URL": tg.base_url.removesuffix("/bot"),
            "ADMIN_IDS": admins,
            "DATABASE_URL": database_url,
        }
    )
    if okx is not None:
        env.update(
            {
                "OKX_API_KEY": okx.api_key,
                "OKX_SECRET_KEY": okx.secret,
                "OKX_PASSPHRASE": okx.passphrase,
                "OKX_API_URL": okx.base_url,
            }
        )
    env.update(extra)
    return env
