"""R8 profile signature, on crafted profiles and on the labelled Cresci 2015 accounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.core.spam import SpamDetector
from streams.core.windows import window_bounds
from streams.importers import snapshots
from streams.importers.base import Rejected
from tests.core.helpers import DAY, MIN, T0, ev
from tests.core.spam.builders import only, run

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"  # ../shared: required
BAS = DATA / "cresci-2015-bas-users" / "bas_users.csv"


def profile(eid: str, actor: str, ts: int, followers: int, following: int) -> dict[str, object]:
    return ev(eid, actor, "x", ts, "LIKE", followers=followers, following=following, posts=7)


def test_r8_flags_at_first_sight_once() -> None:
    stream = [profile(f"e{i}", "fake", T0 + 3 * MIN + i * DAY // 2, 3, 700) for i in range(6)]
    alerts = run(stream, only("R8"))
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.rule, a.actor, a.severity) == ("R8", "fake", "low")
    assert (a.window_start, a.window_end) == window_bounds(T0, DAY)
    assert (a.first_seen, a.last_seen) == (T0 + 3 * MIN, T0 + 3 * MIN)
    assert a.evidence.counts == {"followers": 3, "following": 700, "posts": 7}
    assert a.evidence.sample_event_ids == ("e0",)
    assert a.evidence.detail == "following 700 >= 300; followers 3 <= 30"


@pytest.mark.parametrize(("followers", "following", "flagged"), [
    (30, 300, True), (31, 300, False), (30, 299, False),
    (100, 1000, True), (101, 1000, False), (99, 999, False), (200, 2000, True),
    (201, 2009, False), (0, 1000, True), (0, 0, False),
])  # fmt: skip
def test_r8_signature_boundaries(followers: int, following: int, flagged: bool) -> None:
    assert len(run([profile("e", "a", T0, followers, following)], only("R8"))) == flagged


def test_r8_ratio_variant_detail() -> None:
    (a,) = run([profile("e", "a", T0, 150, 2000)], only("R8"))
    assert a.evidence.detail == "following 2000 >= 10 x followers 150; following >= 1000"


def test_r8_once_ever() -> None:
    stream = [
        profile("e0", "fake", T0, 3, 700),
        ev("x", "b", "c", T0 + 90 * DAY),
        profile("e1", "fake", T0 + 90 * DAY + 1, 3, 700),
    ]
    assert len(run(stream, only("R8"))) == len(run(stream, only("R8"), cuts=[1, 2])) == 1


def test_r8_snapshots() -> None:
    d = SpamDetector(only("R8"))
    snap = {
        "snapshot_id": "s1",
        "account": "fake",
        "ts": T0,
        "followers": 2,
        "following": 900,
        "posts": 1,
        "created_at": None,
        "platform": "twitter",
    }
    (a,) = d.observe_snapshots([snap])
    assert a.evidence.sample_event_ids == ("s1",) and a.evidence.counts["following"] == 900
    assert d.observe_snapshots([dict(snap, snapshot_id="s2", ts=T0 + DAY)]) == []
    assert d.process([profile("e", "fake", T0 + DAY, 2, 900)]) == []  # once per account


def test_r8_on_cresci_2015_fake_followers() -> None:
    snaps = [
        s for s in snapshots.read(BAS, platform="twitter", now_ms=T0) if not isinstance(s, Rejected)
    ]
    labels = snapshots.labels_from_csv(BAS)
    fake = {a: snapshots.is_fake(label) for a, label in labels.items()}
    assert len(snaps) == 3_900
    alerts = SpamDetector(only("R8")).observe_snapshots(snaps)
    flagged = {a.actor for a in alerts}
    assert len(flagged) == len(alerts)

    def scores(predicted: set[str]) -> tuple[float, float]:
        tp = sum(1 for a in predicted if fake[a])
        return tp / len(predicted), tp / sum(1 for v in fake.values() if v)

    # the definition, straight from the CSV counts
    by_definition = {
        str(s["account"])
        for s in snaps
        if (s["following"] >= 300 and s["followers"] <= 30)
        or (s["following"] >= 10 * s["followers"] and s["following"] >= 1000)
    }
    precision, recall = scores(flagged)
    want_precision, want_recall = scores(by_definition)
    assert precision == pytest.approx(want_precision, abs=0.01)
    assert recall == pytest.approx(want_recall, abs=0.01)
    assert precision == pytest.approx(0.991, abs=0.01)  # reference for the default thresholds
    assert recall == pytest.approx(0.462, abs=0.01)
