"""Per-key state that remembers which keys changed, so a checkpoint can save only those.

A by-actor engine is pickled whole at each checkpoint, by a forked child whose life slows the
worker down (its CPU, and the pages the worker copies while it lives); yet ~3% of its keys
change between two saves (``ops/bench/checkpoint_cost.py --delta-seconds``). The rules keep
their per-actor / per-URL / per-pair state in ``Tracked`` dicts (contact times in an
``IntMap``): once ``track`` starts them they record every key read or written (a read value
may be changed in place) or deleted: they are ``Trackable``.

``saving_changes(parts)`` pickles an object graph with each tracked part standing for only its
touched keys (``changes``: the present ones with their values, the absent ones as removed);
everything else is pickled whole. ``applying(base)`` loads such a pickle against the parts of
``base`` (the engine restored from the previous save, by the same names): each part's changes
are applied to the base's part in place, and the loaded graph holds the base's parts. A chain
``whole, changes, changes, …`` thus restores the engine of the last save: keys and values
equal; only the order of a dict's keys may differ (the rules never depend on it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

K = TypeVar("K")
V = TypeVar("V")
_MISSING: Any = object()


class Trackable(Protocol):
    """Per-key state that can tell its changes since ``track`` and take those of another."""

    def track(self) -> None:
        """From now on remember the keys touched (forgetting those remembered so far)."""

    def changes(self) -> Any:
        """The keys touched since ``track``: their values, or that they are gone."""

    def apply(self, changes: Any) -> None:
        """Take ``changes`` made by another's ``changes``."""


# while pickling changes: the name of each tracked part by id; while loading: the base's parts
_SAVING: ContextVar[dict[int, str] | None] = ContextVar("saving_changes", default=None)
_BASE: ContextVar[Mapping[str, Trackable] | None] = ContextVar("base", default=None)


def reduce_changes(obj: Trackable) -> tuple[Any, ...] | None:
    """``obj``'s ``__reduce__`` while saving changes of it (else None: pickle it whole, as
    any part not named in the save)."""
    name = (_SAVING.get() or {}).get(id(obj))
    return None if name is None else (_apply_changes, (name, obj.changes()))


def _as_is(entries: Any) -> Any:
    return entries


class Tracked(dict[K, V]):
    """A dict that, once ``touched`` is a set (``track``), adds every key read, written or
    deleted to it. Iterating does not count: ``items()`` / ``values()`` must not be used to
    change values in place."""

    __slots__ = ("touched",)
    # changed entries as saved, and back: a subclass may make them columns (one pickled
    # object per value costs microseconds)
    pack: Callable[[dict[Any, Any]], Any] = staticmethod(_as_is)
    unpack: Callable[[Any], dict[Any, Any]] = staticmethod(_as_is)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.touched: set[K] | None = None

    def track(self) -> None:
        self.touched = set()

    def get(self, key: K, default: Any = None) -> Any:
        if self.touched is not None:
            self.touched.add(key)
        return dict.get(self, key, default)

    def __getitem__(self, key: K) -> V:
        if self.touched is not None:
            self.touched.add(key)
        return dict.__getitem__(self, key)

    def __setitem__(self, key: K, value: V) -> None:
        if self.touched is not None:
            self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: K) -> None:
        if self.touched is not None:
            self.touched.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        if self.touched is not None:
            self.touched.add(key)
        return dict.pop(self, key) if default is _MISSING else dict.pop(self, key, default)

    def setdefault(self, key: K, default: Any = None) -> Any:
        if self.touched is not None:
            self.touched.add(key)
        return dict.setdefault(self, key, default)

    def update(self, other: Mapping[K, V]) -> None:  # type: ignore[override]
        if self.touched is not None:
            self.touched.update(other)
        dict.update(self, other)

    def changes(self) -> tuple[Any, list[K]]:
        if self.touched is None:
            raise RuntimeError("a tracked dict saved as changes while not tracking them")
        present = {k: v for k in self.touched if (v := dict.get(self, k, _MISSING)) is not _MISSING}
        return self.pack(present), [k for k in self.touched if k not in present]

    def apply(self, changes: tuple[Any, list[K]]) -> None:
        packed, removed = changes
        for k in removed:
            dict.pop(self, k, None)
        dict.update(self, self.unpack(packed))

    def __reduce__(self) -> tuple[Any, ...]:
        # whole: loaded untracked (``__init__`` sets ``touched`` to None)
        return reduce_changes(self) or (type(self), (), None, None, iter(dict.items(self)))


class Written(Tracked[K, V]):
    """A tracked dict whose values are never changed in place (numbers, strings, tuples): only
    the keys written or deleted are remembered; reads run at a plain dict's speed."""

    __slots__ = ()
    get = dict.get  # type: ignore[assignment]
    __getitem__ = dict.__getitem__


def _apply_changes(name: str, changes: Any) -> Trackable:
    """Changes loaded: applied to the base's part of that name, which the loaded graph holds."""
    base = _BASE.get()
    if base is None or name not in base:
        raise RuntimeError(f"changes to {name!r} loaded without the state they apply to")
    base[name].apply(changes)
    return base[name]


class TracksChanges:
    """An engine whose per-key parts (``tracked``, by name) can be saved by their changes."""

    def tracked(self) -> dict[str, Trackable]:
        raise NotImplementedError

    def track(self) -> None:
        """As it is now it is saved: remember the keys changed from now on."""
        for part in self.tracked().values():
            part.track()


@contextmanager
def saving_changes(parts: Mapping[str, Trackable]) -> Iterator[None]:
    """Pickles made inside hold each of ``parts`` (by name) as its changes only."""
    token = _SAVING.set({id(d): name for name, d in parts.items()})
    try:
        yield
    finally:
        _SAVING.reset(token)


def is_saving_changes() -> bool:
    """For ``__getstate__`` methods that would otherwise pickle a tracked part in another form
    (columns): they keep the part itself, which pickles as its changes."""
    return _SAVING.get() is not None


@contextmanager
def applying(base: Mapping[str, Trackable]) -> Iterator[None]:
    """Changes loaded inside are applied to ``base``'s parts (by name)."""
    token = _BASE.set(base)
    try:
        yield
    finally:
        _BASE.reset(token)
