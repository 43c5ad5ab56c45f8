"""Windows and time (METRICS.md): epoch-aligned windows, stream time, grace, reorder buffer."""

from __future__ import annotations

import pickle
import random

import pytest

from streams.core import (
    DAY_MS,
    GRACE_MS,
    HOUR_MS,
    ReorderBuffer,
    WindowGate,
    is_late,
    window_bounds,
    window_start,
)
from streams.core.windows import NO_TIME
from tests.core.helpers import MIN, T0, ev

SEC = 1000


def test_windows_are_epoch_aligned_half_open():
    ts = T0 + 5 * HOUR_MS + 123
    assert window_start(ts, HOUR_MS) == T0 + 5 * HOUR_MS
    assert window_bounds(ts, DAY_MS) == (T0, T0 + DAY_MS)
    # [start, end): the end belongs to the next window
    assert window_start(T0 + HOUR_MS, HOUR_MS) == T0 + HOUR_MS
    assert window_start(T0 + HOUR_MS - 1, HOUR_MS) == T0


def test_grace_boundary():
    ts = T0 + 30 * MIN  # window [T0, T0 + 1h)
    end = T0 + HOUR_MS
    assert not is_late(ts, end + GRACE_MS - 1, HOUR_MS)  # stream time < end + grace: accepted
    assert is_late(ts, end + GRACE_MS, HOUR_MS)  # from end + grace on: late


def test_events_within_grace_are_accepted_and_later_ones_counted_late():
    gate = WindowGate(sizes=(HOUR_MS,))
    a = gate.admit([ev("e1", "a", "b", T0 + 10 * MIN), ev("e2", "a", "b", T0 + HOUR_MS + 9 * MIN)])
    assert [e["event_id"] for e in a.accepted[HOUR_MS]] == ["e1", "e2"]
    # stream time is now T0 + 1h09: an event of [T0, T0+1h) still makes it (grace 10 min)
    a = gate.admit([ev("e3", "a", "b", T0 + 59 * MIN)])
    assert [e["event_id"] for e in a.accepted[HOUR_MS]] == ["e3"] and not a.late[HOUR_MS]
    # stream time reaches T0 + 1h10 = end + grace: the window takes no more
    a = gate.admit([ev("e4", "a", "b", T0 + HOUR_MS + 10 * MIN), ev("e5", "a", "b", T0 + 1)])
    assert [e["event_id"] for e in a.accepted[HOUR_MS]] == ["e4"]
    assert [e["event_id"] for e in a.late[HOUR_MS]] == ["e5"]  # returned, not dropped
    assert gate.late_counts == {(HOUR_MS, T0): 1}
    assert gate.closed(HOUR_MS, T0) and not gate.closed(HOUR_MS, T0 + HOUR_MS)


def test_late_is_per_window_size_and_per_partition():
    gate = WindowGate()  # 1 h and 1 d
    gate.admit([ev("x", "a", "b", T0 + 3 * HOUR_MS)], partition=0)
    a = gate.admit([ev("y", "a", "b", T0 + 30 * MIN)], partition=0)
    assert a.late[HOUR_MS] and a.accepted[DAY_MS]  # late for its hour, fine for its day
    assert gate.late_counts == {(HOUR_MS, T0): 1}
    a = gate.admit([ev("z", "a", "b", T0 + 30 * MIN)], partition=1)  # partition 1 is behind
    assert a.accepted[HOUR_MS] and gate.time(1) == T0 + 30 * MIN


def test_reorder_buffer_holds_until_reorder_and_releases_in_ts_id_order():
    buf = ReorderBuffer(reorder_ms=2 * MIN)
    assert buf.push([ev("b", "x", "y", T0), ev("a", "x", "y", T0)]) == []
    out = buf.push([ev("c", "x", "y", T0 + 2 * MIN - 1)])
    assert out == []  # stream time − ts = 2 min − 1 ms < 2 min
    out = buf.push([ev("d", "x", "y", T0 + 2 * MIN)])
    assert [e["event_id"] for e in out] == ["a", "b"]  # same ts: by event_id
    assert len(buf) == 2
    assert [e["event_id"] for e in buf.flush_all()] == ["c", "d"]
    assert len(buf) == 0


