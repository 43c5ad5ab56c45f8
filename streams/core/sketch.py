"""DDSketch: a mergeable quantile sketch with relative error α (default 1%).

Latency percentiles are needed per account and window, and for any union of them (day = its
hours, a tier = its accounts). Bucket counts add up, so sketches merge exactly; each bucket
covers (γ^(k−1), γ^k] with γ = (1+α)/(1−α), and reporting 2γ^k/(γ+1) for it is within α of every
value in it. Zero (and anything ≤ ``ZERO_THRESHOLD``) has its own bucket.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_ALPHA = 0.01
ZERO_THRESHOLD = 1e-9  # values at or below this go to the zero bucket
_MAGIC = b"DD\x01"


def nearest_rank(q: float, n: int) -> int:
    """1-based nearest rank ceil(q·n), clamped to [1, n]; rounding keeps 0.99·100 at 99."""
    return min(n, max(1, math.ceil(round(q * n, 9))))


class DDSketch:
    """Relative-error quantile sketch: ``bins`` maps bucket key k → count of values in it."""

    __slots__ = ("alpha", "gamma", "_inv_log_gamma", "bins", "zero_count", "count")

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.alpha = alpha
        self.gamma = (1.0 + alpha) / (1.0 - alpha)
        self._inv_log_gamma = 1.0 / math.log(self.gamma)
        self.bins: dict[int, int] = {}
        self.zero_count = 0
        self.count = 0

    def key(self, value: float) -> int:
        """Bucket key of a positive value: ceil(log_γ value)."""
        return math.ceil(math.log(value) * self._inv_log_gamma)

    def value(self, key: int) -> float:
        """The value reported for bucket ``key``: within α of anything in (γ^(k−1), γ^k]."""
        return 2.0 * self.gamma**key / (self.gamma + 1.0)

    def add(self, value: float, weight: int = 1) -> None:
        """Add ``value`` (≥ 0) ``weight`` times."""
        if value <= ZERO_THRESHOLD:
            if value < 0:
                raise ValueError(f"DDSketch takes values >= 0, got {value}")
            self.zero_count += weight
        else:
            k = math.ceil(math.log(value) * self._inv_log_gamma)
            self.bins[k] = self.bins.get(k, 0) + weight
        self.count += weight

    def add_key(self, key: int, weight: int = 1) -> None:
        """Add to bucket ``key`` directly (the caller computed ``key(value)`` once for many)."""
        self.bins[key] = self.bins.get(key, 0) + weight
        self.count += weight

    def keys_of(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Bucket keys of many positive values at once (vectorised)."""
        arr = np.asarray(values, dtype=np.float64)
        return np.ceil(np.log(arr) * self._inv_log_gamma).astype(np.int64)

    def add_many(self, values: npt.ArrayLike) -> None:
        """Add many values at once (numpy-vectorised: one log per value, one update per bucket)."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        if np.isnan(arr).any() or (arr < 0).any():
            raise ValueError("DDSketch takes values >= 0 (no NaN)")
        zero = arr <= ZERO_THRESHOLD
        nzero = int(zero.sum())
        pos = arr[~zero] if nzero else arr
        if pos.size:
            keys, counts = np.unique(self.keys_of(pos), return_counts=True)
            bins = self.bins
            for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
                bins[k] = bins.get(k, 0) + c
        self.zero_count += nzero
        self.count += int(arr.size)

    def merge(self, other: DDSketch) -> DDSketch:
        """Add ``other``'s counts into this sketch (same α required); returns self."""
        if other.alpha != self.alpha:
            raise ValueError(f"cannot merge sketches with alpha {self.alpha} and {other.alpha}")
        bins = self.bins
        for k, c in other.bins.items():
            bins[k] = bins.get(k, 0) + c
        self.zero_count += other.zero_count
        self.count += other.count
        return self

    def copy(self) -> DDSketch:
        s = DDSketch(self.alpha)
        s.bins = dict(self.bins)
        s.zero_count = self.zero_count
        s.count = self.count
        return s

    def quantile(self, q: float) -> float | None:
        """Value at nearest rank ceil(q·n) within α relative error; None for an empty sketch."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q}")
        if self.count == 0:
            return None
        rank = nearest_rank(q, self.count)
        if rank <= self.zero_count:
            return 0.0
        seen = self.zero_count
        for k in sorted(self.bins):
            seen += self.bins[k]
            if seen >= rank:
                return self.value(k)
        raise AssertionError("bins do not add up to count")  # pragma: no cover

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles with one pass over the sorted buckets."""
        qs = list(qs)
        n = self.count
        if n == 0:
            return [None] * len(qs)
        wanted = sorted((nearest_rank(q, n), i) for i, q in enumerate(qs))
        out: list[float | None] = [None] * len(qs)
        j = 0
        seen = self.zero_count
        while j < len(wanted) and wanted[j][0] <= seen:
            out[wanted[j][1]] = 0.0
            j += 1
        bins = self.bins
        if j < len(wanted):
            for k in sorted(bins):
                seen += bins[k]
                while j < len(wanted) and wanted[j][0] <= seen:
                    out[wanted[j][1]] = self.value(k)
                    j += 1
                if j == len(wanted):
                    break
        return out

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DDSketch)
            and self.alpha == other.alpha
            and self.zero_count == other.zero_count
            and {k: c for k, c in self.bins.items() if c}
            == {k: c for k, c in other.bins.items() if c}
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DDSketch(alpha={self.alpha}, count={self.count}, buckets={len(self.bins)})"

    # --- serialisation: bytes for Faust tables / ClickHouse String, dict for JSON ---

    def to_bytes(self) -> bytes:
        """Compact form: magic, α (float64), zero count, then buckets as delta-key/count varints."""
        out = bytearray(_MAGIC)
        out += struct.pack("<d", self.alpha)
        _put_varint(out, self.zero_count)
        items = sorted((k, c) for k, c in self.bins.items() if c)
        _put_varint(out, len(items))
        prev = 0
        for k, c in items:
            _put_varint(out, _zigzag(k - prev))
            _put_varint(out, c)
            prev = k
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> DDSketch:
        if data[:3] != _MAGIC:
            raise ValueError("not a serialised DDSketch (bad magic)")
        (alpha,) = struct.unpack_from("<d", data, 3)
        s = cls(alpha)
        pos = 11
        s.zero_count, pos = _get_varint(data, pos)
        n, pos = _get_varint(data, pos)
        prev = 0
        total = s.zero_count
        for _ in range(n):
            dk, pos = _get_varint(data, pos)
            c, pos = _get_varint(data, pos)
            prev += _unzigzag(dk)
            s.bins[prev] = c
            total += c
        if pos != len(data):
            raise ValueError("trailing bytes after a serialised DDSketch")
        s.count = total
        return s

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``{"alpha", "zero", "keys", "counts"}`` (keys ascending)."""
        items = sorted((k, c) for k, c in self.bins.items() if c)
        return {
            "alpha": self.alpha,
            "zero": self.zero_count,
            "keys": [k for k, _ in items],
            "counts": [c for _, c in items],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DDSketch:
        s = cls(float(d["alpha"]))
        s.zero_count = int(d["zero"])
        s.bins = {int(k): int(c) for k, c in zip(d["keys"], d["counts"], strict=True)}
        s.count = s.zero_count + sum(s.bins.values())
        return s


def merged(sketches: Iterable[DDSketch], alpha: float = DEFAULT_ALPHA) -> DDSketch:
    """A new sketch holding the union of ``sketches``."""
    out = DDSketch(alpha)
    for s in sketches:
        out.merge(s)
    return out


def _zigzag(n: int) -> int:
    return n * 2 if n >= 0 else -n * 2 - 1


def _unzigzag(n: int) -> int:
    return n >> 1 if not n & 1 else -((n + 1) >> 1)


def _put_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _get_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7
