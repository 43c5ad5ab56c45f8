"""Tiers: follower-count buckets, and inbound-rank tiers where no follower counts exist."""

from __future__ import annotations

import pytest

from streams.core import BASE, TOP, UPPER, TierBook, follower_tier, rank_tiers
from tests.core.helpers import DAY, HOUR, T0, ev


@pytest.mark.parametrize(("followers", "tier"), [
    (0, "T0"), (99, "T0"), (100, "T1"), (999, "T1"), (1_000, "T2"), (9_999, "T2"),
    (10_000, "T3"), (99_999, "T3"), (100_000, "T4"), (999_999, "T4"), (1_000_000, "T5"),
    (50_000_000, "T5"),
])
def test_follower_tier_boundaries(followers, tier):
    assert follower_tier(followers) == tier


def test_follower_tier_boundaries_are_configurable():
    assert [follower_tier(n, (10, 20)) for n in (9, 10, 19, 20)] == ["T0", "T1", "T1", "T2"]


def test_rank_tiers_top_one_percent_next_nine_percent():
    inbound = {f"a{i:03d}": 1000 - i for i in range(200)}  # distinct counts, a000 the most
    tiers = rank_tiers(inbound)
    assert [a for a, t in tiers.items() if t == TOP] == ["a000", "a001"]  # 1% of 200
    assert sorted(a for a, t in tiers.items() if t == UPPER) == [f"a{i:03d}" for i in range(2, 20)]
    assert sum(t == BASE for t in tiers.values()) == 180


def test_rank_tiers_ties_share_a_tier_and_never_overfill_it():
    # N = 100: "top" is 1 account, but x and y tie for first: rank = accounts with ≥ the count
    tiers = rank_tiers({"x": 5, "y": 5, **{f"b{i}": 1 for i in range(98)}})
    assert tiers["x"] == tiers["y"] == UPPER
    assert {tiers[f"b{i}"] for i in range(98)} == {BASE}  # 98 tied last: rank 100
    tiers = rank_tiers({"x": 9, "y": 5, "z": 5, **{f"b{i}": 1 for i in range(197)}})  # N = 200
    assert (tiers["x"], tiers["y"], tiers["z"]) == (TOP, UPPER, UPPER)  # y, z: rank 3 > 2
    small = rank_tiers({f"u{i}": i + 1 for i in range(50)})  # N = 50: 1% is half an account
    assert TOP not in small.values() and list(small.values()).count(UPPER) == 5
    assert rank_tiers({"z": 0}) == {}  # nothing received: not ranked (base)


def test_tierbook_latest_follower_count_wins_then_rank_for_the_rest():
    book = TierBook()
    book.observe_events([
        ev("1", "A", "B", T0 + 10, followers=50),
        ev("2", "A", "B", T0 + 5, followers=5_000_000),  # older than the first: ignored
        ev("3", "C", "B", T0 + 20),
    ])
    book.observe_snapshots([{"account": "C", "ts": T0, "followers": 150_000, "following": 1,
                             "posts": 1, "created_at": 0}])
    assert book.tier("A") == "T0" and book.tier("C") == "T4"
    book.observe_snapshots([{"account": "A", "ts": T0 + 30, "followers": 1_500}])
    assert book.tier("A") == "T0"  # ahead of the stream (T0 + 20): held until it gets there
    assert book.due_snapshots(T0 + 29) == []
    book.follow_snapshots(book.due_snapshots(T0 + 30))
    assert book.tier("A") == "T2" and book.pending == []
    # B has no follower count: its tier comes from inbound rank (N = 1 here: rank 1 ≤ 0.1 → no)
    book.rerank()
    assert book.tier("B") == BASE and book.tier("nobody") == BASE


def test_tierbook_rank_tiers_over_the_trailing_window():
    book = TierBook(rank_window_ms=DAY)
    # 100 targets; t0 gets the most inbound, t1..t9 some more than the rest
    events = [ev(f"x{i}", "s", f"t{i}", T0 + HOUR) for i in range(100)]
    events += [ev(f"y{i}-{k}", "s", f"t{i}", T0 + HOUR) for i in range(10) for k in range(3)]
    events += [ev(f"z{k}", "s", "t0", T0 + HOUR) for k in range(5)]
    book.observe_events(events)
    ranked = book.rerank()
    assert ranked == {"t0": TOP, **{f"t{i}": UPPER for i in range(1, 10)}}
    assert book.tiers["t0"] == TOP and book.tier("t50") == BASE
    # two days on, those interactions left the trailing window: everyone is base again
    book.observe_events([ev("later", "s", "u", T0 + 3 * DAY)])
    assert book.rerank() == {} and book.tier("t0") == BASE
    assert min(book.buckets) >= T0 + 2 * DAY  # old buckets were forgotten