def test_reorder_buffer_undoes_a_shuffle_shorter_than_reorder():
    rng = random.Random(7)
    events = [ev(f"e{i:04d}", "x", "y", T0 + rng.randrange(0, 3 * HOUR_MS)) for i in range(2000)]
    arrival = sorted(events, key=lambda e: e["ts"] + rng.randrange(0, MIN + 1))
    buf = ReorderBuffer()
    out = []
    for i in range(0, len(arrival), 37):
        out += buf.push(arrival[i:i + 37])
    out += buf.flush_all()
    assert out == sorted(events, key=lambda e: (e["ts"], e["event_id"]))
    assert buf.stragglers == 0


def test_reorder_buffer_never_drops_a_straggler():
    buf = ReorderBuffer(reorder_ms=MIN)
    out = buf.push([ev("a", "x", "y", T0), ev("b", "x", "y", T0 + 5 * MIN)])
    assert [e["event_id"] for e in out] == ["a"]
    out = buf.push([ev("old", "x", "y", T0 - HOUR_MS)])  # older than what already left
    assert [e["event_id"] for e in out] == ["old"] and buf.stragglers == 1


@pytest.mark.parametrize("seed", range(6))
def test_reorder_buffer_matches_its_definition_however_messages_are_grouped(seed: int):
    # the definition, message by message: after each message, every held event with
    # ts <= stream time - reorder leaves, in (ts, event_id) order
    rng = random.Random(seed)
    messages, t = [], T0
    for m in range(600):
        t += rng.randrange(0, 4 * SEC)
        messages.append([ev(f"m{m}e{j}", "x", "y", t - rng.randrange(0, 90) * SEC)
                         for j in range(rng.choice([0, 1, 3, 12]))])  # ties: whole seconds
    key = lambda e: (e["ts"], e["event_id"])  # noqa: E731
    want, held, st = [], [], NO_TIME
    for m in messages:
        st = max([st, *(e["ts"] for e in m)])
        held += m
        want += sorted((e for e in held if e["ts"] <= st - MIN), key=key)
        held = [e for e in held if e["ts"] > st - MIN]
    want += sorted(held, key=key)

    buf, got, i = ReorderBuffer(reorder_ms=MIN), [], 0
    while i < len(messages):
        n = rng.choice([1, 2, 5, 40])
        got += buf.push_messages(messages[i:i + n])
        i += n
        if rng.random() < 0.05:
            buf = pickle.loads(pickle.dumps(buf))  # a checkpoint: the held times are rebuilt
    got += buf.flush_all()
    assert [e["event_id"] for e in got] == [e["event_id"] for e in want]


def test_reorder_buffer_checkpoint_keeps_held_events_exactly() -> None:
    # held events are packed (MessagePack) in a checkpoint: every value comes back as it was;
    # a checkpoint from before the packing (events as pickled dicts) still loads
    held = [
        ev("a", "x", None, T0 + 5, "POST", text="héllo 👋", urls=["https://a.example/x"]),
        ev("b", "x", "y", T0 + 1, "REPLY", in_reply_to="p", conversation_id="c",
           followers=2**40, following=0, posts=-1),  # fmt: skip
    ]
    buf = ReorderBuffer(reorder_ms=MIN)
    assert buf.push(held, partition=3) == []
    for restored in (pickle.loads(pickle.dumps(buf)), older_state(buf)):
        assert restored.flush_all() == sorted(held, key=lambda e: e["ts"])


def older_state(buf: ReorderBuffer) -> ReorderBuffer:
    state = {k: v for k, v in vars(buf).items() if k != "_held_ts"}
    restored = ReorderBuffer.__new__(ReorderBuffer)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    return restored
