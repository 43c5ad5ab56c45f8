"""Drops repeated event ids (a file published twice, producer retries) before any analytic.

Ids are remembered for ``horizon_ms`` of event time behind stream time, by hour bucket, so
memory is bounded by the event rate over the horizon. A repeat older than that cannot reach an
open window any more: it only counts as late.

An id is remembered as its 64-bit xxh3 hash and its bucket's number: 12 bytes in sorted numpy
arrays, where a Python set of the id strings took ~130 bytes an id and pickled ~50× slower (a
checkpoint pickles it whole). The newest ids wait in a small dict until there are enough to
merge into the arrays; expired buckets are cut out when stream time passes them. Two ids with
the same hash would make the second look like a repeat: with n ids remembered that happens to
an event with probability n / 2⁶⁴ (10⁻¹¹ for 100 million ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xxhash

from streams.core.windows import HOUR_MS, NO_TIME, Event

DEFAULT_DEDUPE_MS = 8 * 24 * HOUR_MS  # reply horizon (7 d) + the longest window (1 d)
MERGE_AT = 1 << 18  # recent ids merged into the arrays this many at a time
_hash = xxhash.xxh3_64_intdigest


class SeenIds:
    """Event ids seen within the horizon; ``fresh`` keeps the first copy of each."""

    def __init__(self, horizon_ms: int = DEFAULT_DEDUPE_MS, bucket_ms: int = HOUR_MS) -> None:
        self.horizon_ms = horizon_ms
        self.bucket_ms = bucket_ms
        self.hashes = np.empty(0, np.uint64)  # sorted
        self.buckets = np.empty(0, np.int32)  # each hash's bucket (event time // bucket_ms)
        self.recent: dict[int, int] = {}  # hash -> bucket, not merged yet
        self.oldest = NO_TIME  # the oldest bucket remembered (NO_TIME: none)
        self.stream_time = NO_TIME
        self.repeats = 0

    def __len__(self) -> int:
        return len(self.hashes) + len(self.recent)

    def fresh(self, events: Sequence[Event]) -> list[Event]:
        """The events whose id was not seen before (nor earlier in ``events``), in order."""
        if not events:
            return []
        hashes = [_hash(e["event_id"]) for e in events]
        known = self._known(np.array(hashes, np.uint64))
        recent = self.recent
        bucket_ms = self.bucket_ms
        out: list[Event] = []
        for e, h, old in zip(events, hashes, known.tolist(), strict=True):
            if old or h in recent:
                continue
            ts = e["ts"]
            b = ts // bucket_ms
            recent[h] = b
            out.append(e)
            if ts > self.stream_time:
                self.stream_time = ts
            if self.oldest == NO_TIME or b < self.oldest:
                self.oldest = b
        self.repeats += len(events) - len(out)
        expired = self.oldest != NO_TIME and self.oldest < self._first()
        if expired or len(recent) >= MERGE_AT:
            self._merge()
        return out

    def _known(self, hashes: np.ndarray) -> np.ndarray:
        if not len(self.hashes):
            return np.zeros(len(hashes), bool)
        at = np.searchsorted(self.hashes, hashes).clip(max=len(self.hashes) - 1)
        return self.hashes[at] == hashes

    def _first(self) -> int:
        """The oldest bucket still remembered at the current stream time: the one that ends
        after stream time − horizon."""
        return (self.stream_time - self.horizon_ms) // self.bucket_ms

    def _merge(self) -> None:
        """Recent ids into the arrays, expired buckets out."""
        hashes = np.concatenate([self.hashes, np.fromiter(self.recent, np.uint64)])
        buckets = np.concatenate([self.buckets, np.fromiter(self.recent.values(), np.int32)])
        self.recent = {}
        keep = buckets >= self._first()
        order = np.argsort(hashes[keep], kind="stable")  # timsort: two sorted runs, merged
        self.hashes, self.buckets = hashes[keep][order], buckets[keep][order]
        self.oldest = int(self.buckets.min()) if len(self.buckets) else NO_TIME

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        n = len(self.recent)
        state["recent"] = (np.fromiter(self.recent, np.uint64, n),
                           np.fromiter(self.recent.values(), np.int32, n))  # fmt: skip
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "ids" in state:  # a checkpoint of the id strings (before hashes): rehashed
            ids: dict[str, int] = state.pop("ids")
            state.pop("buckets")
            state["recent"] = {_hash(i): b // state["bucket_ms"] for i, b in ids.items()}
            state["hashes"] = np.empty(0, np.uint64)
            state["buckets"] = np.empty(0, np.int32)
            state["oldest"] = min(state["recent"].values(), default=NO_TIME)
        else:
            hashes, buckets = state["recent"]
            state["recent"] = dict(zip(hashes.tolist(), buckets.tolist(), strict=True))
        vars(self).update(state)
