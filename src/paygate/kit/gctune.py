"""Garbage-collector settings for a serving process.

Measured (docs/performance.md): with CPython's default thresholds (700, 10, 10) a busy API process ran a
collection every few hundred requests, and the full (generation 2) ones walked every object the process had
built at start-up (SQLAlchemy, FastAPI, pydantic and the app) for tens of milliseconds with the event loop
stopped — the p99 of the card scenario was 110-160 ms with a p50 of 22 ms; without those pauses it was 36-45 ms.

:func:`tune_for_serving`, called once the app is built: collect once, then ``gc.freeze()`` the survivors (they
live as long as the process and are never scanned again), and raise the generation-0 threshold so that young
collections run less often (reference counting frees almost everything a request allocates; only cycles wait
for the collector, and at most ``gen0`` allocations' worth of them).
"""

from __future__ import annotations

import gc

__all__ = ["tune_for_serving"]


def tune_for_serving(gen0_threshold: int) -> None:
    """Freeze start-up objects and set the generation-0 threshold; ``gen0_threshold <= 0`` changes nothing."""
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, max(gen1, 20), max(gen2, 20))
