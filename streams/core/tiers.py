"""Account tiers (METRICS.md, "Tiers"): whom an account is, by audience size.

"Does A answer small accounts?" needs a tier for every requester. Where follower counts exist the
tier is the bucket of the latest one (T0 < 100 … T5 ≥ 1M); sources without them (e.g. SNAP edge
lists) rank accounts by the inbound interactions they received over a trailing window instead.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from streams.core.batch import EventBatch, as_batch
from streams.core.windows import DAY_MS, HOUR_MS, NO_TIME, Event

DEFAULT_FOLLOWER_BOUNDS: tuple[int, ...] = (100, 1_000, 10_000, 100_000, 1_000_000)
TOP, UPPER, BASE = "top", "upper", "base"
DEFAULT_TOP_SHARE = 0.01  # top 1%
DEFAULT_UPPER_SHARE = 0.09  # the next 9%
DEFAULT_RANK_WINDOW_MS = 7 * DAY_MS
NON_INTERACTION_KINDS = frozenset({"FOLLOW", "UNFOLLOW"})


def follower_tiers(bounds: Sequence[int] = DEFAULT_FOLLOWER_BOUNDS) -> tuple[str, ...]:
    """Tier names for ``bounds``: T0 … T<len(bounds)>."""
    return tuple(f"T{i}" for i in range(len(bounds) + 1))


def follower_tier(followers: int, bounds: Sequence[int] = DEFAULT_FOLLOWER_BOUNDS) -> str:
    """Tier of a follower count: T0 < bounds[0] ≤ T1 < bounds[1] … ≤ T<n>."""
    return f"T{bisect_right(bounds, followers)}"


def rank_tiers(
    inbound: Mapping[str, int],
    top_share: float = DEFAULT_TOP_SHARE,
    upper_share: float = DEFAULT_UPPER_SHARE,
) -> dict[str, str]:
    """Tiers by rank of inbound interactions received: top 1% "top", next 9% "upper", rest "base".

    Rank is competition rank over the N accounts given (1 + number of accounts with strictly more
    inbound), so ties share a tier and the result does not depend on account ids; an account is
    "top" when rank ≤ top_share·N and "upper" when rank ≤ (top_share + upper_share)·N. Accounts
    not in ``inbound`` received nothing and are "base".
    """
    n = len(inbound)
    top_limit = math.floor(n * top_share + 1e-9)
    upper_limit = math.floor(n * (top_share + upper_share) + 1e-9)
    ordered = sorted(inbound.items(), key=lambda kv: -kv[1])
    out: dict[str, str] = {}
    rank = 0
    prev: int | None = None
    for i, (account, count) in enumerate(ordered, 1):
        if count != prev:
            rank = i
            prev = count
        out[account] = TOP if rank <= top_limit else UPPER if rank <= upper_limit else BASE
    return out


class TierBook:
    """Latest follower count per account, plus rank tiers for accounts without one.

    Feed it every event (actor profile counts, inbound interactions) and snapshot; call
    ``rerank`` when rank tiers should move (e.g. once per closed hour). ``tier`` is then a dict
    lookup. Inbound counts are kept per hour bucket and dropped once out of the trailing window,
    so state is bounded by accounts × hours in the window.
    """

    def __init__(
        self,
        bounds: Sequence[int] = DEFAULT_FOLLOWER_BOUNDS,
        rank_window_ms: int = DEFAULT_RANK_WINDOW_MS,
        top_share: float = DEFAULT_TOP_SHARE,
        upper_share: float = DEFAULT_UPPER_SHARE,
        bucket_ms: int = HOUR_MS,
    ) -> None:
        self.bounds = tuple(bounds)
        self.rank_window_ms = rank_window_ms
        self.top_share = top_share
        self.upper_share = upper_share
        self.bucket_ms = bucket_ms
        self.latest: dict[str, tuple[int, int]] = {}  # account -> (ts, followers)
        self.buckets: dict[int, Counter[str]] = {}  # bucket start -> account -> inbound
        self.ranked: dict[str, str] = {}
        self.stream_time = NO_TIME

    def observe_events(self, events: Sequence[Event] | EventBatch) -> None:
        """Take actor follower counts and inbound interactions from a batch of events."""
        b = as_batch(events)
        if not len(b):
            return
        ts = b.ts
        latest = self.latest
        followers = b.field("followers")
        for i in [i for i, f in enumerate(followers) if f is not None]:
            t = int(ts[i])
            actor = b.actor[i]
            seen = latest.get(actor)
            if seen is None or t >= seen[0]:
                latest[actor] = (t, followers[i])
        rows = np.flatnonzero(b.directed(exclude=NON_INTERACTION_KINDS))
        if len(rows):
            start = ts[rows] - ts[rows] % self.bucket_ms
            targets = b.target_array[rows]
            for s in np.unique(start).tolist():
                bucket = self.buckets.get(s)
                if bucket is None:
                    bucket = self.buckets[s] = Counter()
                bucket.update(targets[start == s].tolist())
        self.stream_time = max(self.stream_time, int(ts.max()))

    def observe_snapshots(self, snapshots: Iterable[Mapping[str, object]]) -> None:
        """Take follower counts from account snapshots (the latest by ``ts`` wins)."""
        for snap in snapshots:
            followers = snap.get("followers")
            ts = snap["ts"]
            if followers is None:
                continue
            assert isinstance(ts, int) and isinstance(followers, int)
            account = str(snap["account"])
            seen = self.latest.get(account)
            if seen is None or ts >= seen[0]:
                self.latest[account] = (ts, followers)

    def trailing_inbound(self, now: int | None = None) -> dict[str, int]:
        """Inbound interactions per account over the hour buckets of the trailing window."""
        now = self.stream_time if now is None else now
        first = now - now % self.bucket_ms - self.rank_window_ms + self.bucket_ms
        total: dict[str, int] = {}
        for start, counts in self.buckets.items():
            if first <= start <= now:
                for account, c in counts.items():
                    total[account] = total.get(account, 0) + c
        return total

    def rerank(self, now: int | None = None) -> dict[str, str]:
        """Recompute rank tiers over the trailing window ending at ``now`` (stream time)."""
        now = self.stream_time if now is None else now
        first = now - now % self.bucket_ms - self.rank_window_ms + self.bucket_ms
        for start in [s for s in self.buckets if s < first]:
            del self.buckets[start]
        self.ranked = rank_tiers(self.trailing_inbound(now), self.top_share, self.upper_share)
        return self.ranked

    def followers(self, account: str) -> int | None:
        seen = self.latest.get(account)
        return None if seen is None else seen[1]

    def tier(self, account: str) -> str:
        """Follower tier when a count is known, else rank tier (``base`` if never ranked)."""
        seen = self.latest.get(account)
        if seen is not None:
            return f"T{bisect_right(self.bounds, seen[1])}"
        return self.ranked.get(account, BASE)
