"""``LogThrottle``: lets a log line through at most once per period per key, so a flood of bad
messages (every camera frame in an unsupported encoding, 50 stale joint states a second) leaves a
readable log. The counters beside it (``bad_messages``, ``dropped_stale``) still count every one."""

from __future__ import annotations

import math
import time


class LogThrottle:
    """``throttle(key)`` is true at most once per ``period_s`` for each ``key``."""

    def __init__(self, period_s: float = 5.0) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) >= self.period_s:
            self._last[key] = now
            return True
        return False
