"""A flooding customer in the soak, and the honest customers' answers measured while it floods.

The flooder is a Telegram user who never buys: through the whole first phase it sends bursts of
free text, commands and presses of buttons that mean nothing, while every other customer buys
(under the run's faults and crashes, which its own answers get too). Then, with the faults off
and no crash left, :func:`measured_flood` has it queue a big flood in pieces while every honest
customer who can still be reached writes /help once, one after another, in the middle of it.
Those updates are the probes of :func:`tests.soak.invariants_flood.answered_in_time` ("every
honest customer got an answer within a second"), judged on the fake Bot API's own records: when
it handed each probe to the bot and when the bot's answer reached it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from fakes.telegram import FakeTelegram

FLOODER = 9_999
HELP = "/help"
HELP_MARK = "How it works"  # the first words of the answer to /help (bot/texts/locale/en, "help")


@dataclass(frozen=True)
class Probe:
    chat_id: int
    update_id: int


@dataclass
class Flooder:
    tg: FakeTelegram
    rng: random.Random
    user_id: int = FLOODER
    sent: int = 0
    bursts: int = 0
    probes: list[Probe] = field(default_factory=list)

    def burst(self, size: int) -> None:
        """``size`` updates at once (queued before the bot can fetch any of them): mostly free
        text, some commands, some presses of data no button carries."""
        with self.tg._lock:
            target = self.tg.last(self.user_id)
            for n in range(size):
                roll = self.rng.random()
                if roll < 0.15:
                    self.tg.send_text(self.user_id, self.rng.choice(("/start", "/help", "/plans")))
                elif roll < 0.25 and target is not None:
                    self.tg.press(self.user_id, target, f"flood:{n}")
                else:
                    self.tg.send_text(self.user_id, f"spam {self.sent + n} " + "x" * (n % 50))
            self.sent += size
            self.bursts += 1

    async def keep_flooding(self, size: int = 100, every_s: float = 2.0) -> None:
        """A burst every ``every_s`` until cancelled."""
        self.tg.user(self.user_id, first_name="Flooder", language_code="en")
        while True:
            self.burst(size)
            await asyncio.sleep(every_s)

    def probe(self, chat_id: int) -> Probe:
        """An honest customer writes /help; its update is remembered as a probe."""
        with self.tg._lock:
            self.tg.send_text(chat_id, HELP)
            found = Probe(chat_id, self.tg.last_update_id)
        self.probes.append(found)
        return found


async def measured_flood(
    flooder: Flooder,
    honest: Sequence[int],
    *,
    size: int = 2000,
    pieces: int = 10,
    every_s: float = 0.1,
    wait_s: float = 60.0,
) -> list[Probe]:
    """The honest customers write /help one every ``every_s`` (ten a second: a third of the 30
    messages a second Telegram allows the bot in all, which their answers share with the
    flooder's and the outbox's) while the flooder's ``size`` updates arrive in ``pieces`` bursts
    spread over the same time; then waits (up to ``wait_s``) until each probe was answered."""
    count = len(honest)
    probes: list[Probe] = []
    if count == 0:
        flooder.burst(size)
    for i, chat_id in enumerate(honest):
        due = (i + 1) * pieces // count - i * pieces // count  # bursts before this probe
        for _ in range(due):
            flooder.burst(size // pieces)
        probes.append(flooder.probe(chat_id))
        await asyncio.sleep(every_s)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        if all(_answered(flooder.tg, p) for p in probes):
            break
        await asyncio.sleep(0.1)
    return probes


def _answered(tg: FakeTelegram, probe: Probe) -> bool:
    given = tg.handed_out.get(probe.update_id)
    return given is not None and any(
        ts >= given for ts in help_answers(tg, [probe.chat_id]).get(probe.chat_id, [])
    )


def help_answers(tg: FakeTelegram, chats: Sequence[int]) -> dict[int, list[float]]:
    """chat id -> when each answer to /help the fake accepted reached it."""
    wanted = {str(c) for c in chats}
    found: dict[int, list[float]] = {}
    for r in tg.requests:
        chat = str(r.params.get("chat_id"))
        text = str(r.params.get("text") or "")
        if r.method == "sendMessage" and r.response_ok and chat in wanted and HELP_MARK in text:
            found.setdefault(int(chat), []).append(r.ts)
    return found


def explain_late(tg: FakeTelegram, probe: Probe, limit_s: float, window_s: float = 60.0) -> str:
    """For a probe answered late (or never): what else of that customer's the bot had in hand,
    from the fake's records (the customer's updates handed out in the ``window_s`` before it,
    and the Bot API calls naming the customer until the answer), times relative to the probe."""
    given = tg.handed_out.get(probe.update_id)
    if given is None:
        return f"customer {probe.chat_id}: update {probe.update_id} never handed out"
    answers = [t for t in help_answers(tg, [probe.chat_id]).get(probe.chat_id, []) if t >= given]
    until = min(answers) if answers else given + window_s
    if until - given <= limit_s:
        return ""
    parts = []
    for update_id, (kind, users) in sorted(tg.update_senders.items()):
        at = tg.handed_out.get(update_id)
        if probe.chat_id in users and at is not None and given - window_s <= at <= until:
            parts.append(f"update {update_id} {kind} at {at - given:+.2f}")
    for r in list(tg.requests):
        named = {str(r.params.get("chat_id")), str(r.params.get("user_id"))}
        if str(probe.chat_id) in named and given - window_s <= r.ts <= until:
            done = "" if r.answered_at is None else f" (answered {r.answered_at - given:+.2f})"
            parts.append(f"{r.method} {r.params.get('chat_id')} at {r.ts - given:+.2f}{done}")
    return f"customer {probe.chat_id}, update {probe.update_id}: " + "; ".join(parts)
