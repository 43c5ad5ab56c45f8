"""A large int → int map that costs bytes, not objects: state the checkpoints pickle whole.

A Python dict of ints takes ~100 bytes an entry, and every entry is an object that pickling and
the garbage collector visit one by one. ``IntMap`` keeps its entries in two aligned numpy arrays
sorted by key (16 bytes an entry, pickled as two buffers), and takes new keys into a small dict
that is merged into the arrays once it holds ``merge_at`` of them. A write to a key already in
the arrays goes straight into them, so a key is in exactly one of the two places. Once
``track`` starts it, it remembers the keys written or dropped, for saves of changes
(``streams.core.changes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.changes import reduce_changes
from streams.core.narrow import differences, narrow_above_min, summed

MERGE_AT = 1 << 18
Array = npt.NDArray[Any]


class IntMap:
    """Keys of ``key_dtype`` (int64 or uint64), values of ``value_dtype``; see the module."""

    def __init__(
        self, key_dtype: type = np.int64, value_dtype: type = np.int64, merge_at: int = MERGE_AT
    ) -> None:
        self.keys: Array = np.empty(0, key_dtype)  # sorted
        self.values: Array = np.empty(0, value_dtype)  # aligned with keys
        self.recent: dict[int, int] = {}  # keys not in the arrays yet
        self.merge_at = merge_at
        self.touched: list[Array] | None = None  # keys written or dropped since ``track``

    def __len__(self) -> int:
        return len(self.keys) + len(self.recent)

    def lookup(self, keys: Array, default: int) -> tuple[Array, Array]:
        """(values, found) for ``keys``; ``default`` where not found."""
        values = np.full(len(keys), default, self.values.dtype)
        found = np.zeros(len(keys), np.bool_)
        if len(self.keys) and len(keys):
            at = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
            found = self.keys[at] == keys
            values[found] = self.values[at[found]]
        if self.recent:
            for i in np.flatnonzero(~found).tolist():
                v = self.recent.get(int(keys[i]))
                if v is not None:
                    values[i], found[i] = v, True
        return values, found

    @classmethod
    def from_dict(
        cls, entries: dict[int, int], key_dtype: type = np.int64, value_dtype: type = np.int64
    ) -> IntMap:
        """An ``IntMap`` of a plain dict (state checkpointed before it existed)."""
        m = cls(key_dtype, value_dtype)
        n = len(entries)
        m.update(np.fromiter(entries, key_dtype, n), np.fromiter(entries.values(), value_dtype, n))
        return m

    def update(self, keys: Array, values: Array) -> None:
        """Set ``keys`` to ``values`` (distinct keys)."""
        if self.touched is not None:
            self.touched.append(keys)
        if len(self.keys) and len(keys):
            at = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
            old = self.keys[at] == keys
            self.values[at[old]] = values[old]
            keys, values = keys[~old], values[~old]
        self.recent.update(zip(keys.tolist(), values.tolist(), strict=True))
        if len(self.recent) >= self.merge_at:
            self.merge()

    def merge(self) -> None:
        """The recent keys into the arrays."""
        if not self.recent:
            return
        n = len(self.recent)
        keys = np.concatenate([self.keys, np.fromiter(self.recent, self.keys.dtype, n)])
        values = np.concatenate(
            [self.values, np.fromiter(self.recent.values(), self.values.dtype, n)]
        )
        self.recent = {}
        order = np.argsort(keys, kind="stable")  # timsort: two sorted runs, merged
        self.keys, self.values = keys[order], values[order]

    def keep(self, where: Callable[[Array], Array]) -> None:
        """Keep the entries whose values pass ``where`` (a vectorised test), drop the rest."""
        self.merge()
        mask = where(self.values)
        if self.touched is not None:
            self.touched.append(self.keys[~mask])
        self.keys, self.values = self.keys[mask], self.values[mask]

    def track(self) -> None:
        self.touched = []

    def changes(self) -> tuple[Array, Array, Array]:
        """(keys, values) written since ``track``, and the keys dropped."""
        if self.touched is None:
            raise RuntimeError("an IntMap saved as changes while not tracking them")
        keys = np.unique(np.concatenate([np.empty(0, self.keys.dtype), *self.touched]))
        values, found = self.lookup(keys, 0)
        return keys[found], values[found], keys[~found]

    def apply(self, changes: tuple[Array, Array, Array]) -> None:
        keys, values, dropped = changes
        if len(dropped):
            self.merge()
            keep = ~np.isin(self.keys, dropped)
            self.keys, self.values = self.keys[keep], self.values[keep]
        self.update(keys, values)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return reduce_changes(self) or super().__reduce_ex__(protocol)

    def __getstate__(self) -> dict[str, Any]:
        self.merge()  # changes nothing a reader sees: two arrays pickle fast, a dict does not
        # the sorted keys as differences, the values above their minimum in the narrowest
        # unsigned type (times of a month fit 32 bits): compressed, a few bytes an entry
        base, above = narrow_above_min(self.values)
        return {**vars(self), "touched": None, "keys": differences(self.keys),
                "key_dtype": self.keys.dtype.str, "values": above, "value_base": base,
                "value_dtype": self.values.dtype.str}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        dtype = state.pop("key_dtype", None)
        if dtype is not None:  # else written before the differences
            state["keys"] = summed(state["keys"], dtype)
        if "value_base" in state:
            dtype = np.dtype(state.pop("value_dtype"))
            state["values"] = state["values"].astype(dtype) + dtype.type(state.pop("value_base"))
        state.setdefault("touched", None)  # written before ``track``
        vars(self).update(state)
