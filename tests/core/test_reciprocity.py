"""Reciprocity on tiny hand-computed graphs: r, ρ, account reciprocity, give/take, other-centred
share, tier mixing, rich club; and pair counts that merge across shards and windows."""

from __future__ import annotations

import random

import pytest

from streams.core import (
    AccountIndex,
    EventBatch,
    PairCounter,
    account_reciprocity,
    conversation_roots,
    count_pairs,
    give_take,
    merge_pair_counts,
    other_centred_counts,
    other_centred_share,
    reciprocity,
    rich_club,
    tier_mixing,
    top_accounts,
)
from tests.core.helpers import DAY, T0, ev


def graph_events():
    return [
        ev("e1", "a", "b", T0), ev("e2", "a", "b", T0 + 1), ev("e3", "a", "b", T0 + 2),
        ev("e4", "b", "a", T0 + 3, kind="REPLY"),
        ev("e5", "a", "c", T0 + 4, kind="MENTION"),
        ev("e6", "c", "d", T0 + 5, kind="LIKE"), ev("e7", "c", "d", T0 + 6, kind="SHARE"),
        ev("f1", "a", "d", T0 + 7, kind="FOLLOW"),  # follow layer: not an interaction
        ev("f2", "d", "a", T0 + 8, kind="UNFOLLOW"),
        ev("s1", "a", "a", T0 + 9, kind="COMMENT"),  # self: never counts
        ev("p1", "a", None, T0 + 10, kind="POST"),  # no target
    ]


def test_pair_counts_take_the_interaction_layer_only():
    assert count_pairs(graph_events()) == {
        ("a", "b"): 3, ("b", "a"): 1, ("a", "c"): 1, ("c", "d"): 2}
    assert count_pairs(graph_events(), start=T0 + 3, end=T0 + 5) == {
        ("b", "a"): 1, ("a", "c"): 1}


def test_network_reciprocity_and_garlaschelli_loffredo_rho():
    rec = reciprocity(count_pairs(graph_events()))
    assert (rec.edges, rec.mutual, rec.accounts) == (4, 2, 4)
    assert rec.r == pytest.approx(0.5)  # a→b and b→a of 4 pairs
    assert rec.density == pytest.approx(4 / 12)  # |E| / (N(N − 1))
    assert rec.rho == pytest.approx((0.5 - 1 / 3) / (1 - 1 / 3))  # = 0.25
    assert reciprocity({}).r is None


def test_account_reciprocity_and_give_take():
    counts = count_pairs(graph_events())
    assert account_reciprocity(counts) == {"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.0}
    gt = give_take(counts)
    assert (gt["a"].given, gt["a"].taken, gt["a"].ratio) == (4, 1, 4.0)
    assert gt["b"].ratio == pytest.approx(1 / 3)
    assert gt["c"].ratio == 2.0 and gt["d"].ratio == 0.0
    assert give_take({("x", "y"): 2})["x"].ratio is None  # nothing taken


def test_other_centred_share():
    events = [
        ev("p1", "a", None, T0, kind="POST"),  # a starts a thread
        ev("r1", "b", "a", T0 + 1, kind="REPLY", in_reply_to="p1", conversation_id="p1"),
        ev("r2", "a", "b", T0 + 2, kind="REPLY", in_reply_to="r1", conversation_id="p1"),
        ev("s1", "a", "b", T0 + 3, kind="SHARE"),  # someone else's content
        ev("l1", "a", "b", T0 + 4, kind="LIKE"),
        ev("r3", "a", "c", T0 + 5, kind="COMMENT", conversation_id="q9"),  # root unknown: c's
        ev("x1", "a", "a", T0 + 6, kind="MENTION"),  # self: not an outbound event
    ]
    roots = conversation_roots(events)
    assert roots == {"p1": "a"}
    counts = other_centred_counts(events, roots)
    assert counts == {"a": [2, 5], "b": [1, 1]}  # a: s1 and r3 of p1, r2, s1, l1, r3
    assert other_centred_share(counts) == {"a": 0.4, "b": 1.0}
    # counts merge by adding: two halves give the same
    half = other_centred_counts(events[:3], roots)
    both = other_centred_counts(events[3:], roots, into=half)
    assert both == counts


def test_tier_mixing():
    tiers = {"a": "T2", "b": "T0", "c": "T0", "d": "T1"}
    m = tier_mixing(count_pairs(graph_events()), tiers)
    assert m == {"T2": {"T0": 4}, "T0": {"T2": 1, "T1": 2}}
    assert tier_mixing(count_pairs(graph_events()), tiers.__getitem__) == m


def club_counts():
    return count_pairs([
        ev("1", "a", "b", T0), ev("2", "b", "a", T0), ev("3", "b", "c", T0),
        ev("4", "c", "a", T0), ev("5", "d", "a", T0), ev("6", "a", "e", T0),
    ])


def test_rich_club_by_followers():
    followers = {"a": 1000, "b": 900, "c": 800, "d": 10, "e": 5}
    club = rich_club(club_counts(), 3, followers)
    assert club.members == ["a", "b", "c"]
    assert club.edges == 4  # a→b, b→a, b→c, c→a
    assert club.phi == pytest.approx(4 / 6)
    # out: a 2, b 2, c 1; in: a 3, b 1, c 1; Σ_{i≠j} out_i·in_j = 5·5 − (6 + 2 + 1) = 16
    assert club.expected == pytest.approx(16 / 6)
    assert club.rho == pytest.approx(4 / (16 / 6))  # 1.5: the top talks among itself


def test_rich_club_by_inbound_rank_without_follower_counts():
    assert top_accounts(club_counts(), 3) == ["a", "b", "c"]  # a 3 in; b, c, e 1 each: by id
    assert rich_club(club_counts(), 3).members == ["a", "b", "c"]
    assert rich_club(club_counts(), 1).phi is None  # one account: no pairs possible


def test_pair_counts_merge_across_shards_and_windows():
    rng = random.Random(1)
    users = [f"u{i}" for i in range(30)]
    events = [ev(f"e{i}", rng.choice(users), rng.choice(users + [None]),
                 T0 + rng.randrange(3 * DAY), kind=rng.choice(["MESSAGE", "LIKE", "FOLLOW"]))
              for i in range(3000)]
    whole = count_pairs(events)
    # the pipeline shards by account: one dict per shard, merged by adding
    shards = [count_pairs([e for e in events if hash(e["actor"]) % 4 == k]) for k in range(4)]
    assert merge_pair_counts(*shards) == whole
    pc = PairCounter(size_ms=DAY)
    for i in range(0, len(events), 97):
        pc.add(events[i:i + 97])
    assert sorted(pc.windows) == [T0, T0 + DAY, T0 + 2 * DAY]
    assert pc.counts() == whole
    assert pc.counts(T0 + DAY, T0 + 2 * DAY) == count_pairs(events, T0 + DAY, T0 + 2 * DAY)
    # counting packed account ids (batches numbered by the same index) gives the same dicts
    acc = AccountIndex()
    pc_ids = PairCounter(size_ms=DAY, accounts=acc)
    for i in range(0, len(events), 97):
        pc_ids.add(EventBatch(events[i:i + 97], acc))
    assert pc_ids.counts() == whole
    assert pc_ids.counts(T0 + DAY, T0 + 2 * DAY) == pc.counts(T0 + DAY, T0 + 2 * DAY)
    pc.drop_before(T0 + DAY)
    assert sorted(pc.windows) == [T0 + DAY, T0 + 2 * DAY]
    assert reciprocity(whole) == reciprocity(merge_pair_counts(*shards))
