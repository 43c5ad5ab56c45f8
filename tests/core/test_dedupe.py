"""SeenIds: repeats dropped within the horizon, forgotten after it, the same after a pickle."""

from __future__ import annotations

import pickle

import pytest

from streams.core.dedupe import SeenIds
from streams.core.intmap import IntMap
from streams.core.windows import HOUR_MS

T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def ev(i: int | str, ts: int) -> dict[str, object]:
    return {"event_id": f"e{i}", "ts": ts}


def ids(events: list[dict[str, object]]) -> list[object]:
    return [e["event_id"] for e in events]


@pytest.fixture(params=[4, 1 << 18], ids=["merging", "recent"])
def merge_at(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Ids merged into the arrays every 4, or kept in the dict of recent ones."""
    init = IntMap.__init__

    def small(self: IntMap, *args: object) -> None:
        init(self, *args, merge_at=request.param)  # type: ignore[arg-type]

    monkeypatch.setattr(IntMap, "__init__", small)
    return int(request.param)


def test_first_copy_kept_in_a_batch_and_across_batches(merge_at: int) -> None:
    seen = SeenIds(horizon_ms=10 * HOUR_MS)
    first = [ev(i, T0 + i) for i in range(10)]
    assert ids(seen.fresh(first + [ev(3, T0 + 50)])) == ids(first)
    again = [ev(i, T0 + 100 + i) for i in range(5, 15)]
    assert ids(seen.fresh(again)) == [f"e{i}" for i in range(10, 15)]
    assert seen.repeats == 1 + 5 and len(seen) == 15


def test_ids_are_forgotten_after_the_horizon_and_not_before(merge_at: int) -> None:
    seen = SeenIds(horizon_ms=3 * HOUR_MS)
    seen.fresh([ev("old", T0 + 5)])
    seen.fresh([ev(i, T0 + 3 * HOUR_MS + i) for i in range(5)])  # bucket T0 still within
    assert seen.fresh([ev("old", T0 + 6)]) == []
    seen.fresh([ev(i, T0 + 4 * HOUR_MS + i) for i in range(5, 10)])  # T0 + 1 h <= first
    assert ids(seen.fresh([ev("old", T0 + 7)])) == ["eold"]  # a late repeat, kept: counts as late
    assert len(seen) == 10  # e0–e9: the late copy's hour is past the horizon already


def test_a_pickled_set_drops_the_same_repeats(merge_at: int) -> None:
    seen = SeenIds(horizon_ms=10 * HOUR_MS)
    seen.fresh([ev(i, T0 + i) for i in range(9)])
    copy = pickle.loads(pickle.dumps(seen))
    batch = [ev(i, T0 + 20 + i) for i in range(5, 12)]
    assert ids(copy.fresh(batch)) == ids(seen.fresh(batch)) == ["e9", "e10", "e11"]
    assert len(copy) == len(seen) == 12 and copy.repeats == seen.repeats == 4


def test_a_checkpoint_of_id_strings_loads_as_hashes() -> None:
    old = SeenIds.__new__(SeenIds)
    old.__setstate__({
        "horizon_ms": 10 * HOUR_MS, "bucket_ms": HOUR_MS, "ids": {"e1": T0, "e2": T0},
        "buckets": {T0: ["e1", "e2"]}, "stream_time": T0 + 9, "repeats": 3,
    })  # fmt: skip
    assert ids(old.fresh([ev(1, T0 + 10), ev(3, T0 + 11)])) == ["e3"]
    assert len(old) == 3 and old.repeats == 4
