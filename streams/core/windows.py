"""Event-time windows, stream time, grace and a reorder buffer (METRICS.md, "Windows and time").

Everything here runs on event time only: stream time is the largest event time a partition has
seen, never the wall clock, so replaying a topic gives the same windows, the same late counts and
the same release order as the live run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from streams.core.changes import reduce_changes

Event = dict[str, Any]
I64 = npt.NDArray[np.int64]
_PACK = msgspec.msgpack.Encoder()
_UNPACK = msgspec.msgpack.Decoder(list[Event])

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


_TS = itemgetter("ts")
_EID = itemgetter("event_id")


class ReorderBuffer:
    """Holds events until stream time − ts ≥ ``reorder_ms``, then releases them by (ts, event_id).

    Reply matching depends on the order of events; a source that shuffles events by less than
    ``reorder_ms`` still yields exactly the event-time order, so results are deterministic. An
    event older than what was already released goes out with the next release (counted in
    ``stragglers``): it is never dropped.

    Release decisions are made per input *message* (``push_messages``): an event leaves after
    the first message, from its own on, that moves stream time ≥ its ts + ``reorder_ms``. So the
    released sequence depends only on the sequence of messages, not on how a consumer happened
    to group them into batches: a replay after a restart releases exactly the same order.

    Held events leave from the front and mostly arrive at the end, so once ``track`` starts
    it a save of changes (``streams.core.changes``) holds per partition how many left the front
    and the events added at the end since, not two minutes of events (the whole partition when
    an arrival sorted before held events).
    """

    def __init__(self, reorder_ms: int = REORDER_MS) -> None:
        self.reorder_ms = reorder_ms
        self._held: dict[int, list[Event]] = {}  # partition -> events, sorted by (ts, event_id)
        self._held_ts: dict[int, I64] = {}  # their times (derived: not pickled)
        self.stream_time: dict[int, int] = {}
        self._released: dict[int, tuple[int, str]] = {}  # partition -> last released key
        self.stragglers = 0
        # since ``track``: held per partition then, how many left the front since, partitions
        # whose held events were re-sorted or flushed (not pickled)
        self._tracked: dict[int, int] | None = None
        self._dropped: dict[int, int] = {}
        self._resorted: set[int] = set()

    def track(self) -> None:
        self._tracked = {p: len(h) for p, h in self._held.items()}
        self._dropped, self._resorted = {}, set()

    def changes(self) -> dict[str, Any]:
        """Per partition held: (events that left the front, packed events added at the end),
        or (None, all of them packed); the partitions gone; the other attributes."""
        if self._tracked is None:
            raise RuntimeError("a reorder buffer saved as changes while not tracking them")
        held: dict[int, tuple[int | None, bytes]] = {}
        for p, h in self._held.items():
            if p in self._resorted or p not in self._tracked:
                held[p] = (None, pack_events(h))
                continue
            dropped = self._dropped.get(p, 0)
            held[p] = (dropped, pack_events(h[max(0, self._tracked[p] - dropped) :]))
        rest = {k: v for k, v in self._state().items() if k != "_held"}
        return {"held": held, "gone": [p for p in self._tracked if p not in self._held], **rest}

    def apply(self, changes: dict[str, Any]) -> None:
        changes = dict(changes)
        for p in changes.pop("gone"):
            self._held.pop(p, None)
        for p, (dropped, tail) in changes.pop("held").items():
            base = [] if dropped is None else self._held.get(p, [])[dropped:]
            self._held[p] = base + unpack_events(tail)
        self.__dict__.update(changes)
        self._held_ts = {p: _times(h) for p, h in self._held.items()}

    def __reduce_ex__(self, protocol: Any) -> Any:
        return reduce_changes(self) or super().__reduce_ex__(protocol)

    def _state(self) -> dict[str, Any]:
        derived = ("_held_ts", "_tracked", "_dropped", "_resorted")
        return {k: v for k, v in self.__dict__.items() if k not in derived}

    def __getstate__(self) -> dict[str, Any]:
        """The held events as MessagePack (validated events: plain values only), as on the
        by-actor topic: a live partition holds two minutes of events (85k at the alert bench's
        pace), which took 0.39 s to pickle and take 0.07 s to pack."""
        state = self._state()
        state["_held"] = {p: pack_events(h) for p, h in self._held.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        held = state["_held"]  # lists of events in checkpoints from before the packing
        state["_held"] = {p: unpack_events(h) if isinstance(h, bytes) else h
                          for p, h in held.items()}  # fmt: skip
        self.__dict__.update(state)
        self._held_ts = {p: _times(h) for p, h in self._held.items()}
        self._tracked, self._dropped, self._resorted = None, {}, set()

    def __len__(self) -> int:
        return sum(len(h) for h in self._held.values())

    def push(self, events: Iterable[Event], partition: int = 0) -> list[Event]:
        """Add one message's events; return those now due, in (ts, event_id) order."""
        return self.push_messages([list(events)], partition)

    def push_messages(self, messages: Sequence[Sequence[Event]], partition: int = 0) -> list[Event]:
        """Add several messages' events (in arrival order); return those now due, in order:
        what each message released, one message after the other, each in (ts, event_id) order.

        Costs what arrives and leaves, not what is held: the held events are sorted, so those
        due are a prefix, and new events that sort after them are appended (a live stream's
        two minutes of held events were re-read and re-sorted at every small batch)."""
        lens = np.fromiter(map(len, messages), np.int64, len(messages))
        if not lens.sum():
            return []
        held = self._held.get(partition, [])
        held_ts = self._held_ts.get(partition, np.zeros(0, np.int64))
        new = [e for m in messages for e in m]
        new_ts = _times(new)
        msg = np.repeat(np.arange(len(messages)), lens)
        st0 = self.stream_time.get(partition, NO_TIME)
        # stream time after each message (a message without events leaves it unchanged)
        top = np.full(len(messages), st0, np.int64)
        np.maximum.at(top, msg, new_ts)
        st = np.maximum.accumulate(top)
        self.stream_time[partition] = int(st[-1])
        edges = st - self.reorder_ms
        k = int(np.searchsorted(held_ts, edges[-1], "right"))  # held events now due
        new_due = np.maximum(msg, np.searchsorted(edges, new_ts, "left"))
        going = np.flatnonzero(new_due < len(messages))
        staying = np.flatnonzero(new_due >= len(messages))
        leaving, rest_ts = held[:k], held_ts[k:]
        del held[:k]  # in place: no copy of what stays
        if self._tracked is not None:
            self._dropped[partition] = self._dropped.get(partition, 0) + k
        if len(staying):
            stay = _sorted_rows(new, new_ts, staying, None)
            interleaved = bool(held) and _order(stay[0]) <= _order(held[-1])
            held.extend(stay)
            rest_ts = np.concatenate((rest_ts, np.sort(new_ts[staying])))  # aligned with held
            if interleaved:  # sort them all
                held = _sorted_rows(held, rest_ts, np.arange(len(held)), None)
                rest_ts = np.sort(rest_ts)
                self._resorted.add(partition)
        self._held[partition], self._held_ts[partition] = held, rest_ts
        if not k and not len(going):
            return []
        out_ts = np.concatenate((held_ts[:k], new_ts[going]))
        due = np.concatenate((np.searchsorted(edges, held_ts[:k], "left"), new_due[going]))
        out = _sorted_rows(leaving + [new[i] for i in going.tolist()], out_ts,
                           np.arange(len(out_ts)), due)  # fmt: skip
        self._count_stragglers(partition, out)
        return out

    def flush(self, partition: int = 0) -> list[Event]:
        """Release everything held for ``partition`` (end of its input)."""
        self._held_ts.pop(partition, None)
        self._resorted.add(partition)
        out = self._held.pop(partition, [])
        if out:
            self._count_stragglers(partition, out)
        return out

    def flush_all(self) -> list[Event]:
        """Release everything held, every partition (end of input), in (ts, event_id) order."""
        out: list[Event] = []
        for p in sorted(self._held):
            out.extend(self.flush(p))
        out.sort(key=_order)
        return out

    def _count_stragglers(self, partition: int, out: list[Event]) -> None:
        last = self._released.get(partition)
        keys = list(map(_order, out))
        if last is not None:
            self.stragglers += sum(1 for k in keys if k < last)
        self._released[partition] = max(keys) if last is None else max(last, max(keys))


