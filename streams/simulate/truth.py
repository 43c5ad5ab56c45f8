"""Figures a correct pipeline must reproduce, computed exactly from a simulation's events.

``expected_tier_pattern`` applies METRICS.md "Responsiveness" literally: an addressing event
B→A (B ≠ A) at t is answered at the first addressing event A→B with t < t' ≤ t + H; the
requester's tier is the bucket of B's follower count carried on that message (its latest count
then); the responder's tier is its tier at the start (the snapshot; T4/T5 accounts do not
change tier during a run). Unanswered messages are *pending* while the stream's last event time
is ≤ t + H, *unanswered* after that; rates are answered / inbound, so they are final only when
nothing is pending. ``reciprocity_figures`` gives network reciprocity inside the community
clusters and elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from streams.core.tiers import DEFAULT_FOLLOWER_BOUNDS, follower_tiers
from streams.core.windows import DAY_MS, HOUR_MS

if TYPE_CHECKING:
    from streams.simulate.network import Simulation

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
ADDRESSING = frozenset({"REPLY", "COMMENT", "MENTION", "MESSAGE"})
NOT_INTERACTION = frozenset({"FOLLOW", "UNFOLLOW"})
DEFAULT_HORIZON_MS = 7 * DAY_MS
TOP, MIDDLE, BOTTOM = ("T4", "T5"), ("T2", "T3"), ("T0", "T1")
_TIERS = follower_tiers()


def _tier_codes(followers: I64) -> I64:
    return np.searchsorted(np.asarray(DEFAULT_FOLLOWER_BOUNDS), followers, side="right").astype(
        np.int64
    )


def answers(sim: Simulation, horizon_ms: int = DEFAULT_HORIZON_MS) -> dict[str, Any]:
    """Every inbound message as columns: responder and requester (account index), their tiers,
    ts, and the answer latency (-1: not answered within ``horizon_ms``)."""
    index = {s["account"]: i for i, s in enumerate(sim.snapshots)}
    rows = [
        (index[e["actor"]], index[e["target"]], e["ts"], e["followers"] or 0)
        for e in sim.events
        if e["kind"] in ADDRESSING and e["target"] is not None and e["target"] != e["actor"]
    ]
    cols = np.array(rows, dtype=np.int64).reshape(-1, 4)
    actor, target, ts, followers = cols.T
    n = len(index)
    pair = actor * n + target
    uniq, pid = np.unique(pair, return_inverse=True)
    pid = pid.astype(np.int64)
    t0 = int(ts.min(initial=0))
    width = int(ts.max(initial=0)) - t0 + 2
    key = pid * width + (ts - t0)
    sorted_key = np.sort(key)
    # answers to B→A are A→B events: the pair reversed
    rev = target * n + actor
    last = max(len(uniq) - 1, 0)
    j = np.minimum(np.searchsorted(uniq, rev), last)
    exists = uniq[j] == rev if len(uniq) else np.zeros(0, bool)
    pos = np.searchsorted(sorted_key, j * width + (ts - t0), side="right")
    pos_c = np.minimum(pos, max(len(sorted_key) - 1, 0))
    found = exists & (pos < len(sorted_key)) & (sorted_key[pos_c] // width == j)
    answer_ts = sorted_key[pos_c] % width + t0
    answered = found & (answer_ts <= ts + horizon_ms)
    snapshot_followers = np.array([s["followers"] for s in sim.snapshots], np.int64)
    return {
        "responder": target,
        "requester": actor,
        "responder_tier": _tier_codes(snapshot_followers)[target],
        "requester_tier": _tier_codes(followers),
        "ts": ts,
        "latency": np.where(answered, answer_ts - ts, -1),
        "stream_time": int(max((e["ts"] for e in sim.events), default=sim.start_ms)),
    }


def _stats(latency: I64, ts: I64, stream_time: int, horizon_ms: int) -> dict[str, Any]:
    n = len(latency)
    done = latency >= 0
    a = int(done.sum())
    pending = int((~done & (ts + horizon_ms >= stream_time)).sum())
    lat = np.sort(latency[done])

    def rate(limit: int | None = None) -> float | None:
        if n == 0:
            return None
        hits = a if limit is None else int((lat <= limit).sum())
        return round(hits / n, 6)

    def pct(q: float) -> int | None:
        return int(lat[min(len(lat) - 1, int(np.ceil(q * len(lat))) - 1)]) if len(lat) else None

    return {
        "inbound": n,
        "answered": a,
        "pending": pending,
        "unanswered": n - a - pending,
        "rate": rate(),
        "rate_15min": rate(15 * 60_000),
        "rate_1h": rate(HOUR_MS),
        "rate_24h": rate(DAY_MS),
        "latency_p50_ms": pct(0.5),
        "latency_p90_ms": pct(0.9),
    }


def expected_tier_pattern(sim: Simulation, horizon_ms: int = DEFAULT_HORIZON_MS) -> dict[str, Any]:
    """How the top tier (T4+T5) answers the bottom (T0/T1) versus its peers (T4/T5), plus
    response figures per responder tier and the responder × requester tier rate matrix."""
    m = answers(sim, horizon_ms)
    lat, ts, stream = m["latency"], m["ts"], m["stream_time"]
    rt, qt = m["responder_tier"], m["requester_tier"]

    def group(tiers: tuple[str, ...]) -> Bools:
        return np.isin(qt, [_TIERS.index(t) for t in tiers])

    top = np.isin(rt, [_TIERS.index(t) for t in TOP])

    def stats(mask: Bools) -> dict[str, Any]:
        return _stats(lat[mask], ts[mask], stream, horizon_ms)

    to_bottom, to_top = stats(top & group(BOTTOM)), stats(top & group(TOP))
    ratio = (
        round(to_bottom["rate"] / to_top["rate"], 6)
        if to_bottom["rate"] is not None and to_top["rate"]
        else None
    )
    return {
        "horizon_ms": horizon_ms,
        "stream_time": stream,
        "responders": list(TOP),
        "top_to_bottom": to_bottom,
        "top_to_middle": stats(top & group(MIDDLE)),
        "top_to_top": to_top,
        "bottom_over_top_rate": ratio,
        "by_responder_tier": {t: stats(rt == i) for i, t in enumerate(_TIERS) if (rt == i).any()},
        "rate_matrix": {
            t: {
                s: stats((rt == i) & (qt == k))["rate"]
                for k, s in enumerate(_TIERS)
                if ((rt == i) & (qt == k)).any()
            }
            for i, t in enumerate(_TIERS)
            if (rt == i).any()
        },
    }


def reciprocity_figures(sim: Simulation) -> dict[str, Any]:
    """Network reciprocity r (METRICS.md) over the whole run: all pairs, pairs inside one
    community cluster, and pairs with no community member."""
    index = {s["account"]: i for i, s in enumerate(sim.snapshots)}
    n = len(index)
    pairs = np.unique(
        np.array(
            [
                index[e["actor"]] * n + index[e["target"]]
                for e in sim.events
                if e["target"] is not None
                and e["kind"] not in NOT_INTERACTION
                and e["target"] != e["actor"]
            ],
            dtype=np.int64,
        )
    )
    u, v = pairs // n, pairs % n
    mutual = np.isin(v * n + u, pairs)
    cluster = np.full(n, -1, np.int64)
    for account, c in sim.clusters.items():
        cluster[index[account]] = c
    inside = (cluster[u] >= 0) & (cluster[u] == cluster[v])
    outside = (cluster[u] < 0) & (cluster[v] < 0)

    def r(mask: Bools) -> float | None:
        return round(float(mutual[mask].mean()), 6) if mask.any() else None

    return {
        "pairs": int(len(pairs)),
        "network": r(np.ones(len(pairs), bool)),
        "community_internal": r(inside),
        "outside_community": r(outside),
    }
