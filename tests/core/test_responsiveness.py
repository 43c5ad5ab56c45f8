"""Responsiveness per responder and window: counts, rates, percentiles, segments, versions."""

from __future__ import annotations

import pytest

from streams.core import (
    DEFAULT_TIERS,
    GRACE_MS,
    DDSketch,
    RequesterTags,
    ResponsivenessAggregator,
    concat_results,
    summarize,
)
from tests.core.helpers import DAY, HOUR, MIN, T0, Pipeline, ev, rows_where

H = 7 * DAY


def one(rows: list[dict], **match) -> dict:
    got = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(got) == 1, (match, got)
    return got[0]


def test_counts_rates_and_percentiles_of_a_window():
    p = Pipeline()
    p.feed([
        ev("b1", "B", "A", T0 + 10 * MIN),
        ev("b2", "B", "A", T0 + 20 * MIN),
        ev("a1", "A", "B", T0 + 25 * MIN),  # answers b1 (15 min) and b2 (5 min)
        ev("c1", "C", "A", T0 + 30 * MIN),
        ev("a2", "A", "C", T0 + 30 * MIN + 2 * HOUR),  # 2 h
        ev("d1", "D", "A", T0 + 40 * MIN),
        ev("a3", "A", "D", T0 + 40 * MIN + 2 * DAY),  # 2 d
        ev("e1", "E", "A", T0 + 50 * MIN),  # never answered
    ], emit=False)
    rows = p.run.agg.rows().rows()
    hour = one(rows, account="A", window_start=T0, window_ms=HOUR, segment="all")
    assert (hour["inbound"], hour["answered"], hour["pending"], hour["unanswered"]) == (5, 4, 1, 0)
    assert hour["rate"] == pytest.approx(4 / 5)
    assert hour["rate_15m"] == pytest.approx(2 / 5)  # ≤ 15 min counts
    assert hour["rate_1h"] == pytest.approx(2 / 5)
    assert hour["rate_24h"] == pytest.approx(3 / 5)
    # nearest rank over [5 min, 15 min, 2 h, 2 d]: p50 = 15 min, p90 = p99 = 2 d
    assert hour["p50_ms"] == pytest.approx(15 * MIN, rel=0.01)
    assert hour["p90_ms"] == pytest.approx(2 * DAY, rel=0.01)
    assert hour["p99_ms"] == pytest.approx(2 * DAY, rel=0.01)
    day = one(rows, account="A", window_start=T0, window_ms=DAY, segment="all")
    assert (day["inbound"], day["answered"]) == (5, 4)
    # A's answers are inbound messages to B, C and D
    assert one(rows, account="B", window_ms=HOUR, segment="all")["inbound"] == 1
    assert not rows_where(p.run.agg.rows(), account="E")
    # E's message becomes unanswered once stream time passes its t + H
    p.feed([ev("z", "Y", "Z", T0 + 50 * MIN + H + 1, kind="LIKE")], emit=False)
    hour = one(p.run.agg.rows().rows(), account="A", window_start=T0, window_ms=HOUR,
               segment="all")
    assert (hour["pending"], hour["unanswered"], hour["rate"]) == (0, 1, pytest.approx(0.8))


def test_window_is_emitted_at_close_re_emitted_on_an_answer_and_finally_dropped():
    p = Pipeline(sizes=(HOUR,))
    agg = p.run.agg
    p.feed([ev("b1", "B", "A", T0 + 10 * MIN)])
    assert len(p.run.last_emitted()) == 0  # still open
    p.feed([ev("x", "X", "Y", T0 + HOUR + GRACE_MS - 1, kind="LIKE")])
    assert len(p.run.last_emitted()) == 0  # within grace
    p.feed([ev("x2", "X", "Y", T0 + HOUR + GRACE_MS, kind="LIKE")])
    v1 = one(p.run.last_emitted().rows(), account="A", segment="all")
    assert (v1["version"], v1["final"], v1["inbound"], v1["pending"]) == (1, False, 1, 1)
    p.feed([ev("x3", "X", "Y", T0 + 2 * HOUR, kind="LIKE")])
    assert not rows_where(p.run.last_emitted(), account="A")  # nothing changed: not re-emitted
    p.feed([ev("a1", "A", "B", T0 + 3 * HOUR)])  # the answer
    v2 = one(p.run.last_emitted().rows(), account="A", segment="all")
    assert (v2["version"], v2["answered"], v2["pending"], v2["rate"]) == (2, 1, 0, 1.0)
    p.feed([ev("x4", "X", "Y", T0 + HOUR + H, kind="LIKE")])
    assert not rows_where(p.run.last_emitted(), account="A")  # stream time = end + H: not final
    p.feed([ev("x5", "X", "Y", T0 + HOUR + H + 1, kind="LIKE")])
    v3 = one(p.run.last_emitted().rows(), account="A", segment="all")
    assert (v3["version"], v3["final"], v3["answered"]) == (3, True, 1)
    assert not rows_where(agg.rows(), account="A", window_start=T0)  # dropped: state is bounded
    # an inbound message for a window already final and dropped is counted, not resurrected
    p.feed([ev("late", "C", "A", T0 + 5 * MIN)])
    assert agg.dropped_late == 1 and not rows_where(agg.rows(), window_start=T0, account="A")


