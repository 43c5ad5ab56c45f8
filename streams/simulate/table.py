"""Columnar event building: behaviours append whole arrays, ``finish`` turns them into events.

Behaviours refer to events by their index in the table (a reply names its parent's index), so a
conversation can be grown round by round without ids. ``finish`` drops what falls after the end
of the run (a reply is always later than its parent, so no reply outlives its parent), sorts by
time, numbers the events ``sim:<seed>:<n>`` in that order and works out every actor's profile
counts at each event from the FOLLOW/UNFOLLOW/post events before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.windows import DAY_MS, HOUR_MS
from streams.simulate.population import Population

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Event = dict[str, Any]

KINDS: tuple[str, ...] = (
    "POST",
    "REPLY",
    "COMMENT",
    "MENTION",
    "MESSAGE",
    "SHARE",
    "LIKE",
    "FOLLOW",
    "UNFOLLOW",
)
POST, REPLY, COMMENT, MENTION, MESSAGE, SHARE, LIKE, FOLLOW, UNFOLLOW = range(len(KINDS))
ADDRESSING: tuple[int, ...] = (REPLY, COMMENT, MENTION, MESSAGE)
COUNTS_AS_POST: tuple[int, ...] = (POST, REPLY, COMMENT, MENTION, SHARE)  # a status, not a DM
PLATFORM = "sim"
MINUTE_MS = 60_000

# relative activity by UTC hour: quiet nights, busy afternoons and evenings
_DIURNAL = np.array(
    [
        0.55,
        0.45,
        0.35,
        0.3,
        0.3,
        0.35,
        0.5,
        0.7,
        0.85,
        0.95,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        0.95,
        0.9,
        0.8,
        0.65,
    ]
)


class Timeline:
    """The run's time span ``[start, end)`` and how to draw event times in it."""

    def __init__(self, start_ms: int, end_ms: int) -> None:
        self.start = start_ms
        self.end = end_ms
        first = start_ms - start_ms % MINUTE_MS
        self._minutes = np.arange(first, end_ms, MINUTE_MS, dtype=np.int64)
        weights = _DIURNAL[(self._minutes % DAY_MS) // HOUR_MS]
        self._cdf = np.cumsum(weights)

    @property
    def span(self) -> int:
        return self.end - self.start

    @property
    def days(self) -> float:
        return self.span / DAY_MS

    def sample(self, rng: np.random.Generator, n: int) -> I64:
        """``n`` event times over the whole run, denser by day than at night."""
        if n == 0:
            return np.zeros(0, np.int64)
        pick = np.searchsorted(self._cdf, rng.random(n) * self._cdf[-1], side="right")
        pick = np.minimum(pick, len(self._minutes) - 1)
        ts = self._minutes[pick] + rng.integers(0, MINUTE_MS, n)
        return np.clip(ts, self.start, self.end - 1)

    def day_starts(self) -> list[int]:
        """Start of every epoch-aligned day that begins inside the run."""
        first = self.start + (-self.start) % DAY_MS
        return list(range(first, self.end, DAY_MS))

    def fits(self, begin: int, length: int) -> bool:
        return begin >= self.start and begin + length <= self.end

    def aligned_hours(self, day: int, lo_hour: int, hi_hour: int) -> list[int]:
        """Epoch-aligned hours ``day + lo_hour … day + hi_hour - 1`` lying wholly in the run."""
        return [
            day + h * HOUR_MS
            for h in range(lo_hour, hi_hour)
            if self.fits(day + h * HOUR_MS, HOUR_MS)
        ]


def lognormal_ms(
    rng: np.random.Generator,
    median_ms: F64 | float,
    sigma: F64 | float,
    n: int,
    floor_ms: int = 1_000,
) -> I64:
    """Delays with the given median and log-sd, at least ``floor_ms``."""
    d = np.asarray(median_ms) * np.exp(np.asarray(sigma) * rng.standard_normal(n))
    return np.maximum(floor_ms, d).astype(np.int64)


def _arr(value: int | I64 | Sequence[int], n: int) -> I64:
    a = np.asarray(value, dtype=np.int64)
    return np.full(n, int(a), np.int64) if a.ndim == 0 else a


class EventTable:
    """Events as growing columns; ``add`` returns the indices of the rows it appended."""

    def __init__(self) -> None:
        self._cols: dict[str, list[I64]] = {
            "kind": [],
            "actor": [],
            "target": [],
            "ts": [],
            "parent": [],
            "root": [],
        }
        self._cache: dict[str, I64] = {}
        self.texts: list[str | None] = []
        self.urls: list[list[str] | None] = []
        self.n = 0

    def add(
        self,
        kind: int | I64,
        actor: I64 | Sequence[int],
        ts: I64 | Sequence[int],
        target: int | I64 | Sequence[int] = -1,
        parent: int | I64 | Sequence[int] = -1,
        texts: list[str] | None = None,
        urls: list[list[str]] | None = None,
    ) -> I64:
        """Append events; ``parent`` (a table index, -1 none) also gives the thread root."""
        actor_a = np.asarray(actor, dtype=np.int64)
        n = len(actor_a)
        idx = np.arange(self.n, self.n + n, dtype=np.int64)
        if n == 0:
            return idx
        parent_a = _arr(parent, n)
        root = idx.copy()
        has_parent = parent_a >= 0
        if has_parent.any():
            root[has_parent] = self.column("root")[parent_a[has_parent]]
        for name, col in (
            ("kind", _arr(kind, n)),
            ("actor", actor_a),
            ("target", _arr(target, n)),
            ("ts", np.asarray(ts, dtype=np.int64)),
            ("parent", parent_a),
            ("root", root),
        ):
            if len(col) != n:
                raise ValueError(f"column {name} has {len(col)} values for {n} events")
            self._cols[name].append(col)
        self._cache.clear()
        self.texts.extend(texts if texts is not None else [None] * n)
        self.urls.extend(urls if urls is not None else [None] * n)
        self.n += n
        return idx

    def column(self, name: str) -> I64:
        """One column over every event added so far."""
        if name not in self._cache:
            chunks = self._cols[name]
            self._cache[name] = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
        return self._cache[name]


def _running(account: I64, pos: I64, delta: I64, query_account: I64, query_pos: I64) -> I64:
    """For each query, the sum of ``delta`` over rows with that account and ``pos`` ≤ query pos."""
    out = np.zeros(len(query_account), np.int64)
    if len(account) == 0:
        return out
    span = int(max(pos.max(initial=0), query_pos.max(initial=0))) + 1
    key = account * span + pos
    order = np.argsort(key, kind="stable")
    key_s, acc_s = key[order], account[order]
    cum = np.cumsum(delta[order])
    # subtract what earlier accounts contributed: cumulative sums restart per account
    starts = np.flatnonzero(np.r_[True, acc_s[1:] != acc_s[:-1]])
    before = np.r_[0, cum][starts]
    group = np.cumsum(np.r_[True, acc_s[1:] != acc_s[:-1]]) - 1
    cum = cum - before[group]
    at = np.searchsorted(key_s, query_account * span + query_pos, side="right") - 1
    hit = (at >= 0) & (acc_s[np.maximum(at, 0)] == query_account)
    out[hit] = cum[at[hit]]
    return out


@dataclass(frozen=True)
class Finished:
    """The table after ``finish``: events in time order and their columns (same order)."""

    events: list[Event]
    kind: I64
    actor: I64
    target: I64
    ts: I64


def finish(table: EventTable, pop: Population, end_ms: int, seed: int) -> Finished:
    """Events (schema dicts, every field set) in time order, ids ``sim:<seed>:<n>``."""
    ts_all = table.column("ts")
    kept = np.flatnonzero(ts_all < end_ms)
    ts = ts_all[kept]
    order = kept[np.argsort(ts, kind="stable")]  # table indices in time order
    rank = np.empty(table.n, np.int64)
    rank[order] = np.arange(len(order))  # valid for kept rows (parents and roots are kept)
    kind = table.column("kind")[order]
    actor = table.column("actor")[order]
    target = table.column("target")[order]
    ts = ts_all[order]
    parent = table.column("parent")[order]
    root = table.column("root")[order]
    parent_rank = np.where(parent >= 0, rank[np.maximum(parent, 0)], -1)
    root_rank = rank[root]

    n = len(order)
    pos = np.arange(n, dtype=np.int64)
    follow = kind == FOLLOW
    unfollow = kind == UNFOLLOW
    graph = follow | unfollow
    sign = np.where(follow, 1, -1)[graph]
    following = pop.following[actor] + _running(actor[graph], pos[graph], sign, actor, pos)
    followers = pop.followers[actor] + _running(target[graph], pos[graph], sign, actor, pos)
    posting = np.isin(kind, COUNTS_AS_POST)
    posts = pop.posts[actor] + _running(
        actor[posting], pos[posting], np.ones(int(posting.sum()), np.int64), actor, pos
    )
    following, followers = np.maximum(following, 0), np.maximum(followers, 0)

    prefix = f"sim:{seed}:"
    ids = [f"{prefix}{i}" for i in range(n)]
    names = pop.ids
    texts, urls = table.texts, table.urls
    events: list[Event] = []
    append = events.append
    for i, (k, a, t, s, p, r, f1, f2, f3, o) in enumerate(
        zip(
            kind.tolist(),
            actor.tolist(),
            target.tolist(),
            ts.tolist(),
            parent_rank.tolist(),
            root_rank.tolist(),
            followers.tolist(),
            following.tolist(),
            posts.tolist(),
            order.tolist(),
            strict=True,
        )
    ):
        u = urls[o]
        append(
            {
                "event_id": ids[i],
                "kind": KINDS[k],
                "actor": names[a],
                "target": names[t] if t >= 0 else None,
                "ts": s,
                "in_reply_to": ids[p] if p >= 0 else None,
                "conversation_id": ids[r] if k < FOLLOW else None,
                "text": texts[o],
                "urls": list(u) if u else [],
                "platform": PLATFORM,
                "followers": f1,
                "following": f2,
                "posts": f3,
            }
        )
    return Finished(events, kind, actor, target, ts)
