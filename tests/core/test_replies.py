"""Reply matching (METRICS.md, "Responsiveness"): answered, latency, thread, pending/unanswered."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from streams.core import NO_TIME, EventBatch, ReplyMatcher, concat_results
from tests.core.helpers import DAY, HOUR, MIN, T0, ev

H = 7 * DAY
KINDS = ["POST", "REPLY", "COMMENT", "MENTION", "MESSAGE", "SHARE", "LIKE", "FOLLOW", "UNFOLLOW"]
ADDRESSING = {"REPLY", "COMMENT", "MENTION", "MESSAGE"}


def replies(matcher: ReplyMatcher, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return matcher.process(events).replies.rows()


def test_every_pending_message_is_answered_by_the_first_answer_each_with_its_latency():
    m = ReplyMatcher()
    r = m.process([
        ev("b1", "B", "A", T0),
        ev("b2", "B", "A", T0 + 10 * MIN, kind="MENTION"),
        ev("b3", "B", "A", T0 + 25 * MIN, kind="COMMENT"),
        ev("a1", "A", "B", T0 + HOUR, kind="REPLY"),  # answers all three
        ev("a2", "A", "B", T0 + 2 * HOUR),  # nothing left to answer
    ])
    got = [(x["inbound_id"], x["answer_id"], x["latency_ms"]) for x in r.replies.rows()]
    assert got == [("b1", "a1", HOUR), ("b2", "a1", 50 * MIN), ("b3", "a1", 35 * MIN)]
    assert {x["requester"] for x in r.replies.rows()} == {"B"}
    assert {x["responder"] for x in r.replies.rows()} == {"A"}
    # A's own messages to B are inbound messages to B, still pending
    assert len(r.inbound) == 5 and m.pending_count() == 2


def test_answer_exactly_at_t_plus_h_counts_and_one_ms_later_does_not():
    m = ReplyMatcher(horizon_ms=H)
    r = m.process([ev("b", "B", "A", T0), ev("a", "A", "B", T0 + H)])
    assert [x["latency_ms"] for x in r.replies.rows()] == [H]

    m = ReplyMatcher(horizon_ms=H)
    r = m.process([ev("b", "B", "A", T0), ev("a", "A", "B", T0 + H + 1)])
    assert len(r.replies) == 0
    # the same event that came too late moved stream time past t + H: the message expired
    assert r.expired.rows() == [{
        "inbound_id": "b", "requester": "B", "responder": "A", "inbound_ts": T0,
        "expired_at": T0 + H + 1, "seen_at": T0, "tag": 0,
    }]


def test_answer_at_the_same_time_does_not_count_a_later_one_does():
    m = ReplyMatcher()
    r = m.process([ev("b", "B", "A", T0), ev("a0", "A", "B", T0), ev("a1", "A", "B", T0 + 1)])
    # a0 came at the same ms as b: it does not answer it; a1 does, 1 ms later
    assert [(x["inbound_id"], x["answer_id"], x["latency_ms"]) for x in r.replies.rows()] == [
        ("b", "a1", 1)]
    # likewise b does not answer a0: a0 and a1 both wait for B
    assert m.pending_count() == 2


def test_answers_after_the_horizon_leave_the_message_unanswered_across_batches():
    m = ReplyMatcher(horizon_ms=H)
    r1 = m.process([ev("b", "B", "A", T0)])
    assert len(r1.expired) == 0 and m.pending_count() == 1
    # other pairs move stream time: at t + H the message is still pending ...
    r2 = m.process([ev("x", "C", "D", T0 + H, kind="LIKE")])
    assert len(r2.expired) == 0 and m.pending_count() == 1
    # ... one ms later it is unanswered, by stream time alone
    r3 = m.process([ev("y", "C", "D", T0 + H + 1, kind="FOLLOW")])
    assert [x["inbound_id"] for x in r3.expired.rows()] == ["b"]
    assert r3.expired.expired_at.tolist() == [T0 + H + 1]
    assert m.pending_count() == 0
    # A's late answer does not revive it
    r4 = m.process([ev("a", "A", "B", T0 + H + 2)])
    assert len(r4.replies) == 0


def test_self_interactions_and_non_addressing_kinds_never_count():
    m = ReplyMatcher()
    r = m.process([
        ev("s", "A", "A", T0),  # self
        ev("p", "A", None, T0 + 1, kind="POST"),
        ev("l", "B", "A", T0 + 2, kind="LIKE"),
        ev("sh", "B", "A", T0 + 3, kind="SHARE"),
        ev("f", "B", "A", T0 + 4, kind="FOLLOW"),
        ev("a", "A", "B", T0 + 5),  # an inbound message to B, answers nothing
        ev("s2", "B", "B", T0 + 6, kind="REPLY"),  # B to itself does not answer A
    ])
    assert [x["event_id"] for x in r.inbound.rows()] == ["a"]
    assert len(r.replies) == 0 and r.stream_time == T0 + 6


def test_answered_in_thread():
    m = ReplyMatcher()
    r = m.process([
        ev("q1", "B", "A", T0, kind="COMMENT"),
        ev("r1", "A", "B", T0 + MIN, kind="REPLY", in_reply_to="q1"),
        ev("q2", "B", "A", T0 + 2 * MIN, kind="REPLY"),
        ev("r2", "A", "B", T0 + 3 * MIN, kind="REPLY", conversation_id="q2"),
        ev("q3", "B", "A", T0 + 4 * MIN, kind="MESSAGE"),
        ev("r3", "A", "B", T0 + 5 * MIN, kind="MENTION", in_reply_to="zzz",
           conversation_id="yyy"),
    ])
    assert {x["inbound_id"]: x["in_thread"] for x in r.replies.rows()} == {
        "q1": True, "q2": True, "q3": False, "r1": False, "r2": False}


def test_batches_are_sorted_by_time_first():
    m = ReplyMatcher()
    r = m.process([ev("a", "A", "B", T0 + HOUR), ev("b", "B", "A", T0)])
    assert [(x["inbound_id"], x["latency_ms"]) for x in r.replies.rows()] == [("b", HOUR)]
    assert r.inbound.event_id.tolist() == ["b", "a"]


def test_conversation_starts():
    m = ReplyMatcher()
    r = m.process([
        ev("m1", "B", "A", T0),  # nothing before: a start
        ev("m2", "A", "B", T0 + HOUR),  # B→A an hour before: not a start
        ev("m3", "B", "A", T0 + HOUR + DAY),  # last pair event exactly 24 h before: not a start
        ev("m4", "B", "A", T0 + 3 * DAY),  # last one 24 h + 1 h before: a start
        ev("x1", "C", "A", T0 + 3 * DAY),  # another pair: a start
        ev("x2", "A", "C", T0 + 3 * DAY),  # same ms as x1: not "before", so a start too
        ev("m5", "B", "A", T0 + 5 * DAY + 1),  # 2 d + 1 ms of silence: a start
    ])
    assert dict(zip(r.inbound.event_id.tolist(), r.inbound.conversation_start.tolist(),
                    strict=True)) == {
        "m1": True, "m2": False, "m3": False, "m4": True, "x1": True, "x2": True, "m5": True}


def test_conversation_state_survives_batches_and_is_pruned():
    m = ReplyMatcher()
    m.process([ev("m1", "B", "A", T0)])
    r = m.process([ev("m2", "A", "B", T0 + 23 * HOUR)])
    assert r.inbound.conversation_start.tolist() == [False]
    m.process([ev("z", "Y", "Z", T0 + 30 * DAY, kind="LIKE")])
    assert m.state_size()["pairs"] == 0 and m.pending_count() == 0


def test_tags_ride_along_with_their_message():
    m = ReplyMatcher(horizon_ms=H)
    events = [ev("b", "B", "A", T0), ev("c", "C", "A", T0), ev("a", "A", "B", T0 + 1)]
    r = m.process(events, np.array([7, 9, 11]))
    assert r.inbound.tag.tolist() == [7, 9, 11]
    assert r.replies.tag.tolist() == [7]
    r2 = m.process([ev("z", "Y", "Z", T0 + H + 5, kind="LIKE")])
    assert dict(zip(r2.expired.inbound_id.tolist(), r2.expired.tag.tolist(), strict=True)) == {
        "c": 9, "a": 11}


def test_state_is_bounded_by_the_horizon():
    rng = random.Random(3)
    m = ReplyMatcher(horizon_ms=2 * DAY)
    for day in range(60):
        batch = [ev(f"{day}:{i}", f"u{rng.randrange(50)}", f"u{rng.randrange(50)}",
                    T0 + day * DAY + rng.randrange(DAY)) for i in range(300)]
        m.process(batch)
        assert m.pending_count() <= 3 * 300  # at most the messages of the last ~2 days
    assert m.state_size()["pairs"] <= 50 * 49 // 2


# --- a reference straight from the definitions, event by event ---------------------------


def reference(events: list[dict[str, Any]], horizon: int, gap: int = DAY) -> dict[str, Any]:
    st = NO_TIME
    pending: dict[tuple[str, str], list[tuple[int, str]]] = {}
    history: dict[frozenset[str], list[int]] = {}
    out: dict[str, Any] = {"replies": set(), "expired": set(), "starts": {}, "pending": set()}
    for e in sorted(events, key=lambda x: x["ts"]):
        t = e["ts"]
        if t > st:
            st = t
            for key, msgs in pending.items():
                out["expired"] |= {(i, st) for t0, i in msgs if t0 + horizon < st}
                pending[key] = [(t0, i) for t0, i in msgs if t0 + horizon >= st]
        a, b = e["actor"], e["target"]
        if e["kind"] not in ADDRESSING or b is None or a == b:
            continue
        pair = frozenset((a, b))
        out["starts"][e["event_id"]] = not any(t - gap <= x < t for x in history.get(pair, []))
        history.setdefault(pair, []).append(t)
        waiting = pending.get((b, a), [])
        for t0, i in waiting:
            if t0 < t:
                thread = i in (e["in_reply_to"], e["conversation_id"])
                out["replies"].add((i, e["event_id"], t - t0, thread))
        pending[(b, a)] = [(t0, i) for t0, i in waiting if t0 >= t]
        pending.setdefault((a, b), []).append((t, e["event_id"]))
    out["pending"] = {i for msgs in pending.values() for _, i in msgs}
    return out


def random_stream(seed: int, n: int = 1500) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    users = [f"u{i}" for i in range(7)]
    events: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.choice(KINDS + ["MESSAGE", "REPLY"] * 3)
        actor = rng.choice(users)
        target = None if kind == "POST" else rng.choice(users)
        ts = T0 + rng.randrange(0, 12 * DAY // HOUR) * HOUR  # hours: many ties, many exact t + H
        earlier = [x["event_id"] for x in events[-20:]]
        e = ev(f"e{i}", actor, target, ts, kind=kind)
        if earlier and rng.random() < 0.3:
            e["in_reply_to"] = rng.choice(earlier)
        if earlier and rng.random() < 0.2:
            e["conversation_id"] = rng.choice(earlier)
        events.append(e)
    events.sort(key=lambda x: x["ts"])  # event-time order, ties in generation order
    return events


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cut", [1, 7, 100, 10_000])
def test_batch_matching_equals_the_event_by_event_definition(seed, cut):
    horizon = 2 * DAY
    events = random_stream(seed)
    want = reference(events, horizon)
    m = ReplyMatcher(horizon_ms=horizon)
    results = [m.process(events[i:i + cut]) for i in range(0, len(events), cut)]
    got = concat_results(results)
    assert {(r[0], r[4], r[6], r[7]) for r in got.replies.records()} == want["replies"]
    assert {(r[0], r[4]) for r in got.expired.records()} == want["expired"]
    assert dict(zip(got.inbound.event_id.tolist(), got.inbound.conversation_start.tolist(),
                    strict=True)) == want["starts"]
    answered = {r[0] for r in got.replies.records()} | {r[0] for r in got.expired.records()}
    assert set(got.inbound.event_id.tolist()) - answered == want["pending"]
    assert m.pending_count() == len(want["pending"])


def test_same_result_with_and_without_shared_account_ids():
    events = random_stream(11)
    by_name = ReplyMatcher(horizon_ms=2 * DAY)
    by_id = ReplyMatcher(horizon_ms=2 * DAY)
    a = [by_name.process(EventBatch(events[i:i + 50])) for i in range(0, len(events), 50)]
    b = [by_id.process(EventBatch(events[i:i + 50], by_id.accounts))
         for i in range(0, len(events), 50)]
    for x, y in ((concat_results(a), concat_results(b)),):
        assert x.replies.records() == y.replies.records()
        assert x.expired.records() == y.expired.records()
        assert x.inbound.records() == y.inbound.records()
