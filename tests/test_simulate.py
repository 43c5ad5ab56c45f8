"""The simulated network: deterministic, valid, and its ground truth holds by direct counting.

The rule counters here are written from METRICS.md alone (not from the simulator's code): a
designed spammer must trip its rule in *epoch-aligned* windows (the strict reading for a
positive), and no other account may trip it in *sliding* windows (the strict reading for a
negative).
"""

from __future__ import annotations

import bisect
import csv
import json
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from schemas.validate import validate_event, validate_snapshot
from streams.importers import Rejected, read
from streams.simulate import (
    RULES,
    Simulation,
    expected_tier_pattern,
    import_runs,
    iter_events,
    run,
    simulate,
    write,
)
from streams.simulate.population import NORMAL_ROLES, ROLES, SPAM_ROLES, build

REPO = Path(__file__).resolve().parents[1]
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
ADDRESSING = {"REPLY", "COMMENT", "MENTION", "MESSAGE"}
Event = dict[str, Any]


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(1200, 3, 7)


# ---------------------------------------------------------------- determinism and validity


def test_same_seed_same_run_other_seed_other_run() -> None:
    a, b, c = simulate(400, 1, 3), simulate(400, 1, 3), simulate(400, 1, 4)
    assert a.events == b.events
    assert a.snapshots == b.snapshots
    assert a.labels == b.labels
    assert a.spammers_by_rule == b.spammers_by_rule
    assert a.events != c.events
    assert a.labels != c.labels


_DIGEST = (
    "import hashlib, json; from streams.simulate import simulate; s = simulate(300, 0.5, 3); "
    "print(hashlib.sha256(json.dumps([s.events, s.snapshots, s.labels]).encode()).hexdigest())"
)


def test_same_output_in_another_process() -> None:
    """Nothing depends on string hashing (PYTHONHASHSEED) or the clock."""
    here = subprocess.run(
        [sys.executable, "-c", _DIGEST],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "1"},
        cwd=REPO,
    )
    there = subprocess.run(
        [sys.executable, "-c", _DIGEST],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "2"},
        cwd=REPO,
    )
    assert here.stdout == there.stdout and len(here.stdout.strip()) == 64


def test_events_sorted_with_unique_sequential_ids(sim: Simulation) -> None:
    ts = [e["ts"] for e in sim.events]
    assert ts == sorted(ts)
    assert [e["event_id"] for e in sim.events] == [f"sim:{sim.seed}:{i}" for i in range(len(ts))]
    assert sim.start_ms <= ts[0] and ts[-1] < sim.end_ms
    ids = {e["event_id"]: e for e in sim.events}
    for e in sim.events:  # parents exist and come first; roots are the thread's root
        if e["in_reply_to"] is not None:
            parent = ids[e["in_reply_to"]]
            assert parent["ts"] <= e["ts"]
            assert e["conversation_id"] == parent["conversation_id"]


def test_every_event_and_snapshot_validates(sim: Simulation) -> None:
    for e in sim.events:
        assert validate_event(e, sim.end_ms) == e
        assert e["followers"] is not None and e["following"] is not None
        assert e["posts"] is not None
    assert len(sim.snapshots) == sim.accounts
    for s in sim.snapshots:
        assert validate_snapshot(s, sim.end_ms) == s


def test_default_start_is_a_fixed_day() -> None:
    s = simulate(300, 0.5, 1)
    assert s.start_ms == 1_767_571_200_000  # 2026-01-05T00:00Z
    assert simulate(300, 0.5, 1, start_ms=s.start_ms + DAY).events[0]["ts"] >= s.start_ms + DAY


def test_too_small_or_too_short_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 300"):
        simulate(299, 1, 1)
    with pytest.raises(ValueError, match="positive"):
        simulate(1000, 0, 1)


