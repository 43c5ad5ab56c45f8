"""Trailing windows per key, shared by the rules: what "within 1 h" means, in one place.

A key's window is ``(top − window, top]``, ``top`` being the latest event time seen for that key
(never the wall clock). Each rule judges a key when one of its events arrives, in arrival order,
so the verdict depends only on the events and their order, never on how they were cut into
batches; an event arriving at most the lateness allowance out of order is judged in the window
of the key's latest event.

``TrailingSet`` holds the distinct elements seen in a key's window (targets, actors, event ids),
each with its latest time and event id, and expires them as ``top`` moves on. Its memory is
bounded by the events in one window; ``cap`` bounds it further where only "at least N" matters
(the N latest elements decide that). ``expire_keys`` drops whole keys once stream time has left
their window: state shrinks as stream time passes, even for keys that never see another event.
A pass looks at every key, so ``Expiry`` runs it once per quarter of the time keys are kept
(at least hourly): a bounded share of the work, for at most a quarter more state.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, MutableMapping
from heapq import heappop, heappush
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar, cast

from streams.core.windows import HOUR_MS, NO_TIME


class Entry(NamedTuple):
    """One element's latest sighting in a window: time, event id, and the rule's ``mark``
    (counted by the set, e.g. "new target"). A tuple: sets hold many, and the garbage
    collector stops tracking tuples of atoms."""

    ts: int
    event_id: str
    mark: bool


class Packed:
    """Per-key state pickled as the tuple of its ``_pickled`` slots (default: all). Checkpoints
    pickle hundreds of thousands of these; the default (a dict of slots per object) took twice
    as long (4.4 µs an object), and a Python loop over the names a third longer than one
    ``attrgetter`` call made once per class."""

    __slots__ = ()
    _pickled: tuple[str, ...] = ()
    _getter: Callable[[Any], Any]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "_pickled" not in cls.__dict__:
            cls._pickled = cls.__slots__
        get = attrgetter(*cls._pickled)  # one name: the value alone, not a tuple
        cls._getter = staticmethod(get if len(cls._pickled) > 1 else lambda obj: (get(obj),))

    def __getstate__(self) -> tuple[Any, ...]:
        return cast(tuple[Any, ...], self._getter(self))

    def __setstate__(self, state: Any) -> None:
        names = self._pickled
        if isinstance(state, tuple) and len(state) == 2 and state[0] is None:
            state = tuple(state[1][name] for name in names)  # the default's, older checkpoints
        for name, value in zip(names, state, strict=True):
            setattr(self, name, value)


class TrailingSet(Packed):
    """Distinct elements of one key seen in ``(top − window_ms, top]``; ``marked``: how many
    carry a mark. An element seen again keeps its mark (that of its first sighting in the
    window) and takes the later time and event id."""

    __slots__ = ("window_ms", "cap", "top", "entries", "marked", "_heap")

    def __init__(self, window_ms: int, cap: int | None = None) -> None:
        self.window_ms = window_ms
        self.cap = cap
        self.top = NO_TIME
        self.entries: dict[Any, Entry] = {}
        self.marked = 0
        self._heap: list[tuple[int, Any]] = []  # (ts, element), stale ones skipped on pop

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, element: Hashable, ts: int, event_id: str, mark: bool = False) -> Entry | None:
        """Count a sighting; None when it falls before the window (nothing changes then)."""
        if ts > self.top:
            self.top = ts
            self._drop_until(ts - self.window_ms)  # first: an expired element comes back new
        elif ts <= self.top - self.window_ms:
            return None
        entry = self.entries.get(element)
        if entry is None:
            entry = self.entries[element] = Entry(ts, event_id, mark)
            self.marked += mark
            heappush(self._heap, (ts, element))
        elif ts > entry.ts:
            entry = self.entries[element] = Entry(ts, event_id, entry.mark)
            heappush(self._heap, (ts, element))
        if self.cap is not None:
            while len(self.entries) > self.cap:
                self._drop_oldest()
        return entry

    def remove(self, element: Hashable) -> None:
        entry = self.entries.pop(element, None)
        if entry is not None:
            self.marked -= entry.mark

    def _drop_until(self, edge: int) -> None:
        heap = self._heap
        while heap and heap[0][0] <= edge:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        ts, element = heappop(self._heap)
        entry = self.entries.get(element)
        if entry is not None and entry.ts == ts:  # else stale: the element was seen later
            del self.entries[element]
            self.marked -= entry.mark

    def sample(self, k: int) -> tuple[str, ...]:
        """Event ids of the ``k`` earliest elements (by time, then id)."""
        return tuple(e.event_id for e in sorted(self.entries.values(), key=_entry_order)[:k])

    def first_seen(self) -> int:
        return min(e.ts for e in self.entries.values())

    def __getstate__(self) -> tuple[Any, ...]:
        """``_COLUMNS``: the elements and their entries' fields as columns (a named tuple
        pickles through a Python call each); not the heap, which ``__setstate__`` rebuilds from
        the entries (its stale items only ever stood for entries replaced or removed)."""
        columns = tuple(zip(*self.entries.values(), strict=True)) or ((), (), ())
        return (_COLUMNS, self.window_ms, self.cap, self.top, self.marked,
                tuple(self.entries), *columns)  # fmt: skip

    def __setstate__(self, state: Any) -> None:
        if state[0] != _COLUMNS:  # the slots' tuple (entries as plain tuples), older checkpoints
            super().__setstate__(state)
            self.entries = dict(zip(self.entries, map(Entry._make, self.entries.values()),
                                    strict=True))  # fmt: skip
            return
        _, self.window_ms, self.cap, self.top, self.marked, elements, ts, ids, marks = state
        self.entries = dict(zip(elements, map(Entry, ts, ids, marks), strict=True))
        self._heap = sorted(zip(ts, elements, strict=True))  # sorted: a heap


_COLUMNS = "columns"  # a TrailingSet's state as columns (older ones begin with ``window_ms``)


def _entry_order(e: Entry) -> tuple[int, str]:
    return e.ts, e.event_id


V = TypeVar("V")  # per-key state


def expire_keys(
    states: MutableMapping[Any, V], before: int, top: Callable[[V], int] = attrgetter("top")
) -> None:
    """Drop the keys whose latest event (``top`` of the value) is at or before ``before`` (their
    window is over for good: callers pass stream time − lateness − window). One by one: a
    tracked dict (``streams.core.changes``) saves the deletions."""
    stale = [k for k, s in states.items() if top(s) <= before]
    for k in stale:
        del states[k]


class Expiry(Packed):
    """When the next pass over keys kept ``keep_ms`` after their last event is due."""

    __slots__ = ("every_ms", "next")

    def __init__(self, keep_ms: int, every_ms: int | None = None) -> None:
        self.every_ms = every_ms if every_ms is not None else max(HOUR_MS, keep_ms // 4)
        self.next = NO_TIME

    def due(self, now: int) -> bool:
        if now < self.next:
            return False
        self.next = now + self.every_ms
        return True