def test_late_messages_count_as_late_and_within_grace_as_inbound():
    p = Pipeline()
    p.feed([ev("x", "X", "Y", T0 + HOUR + 5 * MIN, kind="LIKE")])
    p.feed([ev("ok", "B", "A", T0 + 50 * MIN)])  # stream time T0+1h05 < end + grace: accepted
    p.feed([ev("x2", "X", "Y", T0 + 2 * HOUR, kind="LIKE")])
    p.feed([ev("late", "C", "A", T0 + 55 * MIN)])  # stream time T0+2h ≥ T0+1h10: late for 1 h
    p.feed([ev("a1", "A", "C", T0 + 2 * HOUR + 5 * MIN), ev("a2", "A", "B", T0 + 3 * HOUR)])
    rows = p.run.agg.rows().rows()
    hour = one(rows, account="A", window_ms=HOUR, window_start=T0, segment="all")
    assert (hour["inbound"], hour["late"], hour["answered"]) == (1, 1, 1)  # late one not counted
    day = one(rows, account="A", window_ms=DAY, window_start=T0, segment="all")
    assert (day["inbound"], day["late"], day["answered"]) == (2, 0, 2)  # the day was still open


def test_figures_split_by_requester_tier():
    p = Pipeline()
    p.feed([
        ev("b1", "B", "A", T0, followers=50),  # T0
        ev("c1", "C", "A", T0 + MIN, followers=5_000),  # T2
        ev("c2", "C", "A", T0 + 2 * MIN, followers=5_000),
        ev("a1", "A", "C", T0 + 10 * MIN),  # A answers the bigger account only
        ev("z1", "Z", "A", T0 + 11 * MIN),  # no follower count known: "base"
    ])
    rows = p.run.agg.rows().rows()
    small = one(rows, account="A", window_ms=HOUR, segment="tier:T0")
    big = one(rows, account="A", window_ms=HOUR, segment="tier:T2")
    base = one(rows, account="A", window_ms=HOUR, segment="tier:base")
    assert (small["inbound"], small["answered"]) == (1, 0)
    assert (big["inbound"], big["answered"], big["rate"]) == (2, 2, 1.0)
    assert big["p50_ms"] == pytest.approx(8 * MIN, rel=0.01)  # rank ceil(0.5·2) = 1 of [8, 9] min
    assert (base["inbound"], base["answered"]) == (1, 0)
    assert one(rows, account="A", window_ms=HOUR, segment="all")["inbound"] == 4


def test_conversation_starts_per_window():
    p = Pipeline()
    p.feed([
        ev("m1", "B", "A", T0),  # start
        ev("m2", "B", "A", T0 + MIN),  # not
        ev("m3", "C", "A", T0 + 2 * MIN),  # start
        ev("m4", "B", "A", T0 + 2 * DAY),  # start (another day)
    ])
    rows = p.run.agg.rows().rows()
    assert one(rows, account="A", window_ms=DAY, window_start=T0,
               segment="all")["conversation_starts"] == 2
    assert one(rows, account="A", window_ms=DAY, window_start=T0 + 2 * DAY,
               segment="all")["conversation_starts"] == 1


def test_summaries_merge_rows():
    p = Pipeline()
    p.feed([ev("b1", "B", "A", T0), ev("a1", "A", "B", T0 + HOUR),
            ev("c1", "C", "D", T0 + 3 * HOUR), ev("d1", "D", "C", T0 + 3 * HOUR + MIN)])
    figs = p.run.agg.rows()
    s = summarize(figs, (figs.window_ms == DAY) & (figs.segment == "all"))
    assert (s["inbound"], s["answered"], s["pending"]) == (4, 2, 2)
    assert s["p50_ms"] == pytest.approx(MIN, rel=0.01)
    assert s["p90_ms"] == pytest.approx(HOUR, rel=0.01)


def test_requester_tags():
    tags = RequesterTags({"big": "T5", "odd": "nope"}, tiers=("T0", "T5", "base"))
    got = tags([ev("1", "big", "x", T0), ev("3", "who", "x", T0)])
    assert got.tolist() == [2, 3]  # tier index + 1; unknown: base
    with pytest.raises(ValueError, match="nope"):
        tags([ev("4", "odd", "x", T0)])
    assert RequesterTags(lambda a: "T0", tiers=("T0",))([ev("5", "a", "b", T0)]).tolist() == [1]


def test_an_aggregator_with_its_own_account_index_gets_the_same_figures():
    events = [ev("b1", "B", "A", T0), ev("c1", "C", "A", T0 + MIN), ev("a1", "A", "B", T0 + HOUR)]
    shared = Pipeline()
    shared.feed(events, emit=False)
    own = ResponsivenessAggregator(tiers=DEFAULT_TIERS)  # e.g. in another process
    own.consume(concat_results(shared.run.results))
    def plain(agg: ResponsivenessAggregator) -> list[dict]:
        rows = [{k: v for k, v in r.items() if k != "sketch"} for r in agg.rows().rows()]
        return sorted(rows, key=lambda r: (r["account"], r["window_ms"], r["window_start"],
                                           r["segment"]))

    assert plain(own) == plain(shared.run.agg) and len(plain(own)) > 5


def test_figure_rows_carry_their_sketch():
    p = Pipeline()
    p.feed([ev("b1", "B", "A", T0), ev("b2", "B", "A", T0 + MIN), ev("a1", "A", "B", T0 + HOUR)])
    figs = p.run.agg.rows()
    i = next(i for i, r in enumerate(figs.rows()) if r["account"] == "A" and r["segment"] == "all"
             and r["window_ms"] == HOUR)
    sk = figs.sketch(i)
    assert sk.count == 2 and sk == DDSketch.from_dict(figs.rows()[i]["sketch"])
    assert sk.quantile(0.5) == pytest.approx(HOUR - MIN, rel=0.01)
    assert len(figs.select(figs.account == "A")) == sum(r["account"] == "A" for r in figs.rows())
