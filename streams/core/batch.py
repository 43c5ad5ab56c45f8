"""Columns of an event batch, extracted once and shared by every analytic.

Pulling fields out of dicts is most of the per-event cost in Python; doing it once per batch (one
list comprehension per field) and then working on numpy arrays keeps the core fast. Optional
fields are extracted only for the rows that need them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.windows import Event

I64 = npt.NDArray[np.int64]
Objects = npt.NDArray[np.object_]
Bools = npt.NDArray[np.bool_]


def objects(values: Sequence[Any]) -> Objects:
    """A 1-d object array of ``values`` (never a 2-d array, even for tuples)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class EventBatch:
    """A batch of events as columns; ``events`` stays available for optional fields."""

    __slots__ = ("events", "ts", "kind", "actor", "target", "event_id", "_actor_a", "_target_a",
                 "_event_id_a")

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = events
        self.ts: I64 = np.fromiter([e["ts"] for e in events], np.int64, len(events))
        self.kind: list[str] = [e["kind"] for e in events]
        self.actor: list[str] = [e["actor"] for e in events]
        self.target: list[str | None] = [e.get("target") for e in events]
        self.event_id: list[str] = [e["event_id"] for e in events]
        self._actor_a: Objects | None = None
        self._target_a: Objects | None = None
        self._event_id_a: Objects | None = None

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
        events = self.events
        if rows is None:
            return [e.get(name) for e in events]
        return [events[i].get(name) for i in np.asarray(rows).tolist()]

    def directed(self, kinds: frozenset[str] | None = None, exclude: frozenset[str] = frozenset()
                 ) -> Bools:
        """Rows with a target other than the actor, of ``kinds`` (any when None) not in
        ``exclude``: the events that count between two accounts."""
        if kinds is not None:
            it = (
                t is not None and a != t and k in kinds
                for k, a, t in zip(self.kind, self.actor, self.target, strict=True)
            )
        else:
            it = (
                t is not None and a != t and k not in exclude
                for k, a, t in zip(self.kind, self.actor, self.target, strict=True)
            )
        return np.fromiter(it, np.bool_, len(self.kind))


def as_batch(events: Sequence[Event] | EventBatch) -> EventBatch:
    """``events`` as an ``EventBatch`` (extracting columns once if it is a list of dicts)."""
    return events if isinstance(events, EventBatch) else EventBatch(events)
