"""What the soak harness knows at the end of a run, for :func:`tests.soak.invariants.check`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fakes.okx import FakeOkx
from fakes.receiver import WebhookReceiver
from fakes.telegram import FakeTelegram


@dataclass
class SoakRecord:
    database_url: str  # the bot's DATABASE_URL (sqlite:///... or postgresql://...)
    tg: FakeTelegram
    okx: FakeOkx
    receiver: WebhookReceiver | None
    logs: list[Path]  # every bot process's combined stdout/stderr file
    # token, OKX secret, passphrase, webhook secret, API token, merchant secret
    secrets: list[str]
    customers: dict[int, str]  # user id -> scenario name (see SCENARIOS in customers.py)
    blocked: set[int]  # customers who blocked the bot
    chats: dict[str, list[int]]  # plan code -> paid chat ids (from the plans file)
    # (chat id, update id) of each honest customer's /help written during a flood
    probes: list[tuple[int, int]] = field(default_factory=list)
    # (chat id, text) of every send in flight when a bot process was paused or killed, or
    # answered after the bot's read time-out
    in_flight: list[tuple[int, str]] = field(default_factory=list)
    # the paths of the merchant webhook URLs on the receiver (empty: not judged one by one)
    webhook_endpoints: list[str] = field(default_factory=list)
