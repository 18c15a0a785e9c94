"""A bounded memory of which (customer, language) pairs were written to the database lately."""

from __future__ import annotations

import time
from collections import OrderedDict

REFRESH_S = 600.0
CACHE_SIZE = 10_000


class SeenRecently:
    """(user id, language) -> when it was last written; an LRU of bounded size."""

    def __init__(self, refresh_s: float = REFRESH_S, size: int = CACHE_SIZE) -> None:
        self.refresh_s = refresh_s
        self.size = size
        self._seen: OrderedDict[tuple[int, str | None], float] = OrderedDict()

    def due(self, key: tuple[int, str | None]) -> bool:
        now = time.monotonic()
        last = self._seen.get(key)
        if last is not None and now - last < self.refresh_s:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    def forget(self, user_id: int) -> None:
        for key in [k for k in self._seen if k[0] == user_id]:
            del self._seen[key]