def test_every_role_and_kind_is_present(sim: Simulation) -> None:
    assert set(sim.labels.values()) == set(ROLES)
    summary = sim.summary()
    assert set(summary["kinds"]) == {
        "POST",
        "REPLY",
        "COMMENT",
        "MENTION",
        "MESSAGE",
        "SHARE",
        "LIKE",
        "FOLLOW",
        "UNFOLLOW",
    }
    assert sum(summary["kinds"].values()) == len(sim.events)
    assert sum(summary["roles"].values()) == sim.accounts
    for rule in RULES:
        assert sim.spammers_by_rule[rule], rule
        for account in sim.spammers_by_rule[rule]:
            assert sim.labels[account] in SPAM_ROLES


def test_tiers_heavy_tailed_at_5000() -> None:
    pop = build(5000, 1, 1_767_571_200_000)
    counts = Counter(pop.tier.tolist())
    assert [counts[t] for t in range(6)] == sorted(counts.values(), reverse=True)
    assert all(counts[t] > 0 for t in range(6))
    assert counts[0] > 0.4 * 5000 and counts[5] < 0.02 * 5000


def test_size_scales_with_accounts_and_days() -> None:
    small, large = simulate(1000, 1, 2), simulate(2000, 2, 2)
    ratio = len(large.events) / len(small.events)
    assert 3.3 < ratio < 4.5  # linear in accounts × days (the celebrity's fans: once a run)


# ---------------------------------------------------------------- independent rule counters


def canonical(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.lower().startswith("utm_")]
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path}?{urlencode(query)}"


