"""PartitionEngine: rows in the sink's column order, the same rows however the stream is cut
into batches, after a pickle round trip (a checkpoint) mid-stream, and with repeats dropped."""

from __future__ import annotations

import pickle
import random
from typing import Any

import numpy as np
import pytest

from sinks import tables
from streams.core import engine as engine_module
from streams.core.engine import (
    LATE_EVENT_COLUMNS,
    PAIR_COUNT_COLUMNS,
    REPLY_RECORD_COLUMNS,
    SPAM_ALERT_COLUMNS,
    TIER_MIXING_COLUMNS,
    WINDOW_AGGREGATE_COLUMNS,
    EngineConfig,
    Output,
    PartitionEngine,
    _WindowCounts,
)
from streams.core.responsiveness import ResponsivenessAggregator
from streams.core.windows import NO_TIME
from tests.core.helpers import DAY, HOUR, MIN, T0, ev


def test_row_layouts_match_the_sink_tables() -> None:
    assert tables.REPLY_RECORDS.insert_columns == REPLY_RECORD_COLUMNS
    assert tables.WINDOW_AGGREGATES.insert_columns == WINDOW_AGGREGATE_COLUMNS
    assert tables.PAIR_COUNTS.insert_columns == PAIR_COUNT_COLUMNS
    assert tables.TIER_MIXING.insert_columns == TIER_MIXING_COLUMNS
    assert tables.LATE_EVENTS.insert_columns == LATE_EVENT_COLUMNS
    assert tables.SPAM_ALERTS.insert_columns == SPAM_ALERT_COLUMNS


