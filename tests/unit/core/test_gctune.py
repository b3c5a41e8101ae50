"""GC settings for serving processes: start-up objects frozen, young collections rarer, or nothing at 0."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from paygate.kit.gctune import tune_for_serving


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_serving_tuning_freezes_survivors_and_raises_the_young_threshold(restore_gc: None) -> None:
    gc.unfreeze()
    tune_for_serving(12_345)
    assert gc.get_threshold()[0] == 12_345
    assert gc.get_freeze_count() > 0


def test_zero_leaves_the_collector_alone(restore_gc: None) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    tune_for_serving(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
