"""Drops repeated event ids (a file published twice, producer retries) before any analytic.

Ids are remembered for ``horizon_ms`` of event time behind stream time, in hour buckets that
are forgotten as stream time passes, so memory is bounded by the event rate over the horizon.
A repeat older than that cannot reach an open window any more: it only counts as late.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.core.windows import HOUR_MS, NO_TIME, Event

DEFAULT_DEDUPE_MS = 8 * 24 * HOUR_MS  # reply horizon (7 d) + the longest window (1 d)


class SeenIds:
    """Event ids seen within the horizon; ``fresh`` keeps the first copy of each."""

    def __init__(self, horizon_ms: int = DEFAULT_DEDUPE_MS, bucket_ms: int = HOUR_MS) -> None:
        self.horizon_ms = horizon_ms
        self.bucket_ms = bucket_ms
        self.ids: dict[str, int] = {}  # event id -> its bucket start
        self.buckets: dict[int, list[str]] = {}
        self.stream_time = NO_TIME
        self.repeats = 0

    def __len__(self) -> int:
        return len(self.ids)

    def fresh(self, events: Sequence[Event]) -> list[Event]:
        """The events whose id was not seen before (nor earlier in ``events``), in order."""
        ids = self.ids
        out: list[Event] = []
        bucket_ms = self.bucket_ms
        for e in events:
            eid = e["event_id"]
            if eid in ids:
                continue
            ts = e["ts"]
            b = ts - ts % bucket_ms
            ids[eid] = b
            self.buckets.setdefault(b, []).append(eid)
            out.append(e)
            if ts > self.stream_time:
                self.stream_time = ts
        self.repeats += len(events) - len(out)
        self._forget()
        return out

    def _forget(self) -> None:
        first = self.stream_time - self.horizon_ms
        old = [b for b in self.buckets if b + self.bucket_ms <= first]
        for b in old:
            for eid in self.buckets.pop(b):
                if self.ids.get(eid) == b:
                    del self.ids[eid]
