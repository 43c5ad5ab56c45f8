"""Drops repeated event ids (a file published twice, producer retries) before any analytic.

Ids are remembered for ``horizon_ms`` of event time behind stream time, by hour bucket, so
memory is bounded by the event rate over the horizon. A repeat older than that cannot reach an
open window any more: it only counts as late.

An id is remembered as its 64-bit xxh3 hash with its bucket's number, in an ``IntMap`` (12 bytes
an id in numpy arrays, where a dict of the id strings took ~130 bytes and pickled ~50× slower).
Two ids with the same hash would make the second look like a repeat: with n ids remembered that
happens to an event with probability n / 2⁶⁴ (10⁻¹¹ for 100 million ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xxhash

from streams.core.intmap import IntMap
from streams.core.windows import HOUR_MS, NO_TIME, Event

DEFAULT_DEDUPE_MS = 8 * 24 * HOUR_MS  # reply horizon (7 d) + the longest window (1 d)
_hash = xxhash.xxh3_64_intdigest


class SeenIds:
    """Event ids seen within the horizon; ``fresh`` keeps the first copy of each."""

    def __init__(self, horizon_ms: int = DEFAULT_DEDUPE_MS, bucket_ms: int = HOUR_MS) -> None:
        self.horizon_ms = horizon_ms
        self.bucket_ms = bucket_ms
        self.ids = IntMap(np.uint64, np.int32)  # id hash -> bucket (event time // bucket_ms)
        self.oldest = NO_TIME  # the oldest bucket remembered (NO_TIME: none)
        self.stream_time = NO_TIME
        self.repeats = 0

    def __len__(self) -> int:
        return len(self.ids)

    def fresh(self, events: Sequence[Event]) -> list[Event]:
        """The events whose id was not seen before (nor earlier in ``events``), in order."""
        if not events:
            return []
        hashes = [_hash(e["event_id"]) for e in events]
        _, known = self.ids.lookup(np.array(hashes, np.uint64), 0)
        new: dict[int, int] = {}
        bucket_ms = self.bucket_ms
        out: list[Event] = []
        for e, h, old in zip(events, hashes, known.tolist(), strict=True):
            if old or h in new:
                continue
            ts = e["ts"]
            new[h] = ts // bucket_ms
            out.append(e)
            if ts > self.stream_time:
                self.stream_time = ts
        self.repeats += len(events) - len(out)
        if new:
            first_new = min(new.values())
            self.oldest = first_new if self.oldest == NO_TIME else min(self.oldest, first_new)
            self.ids.update(np.fromiter(new, np.uint64, len(new)),
                            np.fromiter(new.values(), np.int32, len(new)))  # fmt: skip
        first = (self.stream_time - self.horizon_ms) // bucket_ms  # oldest bucket still within
        if self.oldest != NO_TIME and self.oldest < first:
            self.ids.keep(lambda buckets: buckets >= first)
            values = self.ids.values  # all of them: ``keep`` merged the recent ones
            self.oldest = int(values.min()) if len(values) else NO_TIME
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        ids = state["ids"]
        if isinstance(ids, dict):  # a checkpoint of the id strings (before hashes): rehashed
            state.pop("buckets")
            bucket_ms = state["bucket_ms"]
            hashed = {_hash(i): b // bucket_ms for i, b in ids.items()}
            state["ids"] = IntMap.from_dict(hashed, np.uint64, np.int32)
            state["oldest"] = min(ids.values()) // bucket_ms if ids else NO_TIME
        vars(self).update(state)
