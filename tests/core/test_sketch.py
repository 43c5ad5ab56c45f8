"""DDSketch (α = 1%): accuracy against exact nearest-rank quantiles, merging, zero, storage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streams.core import DDSketch, merged, nearest_rank

QS = (0.5, 0.9, 0.99)


def exact(values: np.ndarray, q: float) -> float:
    s = np.sort(values)
    return float(s[math.ceil(round(q * len(s), 9)) - 1])


def test_nearest_rank():
    assert nearest_rank(0.5, 10) == 5
    assert nearest_rank(0.9, 35102) == 31592
    assert nearest_rank(0.99, 100) == 99  # 0.99·100 is 99.00000000000001 in floating point
    assert nearest_rank(0.0, 7) == 1 and nearest_rank(1.0, 7) == 7


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_one_percent_of_exact_nearest_rank(seed):
    rng = np.random.default_rng(seed)
    values = rng.lognormal(mean=8.0, sigma=2.5, size=100_000)
    sk = DDSketch(0.01)
    sk.add_many(values)
    assert sk.count == len(values)
    for q in QS:
        got, want = sk.quantile(q), exact(values, q)
        assert got is not None
        assert abs(got - want) <= 0.01 * want + 1e-9, (q, got, want)
    assert sk.quantiles(QS) == [sk.quantile(q) for q in QS]


def test_integer_latencies_within_one_percent():
    rng = np.random.default_rng(5)
    values = np.ceil(rng.lognormal(mean=12, sigma=3, size=20_000)).astype(np.int64)  # ms
    sk = DDSketch()
    for v in values.tolist():
        sk.add(v)
    for q in QS:
        got, want = sk.quantile(q), exact(values, q)
        assert got is not None and abs(got - want) <= 0.01 * want + 1e-9


def test_add_and_add_many_agree():
    values = np.random.default_rng(9).lognormal(size=5_000)
    a, b = DDSketch(), DDSketch()
    a.add_many(values)
    for v in values.tolist():
        b.add(v)
    assert a == b


def test_merge_equals_one_sketch_of_everything():
    values = np.random.default_rng(11).lognormal(mean=5, sigma=2, size=50_000)
    whole = DDSketch()
    whole.add_many(values)
    parts = []
    for chunk in np.array_split(values, 7):
        s = DDSketch()
        s.add_many(chunk)
        parts.append(s)
    m = merged(parts)
    assert m == whole and m.count == whole.count
    assert m.quantiles(QS) == whole.quantiles(QS)
    # merge order does not matter
    assert merged(reversed(parts)) == whole


def test_zero_has_its_own_bucket():
    sk = DDSketch()
    sk.add_many([0, 0, 0, 5.0])
    sk.add(0.0)
    assert sk.zero_count == 4 and sk.count == 5
    assert sk.quantile(0.5) == 0.0 and sk.quantile(0.8) == 0.0
    q = sk.quantile(1.0)
    assert q is not None and abs(q - 5.0) <= 0.05
    with pytest.raises(ValueError):
        sk.add(-1.0)
    with pytest.raises(ValueError):
        sk.add_many([1.0, -2.0])


def test_empty_and_mismatched_alpha():
    assert DDSketch().quantile(0.5) is None
    with pytest.raises(ValueError):
        DDSketch(0.01).merge(DDSketch(0.02))


def test_serialisation_round_trips_and_is_compact():
    rng = np.random.default_rng(3)
    sk = DDSketch()
    sk.add_many(rng.lognormal(mean=10, sigma=2, size=100_000))
    sk.add_many([0, 0])
    data = sk.to_bytes()
    back = DDSketch.from_bytes(data)
    assert back == sk and back.count == sk.count and back.quantiles(QS) == sk.quantiles(QS)
    assert len(data) < 4 * len(sk.bins) + 20  # a few bytes per bucket
    d = sk.to_dict()
    assert DDSketch.from_dict(d) == sk
    assert set(d) == {"alpha", "zero", "keys", "counts"}
    with pytest.raises(ValueError):
        DDSketch.from_bytes(b"XX" + data[2:])
