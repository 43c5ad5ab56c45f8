"""Columns of an event batch, extracted once and shared by every analytic.

Pulling fields out of dicts is most of the per-event cost in Python; doing it once per batch (one
C-level ``map`` per field) and then working on numpy arrays keeps the core fast. Optional fields
are extracted when first asked for. ``AccountIndex`` numbers accounts so pairs and windows become
int64 keys; stages in one process may share one index and pass ids instead of strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import is_not, itemgetter, methodcaller, ne
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.windows import Event

I64 = npt.NDArray[np.int64]
Objects = npt.NDArray[np.object_]
Bools = npt.NDArray[np.bool_]


_TS = itemgetter("ts")
_KIND = itemgetter("kind")
_ACTOR = itemgetter("actor")
_TARGET = methodcaller("get", "target")
_EVENT_ID = itemgetter("event_id")


def objects(values: Sequence[Any]) -> Objects:
    """A 1-d object array of ``values`` (never a 2-d array, even for tuples)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class AccountIndex:
    """Account name ↔ dense id (0, 1, …), grown as accounts appear; never shrinks (bounded by
    the number of accounts, not by time)."""

    __slots__ = ("ids", "names", "_names_a", "_filled")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self._names_a: Objects = np.empty(1024, dtype=object)  # grows by doubling
        self._filled = 0

    def __len__(self) -> int:
        return len(self.names)

    def ids_of(self, names: list[str]) -> I64:
        """Ids of ``names``, numbering new ones (C-speed when all are known)."""
        n0 = len(self.names)
        ids = intern(self.ids, names)
        if len(self.ids) > n0:
            u, first = np.unique(ids, return_index=True)
            self.names.extend(names[i] for i in first[u >= n0].tolist())
        return ids

    def __getstate__(self) -> list[str]:
        return self.names  # the rest is derived: a checkpoint holds each name once

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # (None, slots) of checkpoints before the names alone
            state = state[1]["names"]
        self.__init__()  # type: ignore[misc]
        self.names = state
        self.ids = {name: i for i, name in enumerate(state)}

    def names_of(self, ids: npt.ArrayLike) -> Objects:
        """Names of ``ids`` as an object array."""
        n = len(self.names)
        if self._filled < n:
            if n > len(self._names_a):
                grown = np.empty(max(n, 2 * len(self._names_a)), dtype=object)
                grown[: self._filled] = self._names_a[: self._filled]
                self._names_a = grown
            self._names_a[self._filled:n] = self.names[self._filled:n]
            self._filled = n
        return self._names_a[np.asarray(ids, np.int64)]


class EventBatch:
    """A batch of events as columns; optional fields come out on demand (``column``)."""

    __slots__ = (
        "events", "ts", "kind", "actor", "target", "event_id", "_actor_a", "_target_a",
        "_event_id_a", "_columns", "_masks", "accounts", "actor_ids", "target_ids",
    )

    def __init__(self, events: Sequence[Event], accounts: AccountIndex | None = None) -> None:
        """``accounts``: number actors and targets once here (target None → −1); stages that
        share the index use the ids instead of looking names up again."""
        self.events = events
        n = len(events)
        self.ts: I64 = np.fromiter(map(_TS, events), np.int64, n)
        self.kind: list[str] = list(map(_KIND, events))
        self.actor: list[str] = list(map(_ACTOR, events))
        self.target: list[str | None] = list(map(_TARGET, events))
        self.event_id: list[str] = list(map(_EVENT_ID, events))
        self._actor_a: Objects | None = None
        self._target_a: Objects | None = None
        self._event_id_a: Objects | None = None
        self._columns: dict[str, tuple[Objects, bool]] = {}
        self._masks: dict[Any, Bools] = {}
        self.accounts = accounts
        self.actor_ids: I64 | None = None
        self.target_ids: I64 | None = None
        if accounts is not None:
            self.actor_ids = accounts.ids_of(self.actor)
            present = [t for t in self.target if t is not None]
            if len(present) == n:
                self.target_ids = accounts.ids_of(present)
            else:
                ids = np.full(n, -1, np.int64)
                ids[np.fromiter(map(is_not, self.target, repeat(None)), np.bool_, n)] = (
                    accounts.ids_of(present))
                self.target_ids = ids

    def column(self, name: str) -> tuple[Objects, bool]:
        """Optional field ``name`` for every row (None when absent), and whether any is set."""
        got = self._columns.get(name)
        if got is None:
            vals = list(map(methodcaller("get", name), self.events))
            got = self._columns[name] = (objects(vals), vals.count(None) != len(vals))
        return got

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def actor_array(self) -> Objects:
        if self._actor_a is None:
            self._actor_a = objects(self.actor)
        return self._actor_a

    @property
    def target_array(self) -> Objects:
        if self._target_a is None:
            self._target_a = objects(self.target)
        return self._target_a

    @property
    def event_id_array(self) -> Objects:
        if self._event_id_a is None:
            self._event_id_a = objects(self.event_id)
        return self._event_id_a

    def field(self, name: str, rows: npt.ArrayLike | None = None) -> list[Any]:
        """Optional field ``name`` (None when absent) for ``rows`` (all rows when None)."""
        got = self._columns.get(name)
        if rows is None or got is not None:
            col, _ = self.column(name)
            return col.tolist() if rows is None else col[np.asarray(rows, np.int64)].tolist()
        events = self.events
        return list(map(methodcaller("get", name),
                        map(events.__getitem__, np.asarray(rows, np.int64).tolist())))

    def directed(
        self, kinds: frozenset[str] | None = None, exclude: frozenset[str] = frozenset()
    ) -> Bools:
        """Rows with a target other than the actor, of ``kinds`` (any when None) not in
        ``exclude``: the events that count between two accounts (cached per batch)."""
        key = (kinds, exclude)
        got = self._masks.get(key)
        if got is not None:
            return got
        n = len(self.kind)
        between = self._masks.get(None)
        if between is None:
            if self.actor_ids is not None and self.target_ids is not None:
                between = (self.target_ids >= 0) & (self.actor_ids != self.target_ids)
            else:
                between = np.fromiter(map(is_not, self.target, repeat(None)), np.bool_, n)
                between &= np.fromiter(map(ne, self.actor, self.target), np.bool_, n)
            self._masks[None] = between
        if kinds is not None:
            ok = np.fromiter(map(kinds.__contains__, self.kind), np.bool_, n) & between
        elif exclude:
            ok = ~np.fromiter(map(exclude.__contains__, self.kind), np.bool_, n) & between
        else:
            ok = between
        self._masks[key] = ok
        return ok


def intern(ids: dict[str, int], names: list[str]) -> I64:
    """Ids of ``names`` in ``ids``, adding new names with the next ids (C-speed when known)."""
    vals: list[int | None] = list(map(ids.get, names))
    if None in vals:
        for i, v in enumerate(vals):
            if v is None:
                x = names[i]
                v = ids.get(x)
                if v is None:
                    v = ids[x] = len(ids)
                vals[i] = v
    return np.fromiter(vals, np.int64, len(vals))


def as_batch(
    events: Sequence[Event] | EventBatch, accounts: AccountIndex | None = None
) -> EventBatch:
    """``events`` as an ``EventBatch`` (extracting columns once if it is a list of dicts)."""
    return events if isinstance(events, EventBatch) else EventBatch(events, accounts)