def stream(n: int = 3000, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.sample(range(40), 2)
        # follower counts jump around: tiers move mid-batch, and must still not depend on cuts
        out.append(ev(f"e{i}", f"u{a}", f"u{b}", T0 + i * 37_000 + rng.randrange(0, MIN),
                      followers=rng.choice([5, 500, 50_000])))  # fmt: skip
    return out


def latest(outputs: list[Output]) -> dict[str, dict[Any, tuple[Any, ...]]]:
    """Per table, the row with the highest version per key (what a ReplacingMergeTree keeps)."""
    keys = {"window_aggregates": 6, "pair_counts": 4, "tier_mixing": 5, "late_events": 4,
            "reply_records": 1, "spam_alerts": 1}  # fmt: skip
    best: dict[str, dict[Any, tuple[Any, ...]]] = {t: {} for t in keys}
    for out in outputs:
        for table, rows in out.tables().items():
            for row in rows:
                k = row[: keys[table]]
                if k not in best[table] or row[-1] >= best[table][k][-1]:
                    best[table][k] = row
    return best


def run(events: list[dict[str, Any]], cut: int, checkpoint_at: int | None = None) -> Any:
    engine = PartitionEngine(EngineConfig(), "t", 0)
    outs = []
    messages: list[list[dict[str, Any]] | None] = [events[i:i + 50]
                                                   for i in range(0, len(events), 50)]
    messages.append(None)  # end of input
    for i in range(0, len(messages), cut):
        if checkpoint_at is not None and i >= checkpoint_at:
            engine = pickle.loads(pickle.dumps(engine))
            checkpoint_at = None
        outs.append(engine.process(messages[i:i + cut]))
    outs.append(engine.emit_open())
    return latest(outs)


def test_same_rows_whatever_the_batches_and_after_a_checkpoint() -> None:
    events = stream()
    one = run(events, cut=1)
    assert one["window_aggregates"] and one["reply_records"] and one["pair_counts"]
    assert run(events, cut=7) == one
    assert run(events, cut=1000) == one
    assert run(events, cut=3, checkpoint_at=20) == one


def test_released_events_run_together_and_give_the_rows_of_runs_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A live take releases a few dozen events: they wait (``RUN_EVENTS``, or a pause) and run
    together, with the rows of running every release at once — also when a checkpoint is taken
    while some wait."""
    rng = random.Random(7)
    dense = [ev(f"d{i}", f"u{a}", f"u{b}", T0 + i * 20 + rng.randrange(0, 2000))
             for i in range(12_000) for a, b in [rng.sample(range(30), 2)]]  # fmt: skip
    sparse = [ev(f"s{i}", f"u{a}", f"u{b}", T0 + 241 * 1000 + i * 700)
              for i in range(600) for a, b in [rng.sample(range(30), 2)]]  # fmt: skip
    messages = [(dense + sparse)[i : i + 35] for i in range(0, 12_600, 35)]

    def rows(checkpoint_at: int = -1) -> tuple[Any, list[bool]]:
        engine, outs, runs = PartitionEngine(EngineConfig(), "t", 0), [], []
        for i, m in enumerate(messages):
            if 0 <= checkpoint_at <= i and engine._ready:
                engine = pickle.loads(pickle.dumps(engine))  # while events wait
                checkpoint_at = -2
            before = engine.stream_time
            outs.append(engine.process([m]))
            runs.append(engine.stream_time != before)
            if i == len(messages) // 2:
                outs.append(engine.emit_open())  # a pause: what waits runs
                assert not engine._ready
        outs.append(engine.process([None]))
        assert checkpoint_at < 0  # taken, if asked for
        return latest(outs), runs

    together, runs = rows()
    assert together["window_aggregates"] and together["reply_records"]
    assert sum(runs) <= len(messages) // 6  # gathered: most takes ran nothing
    assert rows(checkpoint_at=101)[0] == together
    monkeypatch.setattr(engine_module, "RUN_EVENTS", 200)
    by_count, more = rows()
    assert by_count == together and sum(runs) < sum(more) <= len(messages) // 3
    monkeypatch.setattr(engine_module, "RUN_EVENTS", 1)
    at_once, most = rows()
    assert at_once == together and sum(most) > len(messages) // 2  # a run a take, once released


def test_emitting_what_is_due_gives_the_rows_of_a_scan_of_every_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The aggregator scans its windows only once one is due (else it re-emits just the closed
    ones that changed): every batch's rows are a full scan's — from a start with posts alone
    (no window yet), across hours of posts alone (stream time moves on, every window closes,
    no new one opens) and across a quiet spell in which every window became final and was
    dropped."""
    monkeypatch.setattr(engine_module, "RUN_EVENTS", 1)  # every batch's release runs at once
    cfg = EngineConfig(horizon_ms=6 * HOUR)
    first = stream(1000)
    end = first[-1]["ts"]

    def posts(at: int) -> list[dict[str, Any]]:
        return [ev(f"p{at}-{i}", "u1", None, at + i * 10 * MIN, kind="POST") for i in range(18)]

    events = posts(T0 - 3 * HOUR) + first + posts(end + 10 * MIN) + [
        {**e, "event_id": f"{era}{e['event_id']}", "ts": e["ts"] + shift}
        for era, shift, seed in (("b", end - T0 + 3 * HOUR, 4), ("c", 2 * (end - T0) + 3 * DAY, 5))
        for e in stream(1000, seed)
    ]  # fmt: skip
    fast, full = PartitionEngine(cfg, "t", 0), PartitionEngine(cfg, "t", 0)
    emitted, held = [], []
    for i in range(0, len(events), 7):
        full.agg._next_due = NO_TIME  # a scan of every window, as before the shortcut
        rows = fast.process([events[i : i + 7]]).window_aggregates
        assert rows == full.process([events[i : i + 7]]).window_aggregates
        emitted.append(len(rows))
        held.append(fast.agg.state_size()["windows"])
    assert sum(emitted) > 1000 and max(held) > 200 and min(held[len(held) * 2 // 3 :]) < 20


def test_an_aggregator_checkpointed_before_due_times_scans_once_and_goes_on_the_same() -> None:
    events = stream(1200)
    engine = PartitionEngine(EngineConfig(), "t", 0)
    engine.process([events[:600]])
    older = pickle.loads(pickle.dumps(engine))
    state = older.agg.__getstate__()
    del state["_next_due"], state["_redo"]  # as pickled before they were kept
    older.agg = ResponsivenessAggregator.__new__(ResponsivenessAggregator)
    older.agg.__setstate__(state)
    for i in range(600, 1200, 7):
        assert older.process([events[i : i + 7]]) == engine.process([events[i : i + 7]])


def test_repeats_are_dropped_and_end_of_input_releases_the_tail() -> None:
    events = stream(400)
    once = run(events, cut=5)
    twice = run(events + events[:200], cut=5)
    assert twice == once
    engine = PartitionEngine(EngineConfig(), "t", 0)
    engine.process([events])
    assert len(engine.reorder) > 0  # the last two minutes wait for later events …
    engine.process([None])
    assert len(engine.reorder) == 0  # … until the input says it ended


def test_late_events_are_counted_not_dropped() -> None:
    cfg = EngineConfig(window_sizes=(HOUR,))
    engine = PartitionEngine(cfg, "t", 2)
    # c moves stream time 3 min past b, so b is released: stream time is then past T0's hour
    engine.process([[ev("a", "x", "y", T0), ev("b", "y", "x", T0 + 2 * HOUR),
                     ev("c", "y", "x", T0 + 2 * HOUR + 3 * MIN)]])  # fmt: skip
    out = engine.process([[ev("late", "x", "z", T0 + 5 * MIN)], None])
    assert out.late_events == [(HOUR, T0, "t", 2, 1, 1)]
    assert engine.state_size()["event_ids"] == 4


def test_snapshots_count_from_their_own_time_however_early_they_arrive() -> None:
    """A snapshot moves its account's tier for events from its ``ts`` on: the rows are the same
    whether every snapshot came before the first event or each just before the stream reached
    it (snapshots and interactions are separate topics, read concurrently)."""
    events = [dict(e, followers=None) for e in stream()]
    rng = random.Random(4)
    end = events[-1]["ts"]
    snaps = sorted(
        ({"account": f"u{a}", "ts": T0 + rng.randrange(0, end - T0),
          "followers": rng.choice([5, 500, 50_000, 5_000_000])}
         for a in range(40) for _ in range(3)),
        key=lambda s: s["ts"],
    )  # fmt: skip

    def run_with(cut: int, early: bool) -> Any:
        engine = PartitionEngine(EngineConfig(), "t", 0)
        if early:
            engine.observe_snapshots(snaps)
        messages = [events[i:i + 50] for i in range(0, len(events), 50)]
        outs, sent = [], 0
        for i in range(0, len(messages), cut):
            group = messages[i:i + cut]
            upto = max(e["ts"] for m in group for e in m)
            if not early:
                due = [s for s in snaps[sent:] if s["ts"] <= upto]
                engine.observe_snapshots(due)
                sent += len(due)
            outs.append(engine.process(list(group)))
        outs.append(engine.process([None]))
        outs.append(engine.emit_open())
        return latest(outs)

    early = run_with(cut=1000, early=True)
    assert run_with(cut=3, early=False) == early
    assert run_with(cut=1, early=False) == early
    without = run(events, cut=1000)
    assert early["tier_mixing"] != without["tier_mixing"]  # the snapshots did move tiers
    assert len({r[3] for r in early["tier_mixing"].values()} - {"base"}) >= 3


def test_a_checkpoint_carries_only_the_counts_that_are_not_zero() -> None:
    engine = PartitionEngine(EngineConfig(), "t", 0)
    engine.process([stream(400)])
    engine.emit_open()  # run what was released
    dense = engine.agg._counts
    assert dense.any()
    assert len(pickle.dumps(engine.agg.__getstate__()["_counts"])) < dense.nbytes / 4
    back = pickle.loads(pickle.dumps(engine.agg))
    assert back._counts.dtype == dense.dtype and (back._counts == dense).all()
    old = object.__new__(type(engine.agg))  # a checkpoint from before the packing: dense
    old.__setstate__(dict(vars(engine.agg)))
    assert (old._counts == dense).all()
    at = np.flatnonzero(dense.reshape(-1))  # packed with positions, before the gaps
    positions = {**engine.agg.__getstate__(), "_counts": (dense.shape, at, dense.reshape(-1)[at])}
    older = object.__new__(type(engine.agg))
    older.__setstate__(positions)
    assert (older._counts == dense).all()


def test_a_checkpoint_narrows_int64_arrays_and_restores_them_as_they_were() -> None:
    engine = PartitionEngine(EngineConfig(), "t", 0)
    engine.process([stream(400)])
    engine.emit_open()  # run what was released
    arrays = {k: v for k, v in vars(engine.agg).items() if isinstance(v, np.ndarray)}
    state = engine.agg.__getstate__()
    narrowed = [k for k, v in arrays.items() if k != "_counts" and state[k].dtype != v.dtype]
    assert "_s_rid" in narrowed and "_live_slot" in narrowed  # small values: narrower types
    back = pickle.loads(pickle.dumps(engine.agg))
    for k, v in arrays.items():
        assert getattr(back, k).dtype == v.dtype and (getattr(back, k) == v).all(), k


def test_a_pair_count_is_written_again_only_when_it_changed() -> None:
    engine = PartitionEngine(EngineConfig(window_sizes=(HOUR,)), "t", 0)
    engine.process([[ev("a", "x", "y", T0), ev("b", "y", "z", T0 + MIN)], None])  # None: released
    first = engine.emit_open().pair_counts
    assert sorted(r[2:5] for r in first) == [("x", "y", 1), ("y", "z", 1)]
    assert engine.emit_open().pair_counts == []  # nothing changed
    engine.process([[ev("c", "x", "y", T0 + 2 * MIN)], None])
    assert [r[2:5] for r in engine.emit_open().pair_counts] == [("x", "y", 2)]
    restored = pickle.loads(pickle.dumps(engine))
    restored.process([[ev("d", "y", "z", T0 + 3 * MIN)], None])
    assert [r[2:5] for r in restored.emit_open().pair_counts] == [("y", "z", 2)]


def test_window_counts_pickle_as_columns_and_load_from_dicts() -> None:
    counts = _WindowCounts()
    counts.add(3600, np.array([0, 0, 3600]), np.array([5 << 31 | 2, 1, 1]))
    counts.add(3600, np.array([0]), np.array([1]))
    assert "windows" not in counts.__getstate__()  # columns, not dicts
    back = pickle.loads(pickle.dumps(counts))
    assert back.windows == counts.windows and back.dirty == counts.dirty
    older = _WindowCounts.__new__(_WindowCounts)  # as pickled before the columns
    older.__setstate__({"windows": dict(counts.windows), "dirty": dict(counts.dirty)})
    def rows(counts: _WindowCounts) -> list[tuple[int, int, list[int], list[int]]]:
        return [(size, start, keys.tolist(), n) for size, start, keys, n in counts.take(None, 0)]

    assert rows(older) == rows(back) == [
        (3600, 0, [1, 5 << 31 | 2], [2, 1]), (3600, 3600, [1], [1])]
