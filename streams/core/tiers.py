"""Account tiers (METRICS.md, "Tiers"): whom an account is, by audience size.

"Does A answer small accounts?" needs a tier for every requester. Where follower counts exist the
tier is the bucket of the latest one (T0 < 100 … T5 ≥ 1M); sources without them (e.g. SNAP edge
lists) rank accounts by the inbound interactions they received over a trailing window instead.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.batch import I64, AccountIndex, EventBatch, as_batch
from streams.core.changes import Written, is_saving_changes
from streams.core.narrow import narrow
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


def _one_part(parts: list[tuple[I64, I64]]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Parts of (distinct account ids, counts) as one, narrowed for a checkpoint."""
    ids = np.concatenate([u for u, _ in parts])
    uniq, at = np.unique(ids, return_inverse=True)
    counts = np.bincount(at, np.concatenate([c for _, c in parts]), len(uniq)).astype(np.int64)
    return narrow(uniq), narrow(counts)


def _rank_codes(counts: npt.NDArray[np.int64], top_share: float, upper_share: float
                ) -> npt.NDArray[np.int64]:
    """0 (top), 1 (upper) or 2 (base) for each count, by rank; see rank_tiers."""
    n = len(counts)
    top_limit = math.floor(n * top_share + 1e-9)
    upper_limit = math.floor(n * (top_share + upper_share) + 1e-9)
    rank = n - np.searchsorted(np.sort(counts), counts, "left")  # accounts with ≥ this count
    return np.where(rank <= top_limit, 0, np.where(rank <= upper_limit, 1, 2))


_RANK_NAMES = (TOP, UPPER, BASE)


def rank_tiers(
    inbound: Mapping[str, int],
    top_share: float = DEFAULT_TOP_SHARE,
    upper_share: float = DEFAULT_UPPER_SHARE,
) -> dict[str, str]:
    """Tiers by rank of inbound interactions received: top 1% "top", next 9% "upper", rest "base".

    The population is the N accounts in ``inbound`` with a count > 0. An account's rank is the
    number of accounts with at least its count, so ties share a tier (and the result does not
    depend on account ids) and a tie never pushes a tier past its share: an account is "top"
    when rank ≤ top_share·N and "upper" when rank ≤ (top_share + upper_share)·N. Everyone else,
    including accounts not in ``inbound``, is "base".
    """
    accounts = [a for a, c in inbound.items() if c > 0]
    counts = np.fromiter((inbound[a] for a in accounts), np.int64, len(accounts))
    codes = _rank_codes(counts, top_share, upper_share)
    return {a: _RANK_NAMES[c] for a, c in zip(accounts, codes.tolist(), strict=True)}


def _latest_columns(latest: Mapping[str, tuple[int, int]]) -> tuple[list[str], I64, Any]:
    ts = np.fromiter((t for t, _ in latest.values()), np.int64, len(latest))
    followers = np.fromiter((f for _, f in latest.values()), np.int64, len(latest))
    return list(latest), ts, narrow(followers)


def _latest_dict(columns: tuple[list[str], I64, Any]) -> dict[str, tuple[int, int]]:
    names, ts, followers = columns
    return dict(zip(names, zip(ts.tolist(), followers.tolist(), strict=True), strict=True))


class Latest(Written[str, tuple[int, int]]):
    """Account → (time, followers) of its latest count; saved as columns."""

    __slots__ = ()
    pack = staticmethod(_latest_columns)
    unpack = staticmethod(_latest_dict)


