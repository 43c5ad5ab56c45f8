"""IntMap against a plain dict: the same answers through merges, in-place writes, expiry and
pickling."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from streams.core.intmap import IntMap
from streams.core.spam.contacts import ContactMemory


@pytest.mark.parametrize("merge_at", [1, 7, 1 << 18])
def test_same_answers_as_a_dict(merge_at: int) -> None:
    rng = random.Random(merge_at)
    model: dict[int, int] = {}
    m = IntMap(merge_at=merge_at)
    for step in range(300):
        keys = list({rng.randrange(-500, 500) for _ in range(rng.randrange(1, 20))})
        values = [rng.randrange(10**12) for _ in keys]
        m.update(np.array(keys, np.int64), np.array(values, np.int64))
        model.update(zip(keys, values, strict=True))
        if step % 50 == 49:
            edge = rng.randrange(10**12)
            m.keep(lambda v, edge=edge: v >= edge)
            model = {k: v for k, v in model.items() if v >= edge}
        if step % 70 == 69:
            m = pickle.loads(pickle.dumps(m))
        probe = np.arange(-520, 520, dtype=np.int64)
        got, found = m.lookup(probe, -1)
        assert got.tolist() == [model.get(k, -1) for k in probe.tolist()]
        assert found.tolist() == [k in model for k in probe.tolist()]
        assert len(m) == len(model)
    again = IntMap.from_dict(model)
    assert again.lookup(probe, -1)[0].tolist() == [model.get(k, -1) for k in probe.tolist()]


def test_unsigned_keys_above_two_to_the_63() -> None:
    m = IntMap(np.uint64, np.int32, merge_at=2)
    big = [2**64 - 1, 2**63, 5]
    m.update(np.array(big, np.uint64), np.array([1, 2, 3], np.int32))
    assert m.lookup(np.array([2**63, 2**64 - 1, 6], np.uint64), 0)[0].tolist() == [2, 1, 0]


def test_a_contact_memory_checkpointed_as_a_dict_loads() -> None:
    old = ContactMemory.__new__(ContactMemory)
    old.__setstate__({"horizon_ms": 10, "last": {3 << 32 | 4: 77}, "_expiry": None})
    assert old.last.lookup(np.array([3 << 32 | 4]), -1)[0].tolist() == [77] and len(old) == 1


def test_pickles_keys_as_differences_and_loads_older_pickles() -> None:
    rng = np.random.default_rng(3)
    for dtype in (np.uint64, np.int64):
        keys = rng.integers(-(1 << 62), 1 << 62, 5000).astype(dtype)
        keys = np.unique(keys)
        m = IntMap(dtype, np.int32)
        m.update(keys, np.arange(len(keys), dtype=np.int32))
        state = m.__getstate__()
        assert (state["keys"] < 1 << 56).mean() > 0.99  # differences, not the keys
        back = pickle.loads(pickle.dumps(m))
        assert back.keys.dtype == dtype and (back.keys == m.keys).all()
        assert back.lookup(keys, -1)[0].tolist() == list(range(len(keys)))
        older = IntMap.__new__(IntMap)  # pickled before the differences: the keys themselves
        older.__setstate__({**vars(m), "recent": {}})
        assert (older.keys == m.keys).all()


def test_values_are_pickled_above_their_minimum_in_the_narrowest_type() -> None:
    times = IntMap()  # a month of millisecond times fits 32 bits above its first
    t = np.array([1_767_000_000_000, 1_767_000_000_000 + 30 * 86_400_000, -5], np.int64)
    times.update(np.array([1, 2, 3]), t)
    state = times.__getstate__()
    assert state["values"].dtype == np.uint64  # -5 .. 2026: the whole span
    times.update(np.array([3]), t[:1])
    assert times.__getstate__()["values"].dtype == np.uint32
    back = pickle.loads(pickle.dumps(times))
    assert back.values.dtype == np.int64 and back.lookup(np.array([2, 3]), 0)[0].tolist() == [
        t[1], t[0]]
    buckets = IntMap(np.uint64, np.int32)
    buckets.update(np.array([7, 9], np.uint64), np.array([-(2**31), 2**31 - 1], np.int32))
    assert pickle.loads(pickle.dumps(buckets)).values.tolist() == [-(2**31), 2**31 - 1]
