"""The one place paygate reads wall-clock time, so tests can move it."""

from __future__ import annotations

import time

__all__ = ["Clock", "clock"]


class Clock:
    """Unix seconds. ``offset`` lets tests jump forward (``clock.offset += 86400``)."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> int:
        return int(time.time()) + self.offset

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset * 1000


clock = Clock()
