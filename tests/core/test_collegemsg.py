"""Real data: CollegeMsg (SNAP, 59,835 messages) through the core, three ways.

Expected figures come from an independent event-by-event reference over the raw file (sort by
ts, stable; each a→b answers the pending b→a messages with t0 < t ≤ t0 + 7 d).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streams.core import ReorderBuffer, nearest_rank, reciprocity, summarize
from tests.core.helpers import DAY, HOUR, MIN, Pipeline, Run, ev

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "CollegeMsg" / "CollegeMsg.txt"
RANK_TIERS = ("top", "upper", "base")


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    if not DATA.exists():
        pytest.fail(f"CollegeMsg is missing: {DATA}")
    out = []
    for n, line in enumerate(DATA.read_text().splitlines(), 1):
        src, dst, ts = line.split()
        out.append(ev(f"college:{n}", src, dst, int(ts) * 1000, platform="snap"))
    return out


def run(batches: list[list[dict[str, Any]]]) -> Run:
    p = Pipeline(tiers=RANK_TIERS, rerank=True)  # no follower counts: tiers by inbound rank
    return p.feed_all(batches)


def check(r: Run, label: str) -> None:
    res = r.all
    lat = np.sort(res.replies.latency_ms)
    n = len(lat)
    p50, p90 = (int(lat[nearest_rank(q, n) - 1]) for q in (0.5, 0.9))
    figs = r.latest_figures()
    day = summarize(figs, (figs.window_ms == DAY) & (figs.segment == "all"))
    hour = summarize(figs, (figs.window_ms == HOUR) & (figs.segment == "all"))
    rec = reciprocity(r.pairs.counts())
    print(f"\n[{label}] inbound {len(res.inbound):,}, answered {n:,} (windows: day "
          f"{day['answered']:,}, hour {hour['answered']:,}), pending {day['pending']}, "
          f"unanswered {day['unanswered']:,}; p50 exact {p50:,} ms, sketch {day['p50_ms']:,.0f}"
          f" ms; p90 exact {p90:,} ms, sketch {day['p90_ms']:,.0f} ms; pairs {rec.edges:,}, "
          f"r {rec.r:.4f}, rho {rec.rho:.4f}")
    assert len(res.inbound) == 59_835
    assert n == 35_102
    assert p50 == 2_667_000 and p90 == 166_607_000
    for s in (day, hour):
        assert (s["inbound"], s["answered"]) == (59_835, 35_102)
        assert s["answered"] + s["pending"] + s["unanswered"] == s["inbound"]
        assert abs(s["p50_ms"] - 2_667_000) <= 0.01 * 2_667_000
        assert abs(s["p90_ms"] - 166_607_000) <= 0.01 * 166_607_000
    assert rec.edges == 20_296
    assert round(rec.r, 4) == 0.6364
    assert r.agg.unmatched == 0 and r.agg.dropped_late == 0


def test_collegemsg_in_event_time_order(events):
    ordered = sorted(events, key=lambda e: e["ts"])
    check(run([ordered]), "one batch")


def test_collegemsg_in_uneven_batches(events):
    ordered = sorted(events, key=lambda e: e["ts"])
    cuts = [0, 1, 777, 5_000, 5_001, 20_000, 33_333, 47_000, len(ordered)]
    check(run([ordered[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]), "8 batches")


def test_collegemsg_shuffled_by_up_to_a_minute_through_the_reorder_buffer(events):
    rng = random.Random(2024)
    arrival = sorted(events, key=lambda e: e["ts"] + rng.randrange(0, MIN + 1))
    assert arrival != sorted(events, key=lambda e: e["ts"])  # really shuffled
    buf = ReorderBuffer()
    released = []
    for i in range(0, len(arrival), 1_000):
        released.append(buf.push(arrival[i:i + 1_000]))
    released.append(buf.flush_all())
    assert buf.stragglers == 0
    check(run([b for b in released if b]), "shuffled ≤ 1 min, reorder buffer")
