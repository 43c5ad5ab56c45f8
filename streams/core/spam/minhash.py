"""Near-duplicate texts (R3): MinHash over word bigrams with LSH banding, numpy-vectorised.

Texts are lower-cased and split into words (runs of letters, digits and ``_``; any non-ASCII
character counts as a letter). A text's shingles are its word bigrams, or its one word when it
has only one; a text without words has none and is nobody's near-duplicate. Words are hashed
with a polynomial hash over prefix sums of the whole chunk's code points, so no Python code runs
per word; hashes are deterministic (no per-process salt), so sketches survive a checkpoint.

``MinHasher.sketch`` gives per text its sorted distinct shingle hashes and ``bands`` LSH keys,
each a hash of ``rows`` of its ``bands × rows`` 32-bit MinHash values. Two texts are candidates
when any band key is equal (probability 1 − (1 − J^rows)^bands for Jaccard J: 99.6% at J = 0.5
with 42 × 3), and near-duplicates when their exact bigram Jaccard is ≥ the threshold: checking
the ~20 shingles of each candidate is cheap, so the decision carries no estimation error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.core.batch import I64, Bools

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

CHUNK_TEXTS = 256  # texts per vectorised step: keeps the work arrays in cache
_P = np.uint64(0x100000001B3)  # FNV prime: the polynomial word hash's base
_POWERS = 1 << 16  # code points per chunk covered by the cached power tables (grown on demand)
_WORD_ASCII = np.array([chr(c).isalnum() or chr(c) == "_" for c in range(128)])
_UNIGRAM = np.uint64(0x6A09E667F3BCC909)  # sets a one-word text's shingle apart from bigrams
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: U64) -> U64:
    """splitmix64's finaliser: spreads every input bit over the output (in place)."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


class _Powers:
    """P^i and P^-i mod 2^64, i < size (P odd, so it has an inverse)."""

    def __init__(self, size: int) -> None:
        inv = np.uint64(pow(int(_P), -1, 1 << 64))
        up, down = np.full(size, _P, np.uint64), np.full(size, inv, np.uint64)
        up[0] = down[0] = 1
        with np.errstate(over="ignore"):
            self.up: U64 = np.cumprod(up)
            self.down: U64 = np.cumprod(down)


_powers = _Powers(_POWERS)


def _word_hashes(texts: Sequence[str]) -> tuple[U64, I64]:
    """Hash of every word of ``texts`` and the index of the text it is in."""
    global _powers
    joined = "\x00".join(texts).lower()
    codes = np.frombuffer(joined.encode("utf-32-le"), np.uint32)
    n = len(codes)
    if n > len(_powers.up):
        _powers = _Powers(max(n, 2 * len(_powers.up)))
    word = _WORD_ASCII[np.minimum(codes, 127)] | (codes > 127)
    edges = np.diff(word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, np.uint64)
        np.cumsum(codes * _powers.up[:n], out=prefix[1:])
        h = (prefix[ends] - prefix[starts]) * _powers.down[starts]
        h += (ends - starts).astype(np.uint64)
    text = np.searchsorted(np.flatnonzero(codes == 0), starts)
    return _mix64(h), text


def shingles(texts: Sequence[str]) -> tuple[U64, I64]:
    """Distinct shingle hashes of ``texts``, sorted within each text, and their texts' indices
    (ascending): bigrams, or the one word of a one-word text."""
    words, text = _word_hashes(texts)
    with np.errstate(over="ignore"):
        same = text[1:] == text[:-1]
        pair = _mix64(words[:-1] * _GOLD + words[1:])[same]
        counts = np.bincount(text, minlength=len(texts))
        one = np.flatnonzero(counts == 1)
        single = _mix64(words[np.searchsorted(text, one)] ^ _UNIGRAM)
    hashes = np.concatenate((pair, single))
    owner = np.concatenate((text[:-1][same], one))
    order = np.lexsort((hashes, owner))
    hashes, owner = hashes[order], owner[order]
    keep = np.ones(len(hashes), np.bool_)
    keep[1:] = (hashes[1:] != hashes[:-1]) | (owner[1:] != owner[:-1])
    return hashes[keep], owner[keep]


@dataclass(frozen=True, slots=True)
class Sketches:
    """Per text: ``bands[i]`` (LSH keys) and ``shingles[i]`` (sorted distinct hashes); a text
    without shingles has an empty array and ``has[i]`` False."""

    bands: U32
    shingles: list[U64]
    has: npt.NDArray[np.bool_]


