"""The worker's heap policy: state frozen out of the cycle collector, cycles still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.agents.heap import FrozenHeap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_batch_freezes_what_is_alive_so_collections_skip_it() -> None:
    heap = FrozenHeap(full_seconds=600, clock=lambda: 0.0)
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    heap.batch_done()
    assert gc.get_freeze_count() >= before + len(kept)
    gone = cycle()
    heap.batch_done()
    del kept
    gc.collect()  # an ordinary collection does not walk frozen objects
    assert gone() is not None


def test_the_periodic_full_collection_frees_frozen_cycles() -> None:
    now = [0.0]
    heap = FrozenHeap(full_seconds=10, clock=lambda: now[0])
    gone = cycle()
    heap.batch_done()
    now[0] = 9.0
    heap.batch_done()
    gc.collect()
    assert gone() is not None  # not due yet
    now[0] = 10.0
    heap.batch_done()
    assert gone() is None
    assert gc.get_freeze_count() > 0  # and what is alive is frozen again