class TierBook:
    """Tier of every account: bucket of its latest follower count, else its inbound rank.

    Feed it every event (actor profile counts at event time, inbound interactions) and snapshot;
    a snapshot counts from its own time on (one newer than the stream waits in ``pending`` until
    ``due_snapshots`` hands it over), so an event's tier does not depend on when the snapshot
    happened to arrive. Call ``rerank`` when rank tiers should move (e.g. once per batch or
    closed hour). ``tiers``
    is a plain dict account → tier, kept current, with "base" for accounts it does not hold:
    hand it to ``RequesterTags``. Inbound counts are kept per hour bucket (as account ids and
    counts) and forgotten once out of the trailing window (hour granularity), so state is
    bounded by the window; a running total per account id makes ``rerank`` one numpy pass.
    """

    def __init__(
        self,
        bounds: Sequence[int] = DEFAULT_FOLLOWER_BOUNDS,
        rank_window_ms: int = DEFAULT_RANK_WINDOW_MS,
        top_share: float = DEFAULT_TOP_SHARE,
        upper_share: float = DEFAULT_UPPER_SHARE,
        bucket_ms: int = HOUR_MS,
        accounts: AccountIndex | None = None,
    ) -> None:
        self.bounds = tuple(bounds)
        self.rank_window_ms = rank_window_ms
        self.top_share = top_share
        self.upper_share = upper_share
        self.bucket_ms = bucket_ms
        self.accounts = accounts if accounts is not None else AccountIndex()
        self.latest = Latest()  # account -> (ts, followers)
        self.tiers: dict[str, str] = Written()  # account -> tier; absent means "base"
        self._ranked: set[str] = set()  # accounts whose entry in ``tiers`` is a rank tier
        # bucket start -> (account ids, inbound counts) of each batch that fell in it
        self.buckets: dict[int, list[tuple[I64, I64]]] = {}
        self._window: I64 = np.zeros(1024, np.int64)  # inbound per account id, buckets held
        self.pending: list[tuple[int, str, int]] = []  # heap of snapshots ahead of the stream
        self._held: set[tuple[int, str, int]] = set()  # the same, to hold each once
        self.stream_time = NO_TIME

    def __getstate__(self) -> dict[str, Any]:
        """``latest`` as columns (a tuple of two ints an account pickled to ~10 bytes), unless
        a save of changes holds it (``streams.core.changes``)."""
        # a bucket's parts (one per batch) summed into one: every reader adds them up
        buckets = {s: [_one_part(parts)] for s, parts in self.buckets.items()}
        latest = self.latest if is_saving_changes() else _latest_columns(self.latest)
        return {**vars(self), "latest": latest, "buckets": buckets}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["buckets"] = {s: [(u.astype(np.int64), c.astype(np.int64)) for u, c in parts]
                            for s, parts in state["buckets"].items()}  # fmt: skip
        latest = state["latest"]
        if isinstance(latest, tuple):
            state["latest"] = Latest(_latest_dict(latest))
        elif not isinstance(latest, Latest):  # a dict, from before the columns
            state["latest"] = Latest(latest)
        vars(self).update(state)

    def _follow(self, account: str, ts: int, followers: int) -> None:
        seen = self.latest.get(account)
        if seen is None or ts >= seen[0]:
            self.latest[account] = (ts, followers)
            self.tiers[account] = f"T{bisect_right(self.bounds, followers)}"
            self._ranked.discard(account)

    def observe_events(self, events: Sequence[Event] | EventBatch) -> None:
        """Take actor follower counts and inbound interactions from a batch of events."""
        b = as_batch(events, self.accounts)
        if not len(b):
            return
        ts = b.ts
        followers = b.field("followers")
        if followers.count(None) != len(followers):
            for i, f in enumerate(followers):
                if f is not None:
                    self._follow(b.actor[i], int(ts[i]), f)
        rows = np.flatnonzero(b.directed(exclude=NON_INTERACTION_KINDS))
        if len(rows):
            if b.accounts is self.accounts and b.target_ids is not None:
                ids = b.target_ids[rows]
            else:
                ids = self.accounts.ids_of(b.target_array[rows].tolist())
            if len(self.accounts) > len(self._window):
                grown = np.zeros(max(len(self.accounts), 2 * len(self._window)), np.int64)
                grown[: len(self._window)] = self._window
                self._window = grown
            start = ts[rows] - ts[rows] % self.bucket_ms
            first, last = int(start.min()), int(start.max())
            for s in [first] if first == last else np.unique(start).tolist():
                u, c = np.unique(ids if first == last else ids[start == s], return_counts=True)
                self.buckets.setdefault(s, []).append((u, c))
                self._window[u] += c
        self.stream_time = max(self.stream_time, int(ts.max()))

    def observe_snapshots(self, snapshots: Iterable[Mapping[str, object]]) -> None:
        """Take follower counts from account snapshots (the latest by ``ts`` wins): at once if
        the stream has reached their time, else held until it does (``due_snapshots``)."""
        for snap in snapshots:
            followers = snap.get("followers")
            ts = snap["ts"]
            if followers is None:
                continue
            assert isinstance(ts, int) and isinstance(followers, int)
            if ts <= self.stream_time:
                self._follow(str(snap["account"]), ts, followers)
                continue
            held = (ts, str(snap["account"]), followers)
            if held not in self._held:  # a snapshot read again (a restart) is held once
                self._held.add(held)
                heapq.heappush(self.pending, held)

    def due_snapshots(self, until: int) -> list[tuple[int, str, int]]:
        """Held snapshots with ``ts ≤ until`` as (ts, account, followers), in time order; the
        caller places them among its events and hands them back to ``follow_snapshots``."""
        due = []
        while self.pending and self.pending[0][0] <= until:
            due.append(heapq.heappop(self.pending))
        self._held.difference_update(due)
        return due

    def follow_snapshots(self, snapshots: Iterable[tuple[int, str, int]]) -> None:
        for ts, account, followers in snapshots:
            self._follow(account, ts, followers)

    def _first_bucket(self, now: int) -> int:
        return now - now % self.bucket_ms - self.rank_window_ms + self.bucket_ms

    def _trailing(self, now: int) -> I64:
        total = np.zeros(len(self._window), np.int64)
        first = self._first_bucket(now)
        for start, parts in self.buckets.items():
            if first <= start <= now:
                for u, c in parts:
                    total[u] += c
        return total

    def trailing_inbound(self, now: int | None = None) -> dict[str, int]:
        """Inbound interactions per account over the trailing window's hour buckets."""
        total = self._trailing(self.stream_time if now is None else now)
        names = self.accounts.names
        return {names[i]: int(total[i]) for i in np.flatnonzero(total).tolist()}

    def rerank(self, now: int | None = None) -> dict[str, str]:
        """Forget buckets out of the trailing window ending at ``now`` (stream time) and recompute
        rank tiers; returns the accounts ranked "top" or "upper"."""
        now = self.stream_time if now is None else now
        first = self._first_bucket(now)
        for start in [s for s in self.buckets if s < first]:
            for u, c in self.buckets.pop(start):
                self._window[u] -= c
        # a rerank in the past counts exactly; otherwise the running total is the window
        counts = self._trailing(now) if any(s > now for s in self.buckets) else self._window
        live = np.flatnonzero(counts > 0)
        codes = _rank_codes(counts[live], self.top_share, self.upper_share)
        high = codes < 2
        names = self.accounts.names
        ranked = {names[i]: _RANK_NAMES[c]
                  for i, c in zip(live[high].tolist(), codes[high].tolist(), strict=True)}
        tiers = self.tiers
        for a in self._ranked:
            del tiers[a]
        fresh = {a: t for a, t in ranked.items() if a not in self.latest}
        tiers.update(fresh)
        self._ranked = set(fresh)
        return ranked

    def followers(self, account: str) -> int | None:
        seen = self.latest.get(account)
        return None if seen is None else seen[1]

    def tier(self, account: str) -> str:
        """Follower tier when a count is known, else rank tier ("base" if not ranked)."""
        return self.tiers.get(account, BASE)