def windows(items: list[tuple[int, Any]], size: int, aligned: bool) -> Iterator[list[Any]]:
    """Items (ts-sorted (ts, item)) per window: epoch-aligned buckets, or [t_i, t_i + size)."""
    if aligned:
        buckets: dict[int, list[Any]] = defaultdict(list)
        for t, item in items:
            buckets[t // size].append(item)
        yield from buckets.values()
        return
    times = [t for t, _ in items]
    for i, t in enumerate(times):
        yield [item for _, item in items[i : bisect.bisect_left(times, t + size)]]


def first_contact(events: list[Event]) -> dict[frozenset[str], int]:
    """Time of the first interaction-layer event between each pair, either direction."""
    first: dict[frozenset[str], int] = {}
    for e in events:
        if e["target"] and e["target"] != e["actor"] and e["kind"] not in ("FOLLOW", "UNFOLLOW"):
            first.setdefault(frozenset((e["actor"], e["target"])), e["ts"])
    return first


def addressed(events: list[Event]) -> Iterator[Event]:
    for e in events:
        if e["kind"] in ADDRESSING and e["target"] and e["target"] != e["actor"]:
            yield e


def r1_counts(events: list[Event], aligned: bool) -> tuple[dict[str, int], dict[str, int]]:
    """Per actor: the most distinct targets one canonical URL reached in an hour (any), and the
    most in an hour where ≥ 80% of them had no earlier interaction with the actor."""
    first = first_contact(events)
    groups: dict[tuple[str, str], list[tuple[int, Any]]] = defaultdict(list)
    for e in addressed(events):
        stranger = first[frozenset((e["actor"], e["target"]))] >= e["ts"]
        for url in {canonical(u) for u in e["urls"]}:
            groups[(e["actor"], url)].append((e["ts"], (e["target"], stranger)))
    raw: dict[str, int] = Counter()
    strict: dict[str, int] = Counter()
    for (actor, _), items in groups.items():
        for window in windows(items, HOUR, aligned):
            targets = {t for t, _ in window}
            strangers = {t for t, s in window if s}
            raw[actor] = max(raw[actor], len(targets))
            if len(strangers) >= 0.8 * len(targets):
                strict[actor] = max(strict[actor], len(targets))
    return raw, strict


def r2_counts(events: list[Event], aligned: bool) -> dict[str, int]:
    """Per actor: the most distinct actors pushing a canonical URL it pushed, in an hour."""
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in addressed(events):
        for url in {canonical(u) for u in e["urls"]}:
            groups[url].append((e["ts"], e["actor"]))
    best: dict[str, int] = Counter()
    for items in groups.values():
        for window in windows(items, HOUR, aligned):
            actors = set(window)
            for a in actors:
                best[a] = max(best[a], len(actors))
    return best


def bigrams(text: str) -> frozenset[tuple[str, str]]:
    words = text.lower().split()
    return frozenset(zip(words, words[1:], strict=False))


def jaccard(a: frozenset[Any], b: frozenset[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def r3_counts(events: list[Event], aligned: bool) -> dict[str, int]:
    """Per actor: the most texts in an hour that are near-duplicates (bigram Jaccard ≥ 0.5) of
    one of them, counted by distinct target or thread."""
    by_actor: dict[str, list[tuple[int, tuple[frozenset[Any], str]]]] = defaultdict(list)
    for e in events:
        if e["text"]:
            where = e["target"] or e["conversation_id"] or e["event_id"]
            by_actor[e["actor"]].append((e["ts"], (bigrams(e["text"]), where)))
    best: dict[str, int] = Counter()
    for actor, items in by_actor.items():
        for window in windows(items, HOUR, aligned):
            if len(window) < best[actor]:
                continue
            for grams, _ in window:
                places = {w for g, w in window if jaccard(grams, g) >= 0.5}
                best[actor] = max(best[actor], len(places))
    return best


def r4_counts(
    events: list[Event], aligned: bool
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per actor: most follows in 24 h made with ≤ 30 followers, most follows in 24 h, and
    follow→unfollow pairs of one target within 48 h."""
    low: dict[str, list[tuple[int, int]]] = defaultdict(list)
    follows: dict[str, list[tuple[int, int]]] = defaultdict(list)
    followed: dict[tuple[str, str], int] = {}
    churn: dict[str, int] = Counter()
    for e in events:
        if e["kind"] == "FOLLOW":
            follows[e["actor"]].append((e["ts"], 1))
            if e["followers"] <= 30:
                low[e["actor"]].append((e["ts"], 1))
            followed[(e["actor"], e["target"])] = e["ts"]
        elif e["kind"] == "UNFOLLOW":
            t = followed.pop((e["actor"], e["target"]), None)
            if t is not None and e["ts"] - t <= 2 * DAY:
                churn[e["actor"]] += 1

    def most(groups: dict[str, list[tuple[int, int]]]) -> dict[str, int]:
        return {a: max(len(w) for w in windows(items, DAY, aligned)) for a, items in groups.items()}

    return most(low), most(follows), churn


def r5_counts(events: list[Event], aligned: bool) -> dict[str, int]:
    """Per actor: most distinct counterparts in 24 h of conversations (a pair's addressing
    events with no 24 h gap) that the actor's last message ends with a link, where the actor
    and counterpart had no interaction before the conversation started."""
    first = first_contact(events)
    pairs: dict[frozenset[str], list[Event]] = defaultdict(list)
    for e in addressed(events):
        pairs[frozenset((e["actor"], e["target"]))].append(e)
    endings: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pair, msgs in pairs.items():
        conversations: list[list[Event]] = [[msgs[0]]]
        for prev, e in zip(msgs, msgs[1:], strict=False):
            if e["ts"] - prev["ts"] >= DAY:
                conversations.append([])
            conversations[-1].append(e)
        for conv in conversations:
            if first[pair] < conv[0]["ts"]:
                continue
            for actor in pair:
                mine = [e for e in conv if e["actor"] == actor]
                if mine and mine[-1]["urls"]:
                    endings[actor].append((mine[-1]["ts"], mine[-1]["target"]))
    return {
        a: max(len(set(w)) for w in windows(sorted(items), DAY, aligned))
        for a, items in endings.items()
    }


def r6_min_cv(events: list[Event]) -> dict[str, float]:
    """Per actor with ≥ 50 posts: the lowest gap CV over 50 consecutive posts."""
    posts: dict[str, list[int]] = defaultdict(list)
    for e in events:
        if e["kind"] == "POST":
            posts[e["actor"]].append(e["ts"])
    out = {}
    for actor, ts in posts.items():
        if len(ts) >= 50:
            gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
            out[actor] = min(
                statistics.pstdev(gaps[i : i + 49]) / statistics.fmean(gaps[i : i + 49])
                for i in range(len(gaps) - 48)
            )
    return out


def r7_counts(events: list[Event], aligned: bool, start_ms: int) -> dict[str, tuple[int, float]]:
    """Per actor: the most addressing events in 5 min, and that rate over its trailing hourly
    average (events in the 24 h before the window, per hour since the run started)."""
    by_actor: dict[str, list[int]] = defaultdict(list)
    for e in addressed(events):
        by_actor[e["actor"]].append(e["ts"])
    out = {}
    for actor, ts in by_actor.items():
        best = (0, 0.0)
        for window in windows([(t, t) for t in ts], 5 * MIN, aligned):
            begin = window[0] - window[0] % (5 * MIN) if aligned else window[0]
            lo = max(start_ms, begin - DAY)
            before = bisect.bisect_left(ts, begin) - bisect.bisect_left(ts, lo)
            hourly = before / max(1.0, (begin - lo) / HOUR)
            ratio = len(window) * 12 / hourly if hourly else float("inf")
            best = max(best, (len(window), ratio))
        out[actor] = best
    return out


def r8_flagged(sim: Simulation) -> set[str]:
    def signature(followers: int, following: int) -> bool:
        return (following >= 300 and followers <= 30) or (
            following >= 10 * followers and following >= 1000
        )

    flagged = {s["account"] for s in sim.snapshots if signature(s["followers"], s["following"])}
    flagged |= {e["actor"] for e in sim.events if signature(e["followers"], e["following"])}
    return flagged


def check_rule(
    sim: Simulation,
    rule: str,
    value: Callable[[bool], dict[str, Any]],
    trips: Callable[[Any], bool],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Members trip the rule in aligned windows, nobody else does in sliding ones."""
    truth = sim.spammers_by_rule[rule]
    aligned, sliding = value(True), value(False)
    missed = sorted(a for a in truth if not trips(aligned.get(a, 0)))
    assert not missed, f"{rule}: designed spammers below threshold: {missed[:5]}"
    extra = sorted(a for a, v in sliding.items() if a not in truth and trips(v))
    assert not extra, f"{rule}: flagged but not in truth: {[(a, sim.labels[a]) for a in extra]}"
    return aligned, sliding


# ---------------------------------------------------------------- rules: truth holds


def test_r1_link_to_many_strangers(sim: Simulation) -> None:
    aligned, sliding = check_rule(
        sim, "R1", lambda a: r1_counts(sim.events, a)[1], lambda v: v >= 10
    )
    assert min(aligned[a] for a in sim.spammers_by_rule["R1"]) >= 14
    # the newsletter reaches ≥ 10 accounts an hour with one URL, but none of them strangers
    letter = sim.hard_negatives["newsletter"]
    raw, _ = r1_counts(sim.events, False)
    assert raw[letter] >= 30 and sliding.get(letter, 0) == 0


def test_r2_link_campaigns(sim: Simulation) -> None:
    aligned, sliding = check_rule(sim, "R2", lambda a: r2_counts(sim.events, a), lambda v: v >= 5)
    assert min(aligned[a] for a in sim.spammers_by_rule["R2"]) >= 8
    others = [v for a, v in sliding.items() if a not in sim.spammers_by_rule["R2"]]
    assert max(others, default=0) <= 1


def test_r3_near_duplicate_texts(sim: Simulation) -> None:
    aligned, sliding = check_rule(sim, "R3", lambda a: r3_counts(sim.events, a), lambda v: v >= 5)
    assert min(aligned[a] for a in sim.spammers_by_rule["R3"]) >= 9
    others = [v for a, v in sliding.items() if a not in sim.spammers_by_rule["R3"]]
    assert max(others) <= 2


def test_r4_follow_spam_and_churn(sim: Simulation) -> None:
    def value(aligned: bool) -> dict[str, tuple[int, int, int]]:
        low, any_, churn = r4_counts(sim.events, aligned)
        accounts = set(low) | set(any_) | set(churn)
        return {a: (low.get(a, 0), any_.get(a, 0), churn.get(a, 0)) for a in accounts}

    aligned, sliding = check_rule(
        sim, "R4", value, lambda v: v != 0 and (v[0] >= 100 or v[1] > 400 or v[2] >= 50)
    )
    for a in sim.spammers_by_rule["R4"]:
        low, _, churn = aligned[a]
        assert low >= 130 if sim.labels[a] == "spam_follow" else churn >= 70
    others = [v for a, v in sliding.items() if a not in sim.spammers_by_rule["R4"]]
    assert max(v[1] for v in others) <= 50 and max(v[2] for v in others) <= 5


def test_r5_pitch_and_link_endings(sim: Simulation) -> None:
    aligned, sliding = check_rule(sim, "R5", lambda a: r5_counts(sim.events, a), lambda v: v >= 5)
    truth = sim.spammers_by_rule["R5"]
    assert min(aligned[a] for a in truth) >= 8
    assert {sim.labels[a] for a in truth} == {"spam_pitch", "spam_link"}
    assert {sim.labels[a] for a in sim.designed_by_rule["R5"]} == {"spam_pitch"}
    assert sim.designed_by_rule["R1"] == sim.spammers_by_rule["R1"]
    others = [v for a, v in sliding.items() if a not in truth]
    assert max(others, default=0) <= 2


def test_r6_automation_cadence(sim: Simulation) -> None:
    cv = r6_min_cv(sim.events)
    truth = sim.spammers_by_rule["R6"]
    assert truth and all(cv[a] < 0.03 for a in truth)
    others = {a: v for a, v in cv.items() if a not in truth}
    assert min(others.values()) > 0.15
    news = sim.hard_negatives["news"]
    assert cv[news] > 0.15  # on schedule, but with natural jitter
    posts = Counter(
        (e["ts"] - sim.start_ms) // DAY
        for e in sim.events
        if e["actor"] == news and e["kind"] == "POST"
    )
    assert max(posts.values()) <= 48


def test_r7_bursts(sim: Simulation) -> None:
    truth = sim.spammers_by_rule["R7"]
    aligned = r7_counts(sim.events, True, sim.start_ms)
    for a in truth:
        count, ratio = aligned[a]
        assert count >= 40 and ratio >= 20 * 20, (a, count, ratio)
    sliding = r7_counts(sim.events, False, sim.start_ms)
    others = [v[0] for a, v in sliding.items() if a not in truth]
    assert max(others) <= 15


def test_r8_profile_signature(sim: Simulation) -> None:
    assert r8_flagged(sim) == sim.spammers_by_rule["R8"]
    assert {sim.labels[a] for a in sim.spammers_by_rule["R8"]} == {"spam_profile"}


def test_normal_accounts_are_in_no_rule(sim: Simulation) -> None:
    normal = {a for a, r in sim.labels.items() if r in NORMAL_ROLES}
    for rule in RULES:
        assert not normal & sim.spammers_by_rule[rule]


def test_celebrity_mentioned_by_many() -> None:
    big = simulate(5000, 2, 11)
    celebrity = big.hard_negatives["celebrity"]
    mentioners = {
        e["actor"] for e in big.events if e["target"] == celebrity and e["kind"] == "MENTION"
    }
    assert len(mentioners) >= 1500
    # over half of the mentions arrive within two hours
    per_hour = Counter(
        e["ts"] // HOUR for e in big.events if e["target"] == celebrity and e["kind"] == "MENTION"
    )
    assert max(per_hour.values()) >= 300


# ---------------------------------------------------------------- tier pattern


def brute_force_pattern(sim: Simulation) -> tuple[float, float]:
    """Top tier (T4/T5 at the start) answer rate to T0/T1 and to T4/T5 requesters, directly."""
    top = {s["account"] for s in sim.snapshots if s["followers"] >= 100_000}
    sent: dict[tuple[str, str], list[int]] = defaultdict(list)
    msgs = list(addressed(sim.events))
    for e in msgs:
        sent[(e["actor"], e["target"])].append(e["ts"])
    tally: dict[str, list[int]] = {"bottom": [0, 0], "top": [0, 0]}
    for e in msgs:
        if e["target"] not in top:
            continue
        group = "bottom" if e["followers"] < 1000 else "top" if e["followers"] >= 100_000 else ""
        if not group:
            continue
        answers = sent.get((e["target"], e["actor"]), [])
        i = bisect.bisect_right(answers, e["ts"])
        tally[group][0] += 1
        tally[group][1] += i < len(answers) and answers[i] <= e["ts"] + 7 * DAY
    return tally["bottom"][1] / tally["bottom"][0], tally["top"][1] / tally["top"][0]


def test_top_tier_answers_peers_not_small_accounts(sim: Simulation) -> None:
    pattern = expected_tier_pattern(sim)
    bottom, top = pattern["top_to_bottom"]["rate"], pattern["top_to_top"]["rate"]
    assert (bottom, top) == pytest.approx(brute_force_pattern(sim), abs=1e-6)
    assert top >= 0.5 and bottom <= 0.1 and bottom < 0.2 * top
    assert pattern["top_to_top"]["latency_p50_ms"] < 15 * MIN  # peers: minutes
    assert pattern["top_to_bottom"]["latency_p50_ms"] > HOUR  # the few small ones: hours
    by_tier = {t: f["rate"] for t, f in pattern["by_responder_tier"].items()}
    assert max(by_tier, key=lambda t: by_tier[t]) in ("T2", "T3")  # the engaged middle


def test_community_reciprocity_is_high(sim: Simulation) -> None:
    from streams.simulate import reciprocity_figures

    figures = reciprocity_figures(sim)
    assert figures["community_internal"] > 0.6 > 0.3 > figures["outside_community"]


# ---------------------------------------------------------------- files


def test_files_read_back_through_the_importers(sim: Simulation, tmp_path: Path) -> None:
    paths = write(sim, tmp_path)
    events = list(read("jsonl", paths["events.jsonl"], now_ms=sim.end_ms))
    assert not [e for e in events if isinstance(e, Rejected)]
    assert events == sim.events == list(iter_events(sim))
    snaps = list(read("snapshots", paths["snapshots.csv"], now_ms=sim.end_ms))
    assert snaps == sim.snapshots
    with paths["labels.csv"].open(newline="") as fh:
        labels = list(csv.DictReader(fh))
    assert {r["account"]: r["role"] for r in labels} == sim.labels
    rules = {r["account"]: set(filter(None, r["rules"].split(";"))) for r in labels}
    for rule in RULES:
        assert {a for a, rs in rules.items() if rule in rs} == sim.spammers_by_rule[rule]
    truth = json.loads(paths["truth.json"].read_text())
    assert {r: set(v) for r, v in truth["spammers_by_rule"].items()} == sim.spammers_by_rule
    assert truth["summary"]["events"] == len(sim.events)
    assert (
        truth["tier_pattern"]["top_to_top"]["rate"] > truth["tier_pattern"]["top_to_bottom"]["rate"]
    )


def test_run_writes_when_given_a_folder(tmp_path: Path) -> None:
    s = run(300, 0.5, 5, tmp_path / "out")
    assert (tmp_path / "out" / "events.jsonl").read_text().count("\n") == len(s.events)
    assert run(300, 0.5, 5, None).events == s.events


def test_import_runs_feed_a_publisher(sim: Simulation) -> None:
    snaps, events = import_runs(sim)
    assert (snaps.schema, events.schema) == ("snapshot", "interaction")
    assert list(snaps) == sim.snapshots and list(events) == sim.events
    assert events.stats.rows == events.stats.accounted() == len(sim.events)
    assert dict(events.stats.kinds) == sim.summary()["kinds"]
    assert snaps.stats.kinds["SNAPSHOT"] == sim.accounts
