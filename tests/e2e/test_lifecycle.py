"""Starting and stopping the bot, as the soak found them wanting:

* a Bot API call that times out while starting (getMe, the bootstrap deleteWebhook) is tried
  again instead of stopping start-up (the process exited on one slow answer);
* a graceful stop lets the jobs that are running finish and starts no new one (a job that fired
  while stop() waited for the running ones was cancelled by the scheduler's shutdown, logged as
  an error, and ran on after the services had been closed)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.services import BotContext
from tests.botkit import WEBHOOK_SECRET, BotWorld


async def test_stopping_waits_for_running_jobs_and_starts_no_new_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    async def slow(context: BotContext) -> None:
        events.append("slow started")
        await asyncio.sleep(0.6)
        events.append("slow finished")

    async def frequent(context: BotContext) -> None:
        events.append("frequent started")
        await asyncio.sleep(0.5)
        context.services  # noqa: B018 (raises once the services are closed)
        events.append("frequent finished")

    caplog.set_level(logging.INFO)
    async with BotWorld.open(tmp_path) as world:
        # stopping the updater ends with one last getUpdates: Telegram is slow to answer it
        last_poll = world.tg.hold_next(
            lambda method, p: method == "getUpdates" and p.get("timeout") == 0
        )

        async def answer_late() -> None:
            await asyncio.to_thread(last_poll.taken.wait, 30)
            await asyncio.sleep(0.6)
            last_poll.release()

        async with world.running() as application:
            queue = application.job_queue
            assert queue is not None
            queue.run_once(slow, 0, name="slow")
            await world.tg.wait_for(lambda: "slow started" in events, what="the slow job")
            queue.run_repeating(frequent, 0.05, first=0.2, name="frequent")
            releasing = asyncio.create_task(answer_late())
            # leaving running(): stopping begins while "slow" runs, before "frequent" first
            # fires, and lasts longer than that (the last getUpdates)
        await releasing
    assert "slow finished" in events
    assert "frequent started" not in events  # no job starts once stopping has begun
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


@pytest.mark.parametrize("method", ["getMe", "deleteWebhook"])
async def test_a_telegram_time_out_while_starting_is_tried_again(
    tmp_path: Path, method: str
) -> None:
    async with BotWorld.open(tmp_path) as world:
        world.tg.fail_next(method, "timeout", hang_s=6)  # longer than PTB's 5 s read time-out
        async with world.running():
            alice = world.customer(101)
            assert "Welcome" in (await alice.send("/start", timeout=30)).plain
        assert len(world.tg.calls(method)) >= 2


async def test_a_telegram_hiccup_in_a_job_is_a_warning_and_the_job_runs_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[str] = []

    async def job(context: BotContext) -> None:
        runs.append("run")
        await context.bot.get_chat(-1001)  # 5xx three times: more than the limiter retries

    caplog.set_level(logging.INFO)
    async with BotWorld.open(tmp_path) as world:
        world.tg.add_chat(-1001)
        world.tg.fail_next("getChat", "502", count=3)
        async with world.running() as application:
            assert application.job_queue is not None
            application.job_queue.run_repeating(job, 0.3, first=0, name="hiccup")
            await world.tg.wait_for(lambda: len(runs) >= 2, what="the job to run again")
    failed = [r for r in caplog.records if r.name == "bot.errors"]
    assert failed and all(r.levelno == logging.WARNING for r in failed), failed
    assert "hiccup" in failed[0].getMessage()


async def test_a_webhook_request_the_client_abandons_mid_body_is_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # soak finding: Telegram gave up on a delivery (its time-out) while the replica was still
    # starting; reading the body then raised ClientDisconnect, logged as an unhandled error
    caplog.set_level(logging.INFO)
    async with BotWorld.open(tmp_path) as world, world.serving(webhook=True) as served:
        assert served.address is not None
        _reader, writer = await asyncio.open_connection(*served.address)
        head = (
            "POST /telegram/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {WEBHOOK_SECRET}\r\n"
            "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        )
        writer.write(head.encode() + b'{"update_id": 1, ')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()  # gone before the rest of the body
        await world.tg.wait_for(
            lambda: any(
                "abandoned" in r.getMessage() or r.levelno >= logging.ERROR for r in caplog.records
            ),
            what="the server to notice",
        )
        alice = world.customer(101)
        assert "Welcome" in (await alice.send("/start")).plain  # still serving
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
