"""The conversation and detection benchmarks still run on tiny sizes: their tables have every
row, every customer got an invoice photo, replies kept each chat's order. No time is asserted."""

from __future__ import annotations

import asyncio
import math

from bench import conversation, detection


def _rows(markdown: str, first_cell: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows if row[0].strip().startswith(first_cell)]


def test_conversation_section_on_tiny_sizes() -> None:
    runs = asyncio.run(conversation.measure(quick=True))
    for run in runs["lockstep"] + runs["one"] + runs["rate"]:
        assert not run.errors, run.name
        assert run.missing == 0 and run.out_of_order == 0, run.name
        assert run.finished == run.customers, run.name
        photos = 0 if run.name.startswith("echo") else run.customers  # echo bots send none
        assert run.photos == photos, run.name
    names = [run.name for run in runs["lockstep"]]
    assert names == [
        "subsbot (polling)",
        "subsbot (webhook)",
        "echo-default (polling)",
        "echo-same (polling)",
        "qr-bare (polling)",
    ]
    subsbot = runs["lockstep"][0]
    assert list(subsbot.steps) == ["start", "plan", "coin", "invoice"]
    assert subsbot.updates == 4 * subsbot.customers
    assert all(len(s.latencies) == subsbot.customers for s in subsbot.steps.values())
    rate = runs["rate"]
    assert [r.updates for r in rate] == [5 * r.customers for r in rate]  # /start + /help + 3

    text = conversation.report(runs)
    assert text.startswith("### Conversation latency and throughput\n")
    assert len(_rows(text, "subsbot (")) == 2
    assert [r[0] for r in _rows(text, "") if r[0] in ("start", "plan", "coin")] == [
        "start",
        "plan",
        "coin",
    ] * 2  # the CPU table and the one-at-a-time table
    assert len(_rows(text, "invoice (allocation")) == 1
    assert len(_rows(text, "subsbot, 50 ms RTT")) == 3
    assert sum(line.startswith("- goal: ") for line in text.splitlines()) == 4
    assert all(("-> met" in g or "-> missed" in g) for g in text.splitlines() if "goal:" in g)


def test_detection_section_on_tiny_sizes() -> None:
    rows = asyncio.run(detection.measure(quick=True))
    assert [name for name, _, _ in rows] == ["60 s, simulated clock", "5 s, real clock"]
    for _, _, values in rows:
        assert values and all(math.isfinite(v) for v in values)  # every deposit was detected
    text = detection.report(rows)
    assert text.startswith("### Detection latency\n")
    table = _rows(text, "60 s") + _rows(text, "5 s")
    assert [(r[1], r[2]) for r in table] == [("3", "3"), ("2", "2")]
    assert sum(line.startswith("- goal: ") for line in text.splitlines()) == 2
