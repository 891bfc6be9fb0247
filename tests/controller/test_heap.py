"""The heap keeper keeps full collections short and still reclaims garbage cycles."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable

import pytest

from canary.controller import heap
from tests.e2e.support import eventually


class Node:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


async def until(condition: Callable[[], bool]) -> None:
    async def probe() -> bool:
        return condition()

    await eventually(probe, timeout=60, what="the keeper", interval=0.01)


@pytest.fixture(autouse=True)
def unfrozen() -> object:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_what_is_alive_is_frozen_and_a_collection_leaves_it_alone() -> None:
    keeper = asyncio.create_task(heap.keep_heap(freeze_every=0.01, collect_every=3600))
    try:
        node = Node()
        garbage = weakref.ref(node)
        await until(lambda: gc.get_freeze_count() > 0)
        # Frozen while alive: when it dies, a collection does not walk it, and its cycle
        # outlives it...
        del node
        gc.collect()
        assert garbage() is not None
    finally:
        keeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await keeper
    assert gc.get_freeze_count() == 0  # ...until the keeper stops and unfreezes
    gc.collect()
    assert garbage() is None


async def test_the_periodic_settling_reclaims_cycles_that_died_frozen() -> None:
    keeper = asyncio.create_task(heap.keep_heap(freeze_every=0.01, collect_every=0.05))
    try:
        node = Node()
        garbage = weakref.ref(node)
        await until(lambda: gc.get_freeze_count() > 0)
        del node  # dies frozen
        await until(lambda: garbage() is None)  # the next settling collected it
        assert gc.get_freeze_count() > 0  # and froze again what is alive
    finally:
        keeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await keeper


def test_settling_collects_then_freezes() -> None:
    garbage = weakref.ref(Node())
    heap.settle()
    assert garbage() is None
    assert gc.get_freeze_count() > 0
