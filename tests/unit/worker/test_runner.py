"""The worker runner's pacing: what it waits after each kind of round (recorded, not slept)."""

from __future__ import annotations

import asyncio
from typing import Any

from paygate.worker.runner import Worker


class _Scripted:
    """A job whose rounds return the scripted results, then stops the worker."""

    name = "scripted"

    def __init__(self, worker_box: list[Worker], results: list[int | Exception], batch_size: int | None) -> None:
        self.results = list(results)
        self.box = worker_box
        if batch_size is not None:
            self.batch_size = batch_size

    async def run_once(self, gw: Any) -> int:
        if not self.results:
            self.box[0].stop()
            return 0
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def _pauses(results: list[int | Exception], *, batch_size: int | None) -> list[float]:
    """The pauses the runner asked for, in order, while running the scripted rounds (the last one follows the
    empty round that stops the worker)."""
    box: list[Worker] = []
    worker = Worker(None, [_Scripted(box, results, batch_size)], idle_min=0.05, idle_max=0.4)  # type: ignore[arg-type]
    box.append(worker)
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)
        await asyncio.sleep(0)

    worker._pause = record  # type: ignore[method-assign]
    asyncio.run(worker.run())
    return asked


def test_a_full_batch_runs_again_at_once_and_a_partial_one_waits_idle_min() -> None:
    assert _pauses([100, 100, 37, 100], batch_size=100) == [0.05, 0.05]


def test_nothing_due_backs_off_doubling_up_to_idle_max_and_work_resets_it() -> None:
    assert _pauses([0, 0, 0, 0, 0, 3, 0], batch_size=100) == [0.05, 0.1, 0.2, 0.4, 0.4, 0.05, 0.05, 0.1]


def test_a_job_without_a_batch_size_runs_again_at_once_after_any_work() -> None:
    assert _pauses([1, 1, 0], batch_size=None) == [0.05, 0.1]


def test_a_failing_round_counts_as_idle() -> None:
    assert _pauses([RuntimeError("boom"), 5], batch_size=100) == [0.05, 0.05, 0.05]
