"""At most one answer per customer every few seconds to what the bot cannot read (free text,
stickers, unknown commands): a customer sending thousands of them gets one "I didn't understand"
per gap, not one each, so their flood cannot spend the bot's 30 messages a second that every
other customer's answers share. A bounded memory (LRU); per process (each replica answers at most
once per gap).
"""

from __future__ import annotations

from collections import OrderedDict

from payments.clock import Clock, SystemClock

GAP_MS = 5_000
CACHE_SIZE = 10_000


class ReplyThrottle:
    """user id -> when they were last answered; ``due`` says whether to answer now."""

    def __init__(
        self, clock: Clock | None = None, gap_ms: int = GAP_MS, size: int = CACHE_SIZE
    ) -> None:
        self.clock = clock or SystemClock()
        self.gap_ms = gap_ms
        self.size = size
        self._last: OrderedDict[int, int] = OrderedDict()

    def due(self, user_id: int) -> bool:
        """True (and remembered) when ``user_id`` was not answered in the last ``gap_ms``."""
        now = self.clock.now_ms()
        last = self._last.get(user_id)
        if last is not None and 0 <= now - last < self.gap_ms:  # a clock set back: answer
            return False
        self._last[user_id] = now
        self._last.move_to_end(user_id)
        while len(self._last) > self.size:
            self._last.popitem(last=False)
        return True
