"""Pacing per robot: never more than the provider's limit in any sliding minute."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable


class SlidingWindowPacer:
    """Reserves send slots per key so at most `limit` fall in any `window` seconds.

    The window carries a margin over the provider's 60 s so network jitter between our clock
    and theirs can never squeeze a 21st message into their minute.
    """

    def __init__(self, limit: int = 20, window: float = 62.0, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._sent: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def seed(self, key: str, ages_seconds: Iterable[float]) -> None:
        """Account for sends made before this process started (read from the ledger)."""
        now = self.clock()
        with self._lock:
            stamps = self._sent[key]
            for age in sorted(ages_seconds, reverse=True):
                if age < self.window:
                    stamps.append(now - age)

    def reserve(self, key: str) -> float:
        """0.0 and a reserved slot if `key` may send now, else the seconds to wait."""
        now = self.clock()
        with self._lock:
            stamps = self._sent[key]
            while stamps and now - stamps[0] >= self.window:
                stamps.popleft()
            if len(stamps) < self.limit:
                stamps.append(now)
                return 0.0
            return stamps[0] + self.window - now
