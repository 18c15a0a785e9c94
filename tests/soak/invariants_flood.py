"""The soak's invariant about a flooding customer: every honest customer who wrote during the
flood got an answer within a second (a pure function of the fake Bot API's records)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

ANSWER_LIMIT_S = 1.0


def answered_in_time(
    probes: Sequence[tuple[int, int]],
    handed_out: Mapping[int, float],
    answers: Mapping[int, Sequence[float]],
    limit_s: float = ANSWER_LIMIT_S,
) -> list[str]:
    """Each probe (chat id, update id) was answered within ``limit_s`` of the fake Bot API
    handing that update to the bot: the first answer to the chat at or after that moment
    (``answers``: chat id -> when each answer reached the fake)."""
    out: list[str] = []
    for chat_id, update_id in probes:
        given = handed_out.get(update_id)
        who = f"customer {chat_id}"
        if given is None:
            out.append(f"{who}: update {update_id} (during the flood) never reached the bot")
            continue
        later = [ts for ts in answers.get(chat_id, ()) if ts >= given]
        if not later:
            out.append(f"{who}: update {update_id} (during the flood) was never answered")
        elif min(later) - given > limit_s:
            took = min(later) - given
            out.append(
                f"{who}: update {update_id} (during the flood) answered after {took:.2f} s,"
                f" more than {limit_s} s"
            )
    return out
