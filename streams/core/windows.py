"""Event-time windows, stream time, grace and a reorder buffer (METRICS.md, "Windows and time").

Everything here runs on event time only: stream time is the largest event time a partition has
seen, never the wall clock, so replaying a topic gives the same windows, the same late counts and
the same release order as the live run.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import Any, NamedTuple

Event = dict[str, Any]

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WINDOW_SIZES: tuple[int, ...] = (HOUR_MS, DAY_MS)
GRACE_MS = 10 * 60_000
REORDER_MS = 2 * 60_000
NO_TIME = -(1 << 62)  # stream time of a partition that has seen nothing yet


def window_start(ts: int, size_ms: int) -> int:
    """Start of the epoch-aligned tumbling window ``[start, start + size)`` holding ``ts``."""
    return ts - ts % size_ms


def window_bounds(ts: int, size_ms: int) -> tuple[int, int]:
    """``(start, end)`` of the epoch-aligned window holding ``ts``; ``end`` is exclusive."""
    start = ts - ts % size_ms
    return start, start + size_ms


def is_late(ts: int, stream_time: int, size_ms: int, grace_ms: int = GRACE_MS) -> bool:
    """True when an event at ``ts`` missed its window: stream time reached window end + grace.

    An event is accepted while stream time < end + grace. Since ``ts`` < end, it does not matter
    whether ``stream_time`` already includes the event itself.
    """
    return stream_time >= ts - ts % size_ms + size_ms + grace_ms


class Admission(NamedTuple):
    """One batch split per window size: events accepted into their window, and late ones."""

    accepted: dict[int, list[Event]]  # window size (ms) -> events, in input order
    late: dict[int, list[Event]]  # window size (ms) -> events that missed their window


class WindowGate:
    """Stream time per partition and the grace rule; counts late events per window.

    Late events are returned (and counted in ``late_counts``), never dropped, so the caller can
    still store them in the raw table. One gate can serve several partitions.
    """

    def __init__(self, sizes: Iterable[int] = WINDOW_SIZES, grace_ms: int = GRACE_MS) -> None:
        self.sizes: tuple[int, ...] = tuple(sizes)
        self.grace_ms = grace_ms
        self.stream_time: dict[int, int] = {}  # partition -> max event ts seen
        self.late_counts: dict[tuple[int, int], int] = {}  # (size, window start) -> late events

    def time(self, partition: int = 0) -> int:
        """Stream time of ``partition`` (``NO_TIME`` before its first event)."""
        return self.stream_time.get(partition, NO_TIME)

    def admit(self, events: Iterable[Event], partition: int = 0) -> Admission:
        """Advance stream time over ``events`` (in order) and sort each into accepted or late."""
        st = self.stream_time.get(partition, NO_TIME)
        grace = self.grace_ms
        accepted: dict[int, list[Event]] = {s: [] for s in self.sizes}
        late: dict[int, list[Event]] = {s: [] for s in self.sizes}
        late_counts = self.late_counts
        for e in events:
            ts = e["ts"]
            if ts > st:
                st = ts
            for size in self.sizes:
                start = ts - ts % size
                if st >= start + size + grace:
                    late[size].append(e)
                    k = (size, start)
                    late_counts[k] = late_counts.get(k, 0) + 1
                else:
                    accepted[size].append(e)
        self.stream_time[partition] = st
        return Admission(accepted, late)

    def closed(self, size_ms: int, start: int, partition: int = 0) -> bool:
        """True once window ``[start, start + size)`` takes no more events (end + grace reached)."""
        return self.stream_time.get(partition, NO_TIME) >= start + size_ms + self.grace_ms


def _order(e: Event) -> tuple[int, str]:
    return e["ts"], e["event_id"]


def _ts(e: Event) -> int:
    return int(e["ts"])


class ReorderBuffer:
    """Holds events until stream time − ts ≥ ``reorder_ms``, then releases them by (ts, event_id).

    Reply matching depends on the order of events; a source that shuffles events by less than
    ``reorder_ms`` still yields exactly the event-time order, so results are deterministic. An
    event older than what was already released goes out with the next release (counted in
    ``stragglers``): it is never dropped.
    """

    def __init__(self, reorder_ms: int = REORDER_MS) -> None:
        self.reorder_ms = reorder_ms
        self._held: dict[int, list[Event]] = {}  # partition -> events, sorted by (ts, event_id)
        self.stream_time: dict[int, int] = {}
        self._released: dict[int, tuple[int, str]] = {}  # partition -> last released key
        self.stragglers = 0

    def __len__(self) -> int:
        return sum(len(h) for h in self._held.values())

    def push(self, events: Iterable[Event], partition: int = 0) -> list[Event]:
        """Add events in arrival order; return those now due, in (ts, event_id) order."""
        held = self._held.setdefault(partition, [])
        st = self.stream_time.get(partition, NO_TIME)
        n0 = len(held)
        for e in events:
            held.append(e)
            if e["ts"] > st:
                st = e["ts"]
        self.stream_time[partition] = st
        if len(held) == n0:
            return []
        held.sort(key=_order)
        cut = bisect_right(held, st - self.reorder_ms, key=_ts)
        return self._release(partition, cut)

    def flush(self, partition: int = 0) -> list[Event]:
        """Release everything held for ``partition`` (end of its input)."""
        return self._release(partition, len(self._held.get(partition, ())))

    def flush_all(self) -> list[Event]:
        """Release everything held, every partition (end of input), in (ts, event_id) order."""
        out: list[Event] = []
        for p in sorted(self._held):
            out.extend(self.flush(p))
        out.sort(key=_order)
        return out

    def _release(self, partition: int, cut: int) -> list[Event]:
        if cut == 0:
            return []
        held = self._held[partition]
        out = held[:cut]
        del held[:cut]
        last = self._released.get(partition)
        if last is not None:
            for e in out:
                if _order(e) < last:
                    self.stragglers += 1
                else:
                    break
        self._released[partition] = _order(out[-1])
        return out
