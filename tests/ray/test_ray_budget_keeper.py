"""The run's budget across workers (`BudgetKeeper`, the object a Ray actor holds), driven
directly: reservations of a worker Ray restarted are kept as spent and free the waiters."""

from __future__ import annotations

import asyncio

from model_registry.clients._remote import BudgetKeeper


async def test_a_settled_reservation_makes_room_for_a_waiting_one() -> None:
    keeper = BudgetKeeper(max_cost=1.0, spent=0.0)
    ticket, _ = await keeper.acquire("worker-a", 0.6)
    waiting = asyncio.create_task(keeper.acquire("worker-b", 0.6))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # 0.6 + 0.6 > 1.0 while the first is open

    assert ticket is not None
    await keeper.settle(ticket, 0.1)

    second, spent = await asyncio.wait_for(waiting, 30)
    assert second is not None and spent == 0.1


async def test_a_restarted_workers_open_reservations_are_kept_as_spent() -> None:
    keeper = BudgetKeeper(max_cost=1.0, spent=0.2)
    await keeper.acquire("worker-a", 0.5)
    waiting = asyncio.create_task(keeper.acquire("worker-b", 0.5))
    await asyncio.sleep(0.1)
    assert not waiting.done()

    await keeper.orphaned("worker-a")  # Ray restarted worker-a: its call's outcome unknown

    refused, spent = await asyncio.wait_for(waiting, 30)
    assert refused is None and spent == 0.7  # 0.2 recorded + 0.5 kept: 0.5 more cannot fit
    assert await keeper.spent() == 0.7
    assert (await keeper.acquire("worker-b", 0.01))[0] is None  # the budget stays closed
