"""R4 follow spam: a small account's spree, mass following, follow→unfollow churn."""

from __future__ import annotations

from streams.core.windows import window_bounds
from tests.core.helpers import DAY, HOUR, MIN, T0
from tests.core.spam.builders import churns, follows, only, run

CFG = only("R4")


def test_r4_small_account_follow_spree() -> None:
    alerts = run(follows("fs", 150, T0, MIN, followers=12), CFG)
    assert len(alerts) == 1
    a = alerts[0]
    hundredth = T0 + 99 * MIN
    assert (a.rule, a.actor, a.severity) == ("R4", "fs", "medium")
    assert (a.window_start, a.window_end) == window_bounds(hundredth, DAY)
    assert a.evidence.counts == {"follows": 100, "followers": 12}
    assert a.evidence.sample_event_ids == tuple(f"fsf:{i}" for i in range(5))
    assert a.evidence.detail == "follows 100 >= 100 in 24 h; followers 12 <= 30"
    assert (a.first_seen, a.last_seen) == (T0, hundredth)


def test_r4_spree_near_misses() -> None:
    assert run(follows("fs", 99, T0, followers=12), CFG) == []
    assert run(follows("fs", 120, T0, followers=31), CFG) == []
    assert run(follows("fs", 120, T0, followers=None), CFG) == []  # count unknown
    assert run(follows("fs", 100, T0, 15 * MIN, followers=12), CFG) == []  # over 24.75 h
    # the latest count carried wins: 31 followers by the hundredth follow
    stream = follows("fs", 100, T0, followers=12)
    stream[50]["followers"] = 31
    for e in stream[51:]:
        e["followers"] = None
    assert run(stream, CFG) == []


def test_r4_mass_following() -> None:
    (a,) = run(follows("mass", 450, T0, 3 * MIN, followers=5000), CFG)
    assert a.evidence.counts == {"follows": 401, "followers": 5000}
    assert a.evidence.detail == "follows 401 > 400 in 24 h"
    assert run(follows("mass", 400, T0, 3 * MIN, followers=5000), CFG) == []


def test_r4_churn() -> None:
    alerts = run(churns("churn", 60, T0, hold=6 * HOUR), CFG)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.evidence.counts == {"churns": 50}
    assert a.evidence.sample_event_ids == tuple(f"churnu:{i}" for i in range(5))
    assert a.evidence.detail == "follow->unfollow 50 >= 50 in 48 h"
    assert a.last_seen == T0 + 6 * HOUR + 49 * MIN


def test_r4_churn_near_misses() -> None:
    assert run(churns("churn", 49, T0), CFG) == []
    assert run(churns("churn", 60, T0, hold=48 * HOUR), CFG) == []  # unfollowed 48 h later
    # unfollows of accounts it never followed (in the window)
    assert run(follows("churn", 60, T0, followers=None, kind="UNFOLLOW"), CFG) == []
    # 60 churns spread over 5 days: never 50 within 48 h
    assert run(churns("churn", 60, T0, hold=HOUR, step=2 * HOUR), CFG) == []


def test_r4_one_alert_per_day() -> None:
    stream = follows("mass", 1500, T0, MIN, followers=3)  # ~25 h of following
    alerts = run(stream, CFG)
    assert [a.window_start for a in alerts] == [T0, T0 + DAY]