def pack_events(events: Sequence[Event]) -> bytes:
    """Validated events (plain values only) as MessagePack: the by-actor topic's messages and
    the reorder buffer's checkpoints."""
    return _PACK.encode(events)


def unpack_events(data: bytes) -> list[Event]:
    """``pack_events`` undone; ``msgspec.DecodeError`` for anything else."""
    return _UNPACK.decode(data)


def _times(events: Sequence[Event]) -> I64:
    return np.fromiter(map(_TS, events), np.int64, len(events))


def _sorted_rows(events: list[Event], ts: I64, rows: I64, group: I64 | None) -> list[Event]:
    """``events[rows]`` ordered by (group, ts, event_id); numpy does (group, ts), Python only
    breaks the ties."""
    if not len(rows):
        return []
    t = ts[rows]
    keys = (t,) if group is None else (t, group[rows])
    order = rows[np.lexsort(keys)]
    ot = ts[order]
    same = ot[1:] == ot[:-1]
    if group is not None:
        g = group[order]
        same &= g[1:] == g[:-1]
    picked = [events[i] for i in order.tolist()]
    if same.any():
        # runs of equal (group, ts): order each run by event_id
        edges = np.flatnonzero(np.diff(np.concatenate(([0], same.astype(np.int8), [0]))))
        for lo, hi in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            picked[lo:hi + 1] = sorted(picked[lo:hi + 1], key=_EID)
    return picked
