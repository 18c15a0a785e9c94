"""The soak's invariants about the bot's logs: no unhandled exception, no secret (pure functions).

A log is what ``bot.logs.configure`` writes: records of ``<date> <time>,<ms> LEVEL logger:
message``, a traceback on the lines after its record. Unhandled errors reach the log as
``bot.handlers.errors`` words them ("unhandled error while handling an update", "job X failed"),
as ``bot.__main__`` does ("stopped on an unexpected error"), or from asyncio ("Task exception was
never retrieved", "Exception in callback"); any traceback at all is reported too (every
``log.exception`` in the product means something unexpected happened). Warnings from injected
faults are fine: only these markers count, whatever the level, plus CRITICAL records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import quote

RECORD = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (?P<level>[A-Z]+) ")
UNHANDLED = re.compile(
    "|".join(
        (
            r"Traceback \(most recent call last\)",
            r"unhandled error while handling an update",
            r" ERROR bot\.errors: job \S+ failed",
            r"stopped on an unexpected error",
            r"start-up task failed",
            r"Task exception was never retrieved",
            r"exception was never retrieved",
            r"Exception in callback",
            r"Exception in ASGI application",
            r"^\S+ \S+ CRITICAL ",
        )
    ),
    re.MULTILINE,
)
REDACTED = "<secret>"


def records(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each log record with its continuation lines (a traceback).
    Lines before the first record (a crash's output) form records of their own."""
    start, lines = 0, list[str]()
    for number, line in enumerate(text.splitlines(), 1):
        if RECORD.match(line) or not lines:
            if lines:
                yield start, "\n".join(lines)
            start, lines = number, []
        lines.append(line)
    if lines:
        yield start, "\n".join(lines)


def log_problems(logs: Mapping[str, str], expected: Sequence[str] = ()) -> list[str]:
    """Every record that shows an unhandled exception, unless it matches one of ``expected``
    (regexes for what a run provoked on purpose)."""
    allowed = [re.compile(p) for p in expected]
    out: list[str] = []
    for name, text in logs.items():
        for line, record in records(text):
            if not UNHANDLED.search(record) or any(a.search(record) for a in allowed):
                continue
            first = record.splitlines()[0][:200]
            out.append(f"{name}:{line}: unhandled exception: {first}")
    return out


def _forms(secret: str) -> set[str]:
    """The secret as it is and percent-encoded (as it would stand in a URL)."""
    return {secret, quote(secret, safe="")}


def secrets_in_logs(logs: Mapping[str, str], secrets: Sequence[str]) -> list[str]:
    """Every place a secret stands in a log (named by its position in ``secrets``, never shown)."""
    out: list[str] = []
    for name, text in logs.items():
        for number, line in enumerate(text.splitlines(), 1):
            for index, secret in enumerate(secrets, 1):
                if secret and any(form in line for form in _forms(secret)):
                    out.append(f"{name}:{number}: secret #{index} ({len(secret)} chars) is logged")
    return out


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (in either form) replaced, longest first."""
    forms = {form for secret in secrets if secret for form in _forms(secret)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text