class MinHasher:
    """MinHash signatures of ``bands × rows`` values and their LSH band keys."""

    def __init__(self, bands: int = 42, rows: int = 3, seed: int = 0x5EED) -> None:
        self.bands = bands
        self.rows = rows
        rng = np.random.default_rng(seed)
        k = bands * rows
        self._seeds = rng.integers(0, 1 << 32, k, dtype=np.uint64).astype(np.uint32)
        self._mults = rng.integers(0, 1 << 32, k, dtype=np.uint64).astype(np.uint32) | 1

    def sketch(self, texts: Sequence[str]) -> Sketches:
        """Band keys and shingles of ``texts``, ``CHUNK_TEXTS`` at a time."""
        n = len(texts)
        bands = np.zeros((n, self.bands), np.uint32)
        out: list[U64] = []
        for lo in range(0, n, CHUNK_TEXTS):
            chunk = texts[lo : lo + CHUNK_TEXTS]
            hashes, owner = shingles(chunk)
            counts = np.bincount(owner, minlength=len(chunk))
            out.extend(np.split(hashes, np.cumsum(counts)[:-1]))
            has = np.flatnonzero(counts)
            if len(has):
                sig = self.signatures(hashes, np.cumsum(counts)[has] - counts[has])
                bands[lo + has] = self.band_keys(sig)
        has_any = np.fromiter(map(len, out), np.int64, n) > 0
        return Sketches(bands, out, has_any)

    def signatures(self, hashes: U64, starts: I64) -> U32:
        """MinHash values (one row per text) of shingle runs ``hashes[starts[i]:starts[i+1]]``:
        per hash function k, min over the run of mix32((h ^ seed_k) · mult_k)."""
        folded = (hashes ^ (hashes >> np.uint64(32))).astype(np.uint32)
        with np.errstate(over="ignore"):
            v = np.bitwise_xor(self._seeds[:, None], folded[None, :])
            v *= self._mults[:, None]
            v ^= v >> np.uint32(15)
            v *= np.uint32(0x2C1B3C6D)
            v ^= v >> np.uint32(12)
        return np.minimum.reduceat(v, starts, axis=1).T

    def band_keys(self, sig: U32) -> U32:
        """One 32-bit key per band: a hash of the band's ``rows`` MinHash values."""
        parts = sig.reshape(len(sig), self.bands, self.rows).astype(np.uint64)
        with np.errstate(over="ignore"):
            key = parts[:, :, 0].copy()
            for r in range(1, self.rows):
                key = key * _GOLD + parts[:, :, r]
            key = _mix64(key)
        return (key >> np.uint64(32)).astype(np.uint32)


def jaccards(q: U64, candidates: Sequence[U64]) -> F64:
    """Exact Jaccard similarity of shingle set ``q`` with each of ``candidates`` (all sorted,
    distinct), in one vectorised pass."""
    sizes = np.fromiter(map(len, candidates), np.int64, len(candidates))
    if not len(candidates) or not len(q):
        return np.zeros(len(candidates))
    flat = np.concatenate(candidates)
    owner = np.repeat(np.arange(len(candidates)), sizes)
    inter = np.bincount(owner[np.isin(flat, q)], minlength=len(candidates))
    union = len(q) + sizes - inter
    return np.divide(inter, union, out=np.zeros(len(candidates)), where=union > 0)


def near_duplicates(
    bands: U32,
    shingle_set: U64,
    index_bands: U32,
    index_shingles: Sequence[U64],
    threshold: float,
    alive: Bools | None = None,
    at_least: int = 1,
) -> I64:
    """Indices of the index texts that are near-duplicates of one text: a band key in common
    (LSH candidate) and exact bigram Jaccard ≥ ``threshold``; with ``alive``, only rows it
    marks count. None when fewer than ``at_least`` are candidates (too few to matter: the
    exact comparison is the costly part)."""
    if not len(shingle_set) or not len(index_bands):
        return np.zeros(0, np.int64)
    match = (index_bands == bands).any(axis=1)
    cand = np.flatnonzero(match if alive is None else match & alive)
    if len(cand) < max(1, at_least):
        return cand[:0]
    sim = jaccards(shingle_set, [index_shingles[i] for i in cand.tolist()])
    return cand[sim >= threshold]
