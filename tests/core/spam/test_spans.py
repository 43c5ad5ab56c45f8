"""Trailing sets restored from a checkpoint go on exactly as the originals would."""

from __future__ import annotations

import pickle

import pytest

from streams.core.spam.spans import TrailingSet


def _sightings() -> list[tuple[str, int]]:
    """Elements seen again (stale heap items), out of order, and new ones."""
    return [("a", 1), ("b", 2), ("a", 5), ("c", 6), ("b", 7), ("d", 8), ("a", 9), ("e", 3)]


def _state(s: TrailingSet) -> tuple[object, ...]:
    return s.top, s.marked, dict(s.entries)


@pytest.mark.parametrize("cap", [None, 3])
def test_a_restored_set_expires_and_evicts_as_the_original(cap: int | None) -> None:
    s = TrailingSet(10, cap)
    for i, (element, ts) in enumerate(_sightings()):
        s.add(element, ts, f"e{i}", mark=i % 2 == 0)
    s.remove("c")
    restored = pickle.loads(pickle.dumps(s))
    assert _state(restored) == _state(s)
    for i, (element, ts) in enumerate([("f", 12), ("b", 14), ("g", 16), ("h", 19), ("a", 30)]):
        for t in (s, restored):
            t.add(element, ts, f"later{i}", mark=True)
        assert _state(restored) == _state(s)  # each step expires or evicts the same elements
    assert restored.entries.keys() == {"a"}  # the window moved past all the others


def test_an_empty_set_round_trips() -> None:
    restored = pickle.loads(pickle.dumps(TrailingSet(10)))
    assert _state(restored) == _state(TrailingSet(10))
    assert restored.add("x", 5, "e") is not None and len(restored) == 1
