"""R6 automation cadence and R7 bursts."""

from __future__ import annotations

import io
import pickle

import numpy as np

from streams.core.spam import SpamDetector
from streams.core.windows import window_bounds
from tests.core.helpers import DAY, HOUR, MIN, T0, ev
from tests.core.spam.builders import BeforeColumns, names, only, posts, run, sends

# --- R6 ---------------------------------------------------------------------------------------


def test_r6_bot_posting_every_five_minutes() -> None:
    alerts = run(posts("bot", 80, T0, 5 * MIN), only("R6"))
    assert len(alerts) == 1
    a = alerts[0]
    fiftieth = T0 + 49 * 5 * MIN
    assert (a.rule, a.actor, a.severity) == ("R6", "bot", "medium")
    assert (a.window_start, a.window_end) == window_bounds(fiftieth, DAY)
    assert a.evidence.counts == {"posts": 50, "span_ms": 49 * 5 * MIN, "mean_gap_ms": 5 * MIN}
    assert a.evidence.sample_event_ids == tuple(f"bot:p{i}" for i in range(5))
    assert a.evidence.detail == "gap CV 0.000 < 0.1 over the latest 50 posts in 12 h"
    assert (a.first_seen, a.last_seen) == (T0, fiftieth)


def test_r6_jittered_bot() -> None:
    (a,) = run(posts("bot", 60, T0, 5 * MIN, jitter=0.05), only("R6"))
    assert a.evidence.counts["posts"] == 50


def test_r6_news_on_a_fixed_schedule_is_not_a_bot() -> None:
    assert run(posts("news", 3 * 48, T0, 30 * MIN), only("R6")) == []  # 3 days, every 30 min
    assert run(posts("news", 150, T0, 15 * MIN), only("R6")) == []  # 50 posts span 12.25 h
    assert len(run(posts("news", 100, T0, 14 * MIN), only("R6"))) == 1  # 11.4 h: judged


def test_r6_near_misses() -> None:
    assert run(posts("bot", 49, T0, 5 * MIN), only("R6")) == []
    # irregular: CV of the gaps well over 0.1
    assert run(posts("human", 200, T0, 5 * MIN, jitter=0.45), only("R6")) == []


def sustained(per_hour: int, hours: int, seed: int = 4) -> list[dict[str, object]]:
    """``per_hour`` POSTs at random times in each of ``hours`` hours (irregular gaps)."""
    rng = np.random.default_rng(seed)
    times = np.sort(
        np.concatenate(
            [T0 + h * HOUR + rng.choice(HOUR, per_hour, replace=False) for h in range(hours)]
        )
    )
    return [ev(f"p{i}", "fire", None, int(t), "POST") for i, t in enumerate(times.tolist())]


def test_r6_sustained_rate_above_the_cap() -> None:
    alerts = run(sustained(130, 4), only("R6"))
    assert len(alerts) == 1
    counts = alerts[0].evidence.counts
    assert len(counts) == 3 and min(counts.values()) > 120
    assert alerts[0].evidence.detail.endswith("> 120 for 3 h")
    assert run(sustained(115, 4), only("R6")) == []
    assert run(sustained(130, 4)[: 2 * 130], only("R6")) == []  # only two hours


# --- R7 ---------------------------------------------------------------------------------------


def test_r7_burst_of_a_quiet_account() -> None:
    stream = sends("burst", names("t", 40), T0 + 2 * HOUR, 8_000)
    alerts = run(stream, only("R7"))
    assert len(alerts) == 1
    a = alerts[0]
    thirtieth = T0 + 2 * HOUR + 29 * 8_000
    assert (a.rule, a.actor, a.severity) == ("R7", "burst", "medium")
    assert (a.window_start, a.window_end) == window_bounds(thirtieth, HOUR)
    assert a.evidence.counts == {"events": 30, "history": 0, "history_hours": 24}
    assert a.evidence.sample_event_ids == tuple(f"burst:{i}" for i in range(5))
    assert a.evidence.detail == ("events 30 >= 30 in 5 min; rate 360/h >= 20 x average 0.00/h")
    assert (a.first_seen, a.last_seen) == (T0 + 2 * HOUR, thirtieth)


def test_r7_evidence_in_time_order_whatever_the_arrival_and_from_an_older_checkpoint() -> None:
    stream = sends("burst", names("t", 40), T0 + 2 * HOUR, 8_000)
    shuffled = [stream[i] for i in np.random.default_rng(4).permutation(40)]
    config = only("R7", lateness_ms=10 * MIN)
    (a,) = run(shuffled, config)
    ids = [int(x.split(":")[1]) for x in a.evidence.sample_event_ids]
    assert ids == sorted(ids) and a.first_seen == T0 + 2 * HOUR + ids[0] * 8_000

    def resumed(reverse: bool) -> list[object]:
        d = SpamDetector(config)
        d.process(shuffled[:20])
        if not reverse:
            return pickle.loads(pickle.dumps(d)).process(shuffled[20:])
        # as a checkpoint of the time it kept them in arrival order (before the columns)
        for sender in d.rules[0].actors.values():  # type: ignore[attr-defined]
            sender.recent.reverse()
        older = io.BytesIO()
        BeforeColumns(older, protocol=5).dump(d)
        return pickle.loads(older.getvalue()).process(shuffled[20:])

    assert resumed(True) == resumed(False) == [a]


def history(per_hour: int) -> list[dict[str, object]]:
    """``per_hour`` messages spread over each of the 24 hours before T0 + 1 day."""
    n = 24 * per_hour
    step = DAY // n
    return sends("busy", [f"f{i % 50}" for i in range(n)], T0, step, tag="h")


def test_r7_against_the_actor_s_own_average() -> None:
    burst = sends("busy", names("t", 30), T0 + DAY + 10 * MIN, 9_000)
    # 18/h on average: 30 in 5 min is 360/h = 20 × 18
    (a,) = run(history(18) + burst, only("R7"))
    assert a.evidence.counts == {"events": 30, "history": 432, "history_hours": 24}
    assert run(history(19) + burst, only("R7")) == []  # 360/h < 20 × 19


def test_r7_history_survives_a_checkpoint() -> None:
    burst = sends("busy", names("t", 30), T0 + DAY + 10 * MIN, 9_000)
    for per_hour in (18, 19):  # an alert with its history counted; none (the history holds)
        d = SpamDetector(only("R7"))
        assert d.process(history(per_hour)) == []
        restored = pickle.loads(pickle.dumps(d))
        assert restored.process(burst) == run(history(per_hour) + burst, only("R7"))


def test_r7_near_misses() -> None:
    assert run(sends("burst", names("t", 29), T0, 10_000), only("R7")) == []
    assert run(sends("burst", names("t", 30), T0, 10_400), only("R7")) == []  # 5.03 min
    # a popular account mentioned by many in a few minutes is not bursting
    fans = [ev(f"m{i}", f"fan{i}", "star", T0 + i * 1000, "MENTION") for i in range(300)]
    assert run(fans, only("R7")) == []
