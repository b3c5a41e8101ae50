"""paygate.db.slots: who gets a connection slot, and in which order."""

from __future__ import annotations

import asyncio

import pytest

from paygate.db.slots import Slots


async def _turns(slots: Slots, plan: list[tuple[str, bool]]) -> list[str]:
    """Queue ``plan`` (name, urgent) behind a holder of every slot, then release one slot at a time."""
    served: list[str] = []

    async def one(name: str, urgent: bool) -> None:
        await slots.acquire(urgent=urgent)
        served.append(name)

    tasks = []
    for name, urgent in plan:
        tasks.append(asyncio.create_task(one(name, urgent)))
        await asyncio.sleep(0)  # queued in this order
    for _ in plan:
        slots.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return served


def test_waiters_are_served_urgent_first_then_in_arrival_order() -> None:
    async def body() -> list[str]:
        slots = Slots(1)
        await slots.acquire()  # the holder
        return await _turns(slots, [("a", False), ("b", True), ("c", False), ("d", True)])

    assert asyncio.run(body()) == ["b", "d", "a", "c"]


def test_a_newcomer_does_not_overtake_waiters() -> None:
    async def body() -> list[str]:
        slots = Slots(1)
        await slots.acquire()
        served: list[str] = []

        async def one(name: str) -> None:
            await slots.acquire()
            served.append(name)
            slots.release()

        waiter = asyncio.create_task(one("waiter"))
        await asyncio.sleep(0)
        slots.release()  # handed to the waiter, which has not run yet
        newcomer = asyncio.create_task(one("newcomer"))
        await asyncio.gather(waiter, newcomer)
        return served

    assert asyncio.run(body()) == ["waiter", "newcomer"]


def test_a_cancelled_waiter_takes_no_slot_and_loses_none() -> None:
    async def body() -> tuple[int, int]:
        slots = Slots(2)
        await slots.acquire()
        await slots.acquire()
        queued = asyncio.create_task(slots.acquire())
        handed = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        queued.cancel()  # cancelled while waiting
        slots.release()  # goes past the cancelled waiter to the next one
        handed.cancel()  # cancelled after being handed the slot: gives it back
        for task in (queued, handed):
            with pytest.raises(asyncio.CancelledError):
                await task
        slots.release()
        return slots.free, slots.waiting

    assert asyncio.run(body()) == (2, 0)


def test_no_slots_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        Slots(0)
