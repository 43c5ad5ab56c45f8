"""Responsiveness per responder and window (METRICS.md, "Responsiveness"), from matcher records.

Windows are by the inbound message's time t (1 h and 1 d, epoch-aligned). For each (responder,
window) the aggregator keeps counters and a latency sketch per segment: ``all`` and
``tier:<tier of the requester>``. (Spam-adjusted figures subtract the messages of flagged
accounts at query time, ``streams/reports.py``: exact whenever an alert reached the engines.)
A message's requester tier is stamped on it when it arrives (``RequesterTags``,
carried by the matcher as the record ``tag``) and whether it made its window is judged on
``seen_at`` (matcher stream time on arrival), so its inbound, reply and expiry records always
count in the same segments and windows, with no per-message state here.

Windows are emitted when they close (stream time ≥ end + grace), re-emitted with version + 1
when an answer arrives for one of their messages, and emitted a last time, ``final``, once
stream time > end + H (and none of their messages is pending); then they are dropped, so state
is bounded by stream time. State is columnar (numpy) and updated per batch, not per record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.batch import I64, AccountIndex, Bools, EventBatch, Objects, as_batch, objects
from streams.core.narrow import NarrowPickle, narrow
from streams.core.replies import DEFAULT_HORIZON_MS, Expiries, Inbound, MatchResult, Replies
from streams.core.sketch import DEFAULT_ALPHA, DDSketch
from streams.core.tiers import BASE, TOP, UPPER, follower_tiers
from streams.core.windows import DAY_MS, GRACE_MS, HOUR_MS, NO_TIME, WINDOW_SIZES, Event

SEGMENT_ALL = "all"
TIER_PREFIX = "tier:"
DEFAULT_TIERS: tuple[str, ...] = (*follower_tiers(), TOP, UPPER, BASE)
RATE_LIMITS_MS = (15 * 60_000, HOUR_MS, DAY_MS)  # rate@15min, @1h, @24h
QUANTILES = (0.5, 0.9, 0.99)

# counters per (window, segment): inbound, answered by latency band (≤15m, ≤1h, ≤24h, longer),
# answered in thread, unanswered (expired), conversation starts, late (missed the window)
_INB, _A15, _A1H, _A24H, _ALONG, _THREAD, _UNANS, _CONV, _LATE = range(9)
_NF = 9
_ALL = 0  # segment ids; tier i is segment i + 1
_KSPAN = 1 << 12  # sketch keys of latencies ≥ 1 ms are 0 … < 4096
_MAX_SLOTS = 1 << 26  # live windows per aggregator
_TIER_MASK = 31  # tag = tier index + 1, 0 = none
_NEVER = 1 << 62  # the next due time when no window is held
_NO_SLOTS = np.zeros(0, np.int64)
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """Figure rows as columns, one row per (responder, window, segment) with any message.

    Rates and percentiles are NaN where undefined (no inbound, nothing answered). Sketch buckets
    are flat (``sketch_keys``/``sketch_counts``, row i owning ``sketch_offsets[i]:[i+1]``);
    ``sketch(i)`` rebuilds row i's ``DDSketch``.
    """

    account: Objects
    window_ms: I64
    window_start: I64
    window_end: I64
    segment: Objects
    version: I64
    final: Bools
    inbound: I64
    answered: I64
    answered_in_thread: I64
    pending: I64
    unanswered: I64
    answered_15m: I64
    answered_1h: I64
    answered_24h: I64
    rate: F64
    rate_15m: F64
    rate_1h: F64
    rate_24h: F64
    p50_ms: F64
    p90_ms: F64
    p99_ms: F64
    conversation_starts: I64
    late: I64
    alpha: float
    sketch_offsets: I64
    sketch_keys: I64
    sketch_counts: I64

    def __len__(self) -> int:
        return len(self.account)

    def sketch(self, i: int) -> DDSketch:
        lo, hi = int(self.sketch_offsets[i]), int(self.sketch_offsets[i + 1])
        s = DDSketch(self.alpha)
        s.bins = dict(zip(self.sketch_keys[lo:hi].tolist(), self.sketch_counts[lo:hi].tolist(),
                          strict=True))
        s.count = int(self.sketch_counts[lo:hi].sum())
        return s

    def rows(self) -> list[dict[str, Any]]:
        """One dict per row (NaN → None); ``sketch`` in ``DDSketch.to_dict`` form."""
        names = [f.name for f in fields(self)
                 if f.name not in ("alpha", "sketch_offsets", "sketch_keys", "sketch_counts")]
        cols = [getattr(self, nm).tolist() for nm in names]
        off = self.sketch_offsets.tolist()
        keys = self.sketch_keys.tolist()
        counts = self.sketch_counts.tolist()
        out = []
        for i, vals in enumerate(zip(*cols, strict=True)):
            row = {nm: (None if isinstance(v, float) and math.isnan(v) else v)
                   for nm, v in zip(names, vals, strict=True)}
            row["sketch"] = {"alpha": self.alpha, "zero": 0, "keys": keys[off[i]:off[i + 1]],
                             "counts": counts[off[i]:off[i + 1]]}
            out.append(row)
        return out

    def select(self, mask: npt.ArrayLike) -> WindowFigures:
        """The rows where ``mask`` is true (a boolean array)."""
        return concat_figures([self], [np.asarray(mask, np.bool_)], self.alpha)


def concat_figures(
    parts: Sequence[WindowFigures], masks: Sequence[Bools] | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> WindowFigures:
    """Rows of several emissions as one (optionally only the rows each mask keeps)."""
    plain = [f.name for f in fields(WindowFigures)
             if f.name not in ("alpha", "sketch_offsets", "sketch_keys", "sketch_counts")]
    cols: dict[str, Any] = {nm: [] for nm in plain}
    offs: list[I64] = []
    keys: list[I64] = []
    counts: list[I64] = []
    base = 0
    for i, p in enumerate(parts):
        m = np.ones(len(p), np.bool_) if masks is None else masks[i]
        for nm in plain:
            cols[nm].append(getattr(p, nm)[m])
        lo, hi = p.sketch_offsets[:-1][m], p.sketch_offsets[1:][m]
        lens = hi - lo
        take = np.repeat(lo - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) + np.arange(
            int(lens.sum()))
        keys.append(p.sketch_keys[take])
        counts.append(p.sketch_counts[take])
        offs.append(base + np.cumsum(lens))
        base += int(lens.sum())
    built: dict[str, Any] = {nm: (np.concatenate(v) if v else np.zeros(0))
                             for nm, v in cols.items()}
    if not parts:
        built = {nm: np.zeros(0, object if nm in ("account", "segment") else np.int64)
                 for nm in plain}
    return WindowFigures(
        **built, alpha=alpha,
        sketch_offsets=np.concatenate([np.zeros(1, np.int64), *offs]).astype(np.int64),
        sketch_keys=np.concatenate(keys).astype(np.int64) if keys else np.zeros(0, np.int64),
        sketch_counts=np.concatenate(counts).astype(np.int64) if counts else np.zeros(0, np.int64),
    )


class RequesterTags:
    """Stamps each event with its actor's tier at that moment (the message tag).

    The matcher carries a message's tag into its reply or expiry, so the requester's tier is
    decided once, when the message arrives. ``tier_of`` is a mapping (fastest: e.g.
    ``TierBook.tiers``) or a function; accounts it does not know get ``default_tier``.
    """

    def __init__(
        self,
        tier_of: Mapping[str, str] | Callable[[str], str] | None = None,
        tiers: Sequence[str] = DEFAULT_TIERS,
        default_tier: str | None = BASE,
    ) -> None:
        if len(tiers) > _TIER_MASK - 1:
            raise ValueError(f"at most {_TIER_MASK - 1} tiers")
        self.tier_of = tier_of
        self.tiers = tuple(tiers)
        self.default_tier = default_tier
        self._code: dict[str | None, int] = {t: i + 1 for i, t in enumerate(self.tiers)}
        self._code[None] = 0

    def tier_codes(self, accounts: Sequence[str]) -> I64:
        """Tier code of each account now (index in ``tiers`` + 1; 0 without ``tier_of``)."""
        n = len(accounts)
        tier_of = self.tier_of
        if tier_of is None:
            return np.zeros(n, np.int64)
        if isinstance(tier_of, Mapping):
            names = list(map(tier_of.get, accounts, repeat(self.default_tier)))
        else:
            names = list(map(tier_of, accounts))
        try:
            return np.fromiter(map(self._code.__getitem__, names), np.int64, n)
        except KeyError as exc:
            raise ValueError(f"tier {exc} is not one of {self.tiers}") from None

    def tier_names(self, tags: I64) -> Objects:
        """Tier names of tags (or codes); None where a tag has no tier."""
        names = objects([None, *self.tiers])
        return names[np.asarray(tags, np.int64) & _TIER_MASK]

    def __call__(self, events: Sequence[Event] | EventBatch) -> I64:
        return self.tier_codes(as_batch(events).actor)


class ResponsivenessAggregator(NarrowPickle):
    """Aggregates inbound/reply/expiry records per responder and window; see module docstring.

    Records carry the message's ``tag`` (``RequesterTags``: requester tier) and
    ``seen_at`` (matcher stream time on arrival: whether it made its window), so the aggregator
    holds no per-message state. ``tiers`` must be the tagger's. One or two window sizes.
    """

    def __init__(
        self,
        sizes: Iterable[int] = WINDOW_SIZES,
        horizon_ms: int = DEFAULT_HORIZON_MS,
        grace_ms: int = GRACE_MS,
        tiers: Sequence[str] = DEFAULT_TIERS,
        alpha: float = DEFAULT_ALPHA,
        accounts: AccountIndex | None = None,
    ) -> None:
        self.sizes: tuple[int, ...] = tuple(sizes)
        if not 1 <= len(self.sizes) <= 2:
            raise ValueError("one or two window sizes")
        self.horizon_ms = horizon_ms
        self.grace_ms = grace_ms
        self.alpha = alpha
        sk = DDSketch(alpha)
        self._inv_log_gamma = sk._inv_log_gamma
        self._gamma = sk.gamma
        self._values = 2.0 * sk.gamma ** np.arange(_KSPAN, dtype=np.float64) / (sk.gamma + 1.0)
        self.seg_names: list[str] = [SEGMENT_ALL] + [TIER_PREFIX + t for t in tiers]
        self._nseg = len(self.seg_names)
        self.stream_time = NO_TIME
        self._final_st = NO_TIME  # stream time of the last emit that dropped final windows
        self._next_due = NO_TIME  # no window closes or becomes final before this stream time
        self._redo: list[I64] = []  # slots of closed windows changed since the last emit
        # responder ids; records from a matcher sharing this index bring their ids along
        self.accounts = accounts if accounts is not None else AccountIndex()
        # live windows: sorted packed keys (responder, size, start) and their slots
        self._live_key: I64 = np.zeros(0, np.int64)
        self._live_slot: I64 = np.zeros(0, np.int64)
        self._free: I64 = np.zeros(0, np.int64)  # free slots, a stack
        self._cap = 0
        # per slot: counters by segment, owner, size index, start, version, pending messages,
        # flags
        self._counts: npt.NDArray[np.int32] = np.zeros((0, self._nseg, _NF), np.int32)
        self._s_rid: I64 = np.zeros(0, np.int64)
        self._s_size: I64 = np.zeros(0, np.int64)
        self._s_start: I64 = np.zeros(0, np.int64)
        self._s_version: I64 = np.zeros(0, np.int64)
        self._s_pending: I64 = np.zeros(0, np.int64)
        self._s_alive: Bools = np.zeros(0, np.bool_)
        self._s_closed: Bools = np.zeros(0, np.bool_)
        self._s_dirty: Bools = np.zeros(0, np.bool_)
        self._s_touched: Bools = np.zeros(0, np.bool_)  # changed since its last emission
        self._grow(1024)
        # sketch buckets of every (slot, segment): sorted packed keys and their counts, plus
        # additions not merged yet
        self._sk_key: I64 = np.zeros(0, np.int64)
        self._sk_cnt: I64 = np.zeros(0, np.int64)
        self._sk_new: list[I64] = []
        self.unmatched = 0  # replies/expiries whose window this aggregator does not hold
        self.dropped_late = 0  # inbound whose window was already final and dropped

    # --- slots ---

    def _grow(self, cap: int) -> None:
        """Room for ``cap`` live windows (arrays are copied into larger ones)."""
        if cap > _MAX_SLOTS:
            raise OverflowError("too many live windows for one aggregator")
        old = self._cap

        def grown(a: npt.NDArray[Any]) -> Any:
            b = np.zeros((cap, *a.shape[1:]), a.dtype)
            b[:old] = a[:old]
            return b

        self._counts = grown(self._counts)
        self._s_rid = grown(self._s_rid)
        self._s_size = grown(self._s_size)
        self._s_start = grown(self._s_start)
        self._s_version = grown(self._s_version)
        self._s_pending = grown(self._s_pending)
        self._s_alive = grown(self._s_alive)
        self._s_closed = grown(self._s_closed)
        self._s_dirty = grown(self._s_dirty)
        self._s_touched = grown(self._s_touched)
        self._free = np.concatenate((np.arange(cap - 1, old - 1, -1), self._free))
        self._cap = cap

    def _slots(self, si: int, rid: I64, start: I64, create: bool) -> I64:
        """Slot of each (responder, size ``si``, window start), −1 where not held; with
        ``create``, new windows get one unless already final and dropped."""
        size = self.sizes[si]
        wkey = ((rid * 2 + si) << 32) + (start // size + (1 << 31))
        keys = self._live_key
        pos = np.searchsorted(keys, wkey)
        hit = np.zeros(len(wkey), np.bool_)
        inside = pos < len(keys)
        hit[inside] = keys[pos[inside]] == wkey[inside]
        slot = np.full(len(wkey), -1, np.int64)
        slot[hit] = self._live_slot[pos[hit]]
        if not create or hit.all():
            return slot
        miss = np.flatnonzero(~hit)
        uk, first, inv = np.unique(wkey[miss], return_index=True, return_inverse=True)
        first = miss[first]
        ok = start[first] + size + self.horizon_ms >= self._final_st
        new_keys = uk[ok]
        m = len(new_keys)
        if m > len(self._free):
            self._grow(max(self._cap * 2, self._cap + m))
        fresh = self._free[len(self._free) - m:][::-1]
        self._free = self._free[: len(self._free) - m]
        src = first[ok]
        self._s_rid[fresh] = rid[src]
        self._s_size[fresh] = si
        self._s_start[fresh] = start[src]
        self._s_version[fresh] = 0
        self._s_pending[fresh] = 0
        self._s_alive[fresh] = True
        self._s_closed[fresh] = False
        self._s_dirty[fresh] = False
        self._s_touched[fresh] = False
        at = np.searchsorted(keys, new_keys)
        self._live_key = np.insert(keys, at, new_keys)
        self._live_slot = np.insert(self._live_slot, at, fresh)
        if m:
            self._next_due = min(self._next_due, int(start[src].min()) + size + self.grace_ms)
        slot_u = np.full(len(uk), -1, np.int64)
        slot_u[ok] = fresh
        slot[miss] = slot_u[inv.reshape(-1)]
        return slot

    def _cells(self, keep: Bools, slot: I64, tag: I64) -> tuple[I64, I64, I64]:
        """(record row, slot, segment) of every segment the kept records count in: all, their
        requester's tier."""
        idx = np.flatnonzero(keep)
        tier = tag[idx] & _TIER_MASK
        has_tier = tier > 0
        rows = np.concatenate((idx, idx[has_tier]))
        segs = np.concatenate((np.full(len(idx), _ALL, np.int64), tier[has_tier]))
        return rows, slot[rows], segs

    def _add(self, slot: I64, seg: I64, field: I64 | int) -> None:
        _count(self._counts.reshape(-1), (slot * self._nseg + seg) * _NF + field)

    def _windows_of(
        self, rec: Inbound | Replies | Expiries, t: I64, create: bool
    ) -> Iterable[tuple[int, I64, Bools, Bools]]:
        """Per window size: (size index, slots, accepted (made its window), held)."""
        if rec.accounts is self.accounts and rec.responder_id is not None:
            rid = rec.responder_id
        else:
            rid = self.accounts.ids_of(rec.responder.tolist())
        seen = rec.seen_at
        for si, size in enumerate(self.sizes):
            start = t - t % size
            accepted = seen < start + size + self.grace_ms
            slot = self._slots(si, rid, start, create)
            yield si, slot, accepted, slot >= 0

    # --- input ---

    def consume(self, result: MatchResult) -> None:
        """Apply one matcher batch: inbound, then replies, then expiries; then its stream time."""
        self.add_inbound(result.inbound)
        self.add_replies(result.replies)
        self.add_expired(result.expired)
        self.advance(result.stream_time)

    def advance(self, stream_time: int) -> None:
        """Move stream time (e.g. to the upstream matcher's); it never goes back."""
        if stream_time > self.stream_time:
            self.stream_time = stream_time

    def add_inbound(self, inb: Inbound) -> None:
        if len(inb.ts) == 0:
            return
        for _, slot, accepted, held in self._windows_of(inb, inb.ts, True):
            self.dropped_late += int((~held).sum())
            ok = accepted & held
            rows, cslot, cseg = self._cells(ok, slot, inb.tag)
            self._add(cslot, cseg, _INB)
            conv = inb.conversation_start[rows]
            self._add(cslot[conv], cseg[conv], _CONV)
            rows, cslot, cseg = self._cells(held & ~accepted, slot, inb.tag)
            self._add(cslot, cseg, _LATE)
            _count(self._s_pending, slot[ok])
            self._s_touched[slot[held]] = True
        self.advance(int(inb.ts.max()))

    def add_replies(self, rep: Replies) -> None:
        if len(rep.inbound_ts) == 0:
            return
        lat = rep.latency_ms
        if int(lat.min()) <= 0:
            raise ValueError("reply latency must be > 0 ms")
        band = np.searchsorted(np.array(RATE_LIMITS_MS), lat, "left") + _A15
        key = np.ceil(np.log(lat.astype(np.float64)) * self._inv_log_gamma).astype(np.int64)
        for _, slot, accepted, held in self._windows_of(rep, rep.inbound_ts, False):
            self.unmatched += int((accepted & ~held).sum())
            ok = accepted & held
            rows, cslot, cseg = self._cells(ok, slot, rep.tag)
            cell = cslot * self._nseg + cseg
            _count(self._counts.reshape(-1), cell * _NF + band[rows])
            th = rep.in_thread[rows]
            self._add(cslot[th], cseg[th], _THREAD)
            self._sk_new.append(cell * _KSPAN + key[rows])
            _count(self._s_pending, slot[ok], -1)
            self._s_dirty[slot[ok]] = True
            self._s_touched[slot[ok]] = True
            counted = slot[ok]
            redo = counted[self._s_closed[counted]]
            if len(redo):
                self._redo.append(redo)
        self.advance(int(rep.answer_ts.max()))

    def add_expired(self, exp: Expiries) -> None:
        if len(exp.inbound_ts) == 0:
            return
        for _, slot, accepted, held in self._windows_of(exp, exp.inbound_ts, False):
            self.unmatched += int((accepted & ~held).sum())
            ok = accepted & held
            _, cslot, cseg = self._cells(ok, slot, exp.tag)
            self._add(cslot, cseg, _UNANS)
            _count(self._s_pending, slot[ok], -1)
            self._s_touched[slot[ok]] = True
        self.advance(int(exp.expired_at.max()))

    # --- output ---

    def _merge_sketches(self) -> None:
        if not self._sk_new:
            return
        uk, cnt = np.unique(np.concatenate(self._sk_new), return_counts=True)
        self._sk_new = []
        keys, counts = self._sk_key, self._sk_cnt
        pos = np.searchsorted(keys, uk)
        inside = pos < len(keys)
        hit = np.zeros(len(uk), np.bool_)
        hit[inside] = keys[pos[inside]] == uk[inside]
        counts = counts.copy()
        counts[pos[hit]] += cnt[hit]
        self._sk_key = np.insert(keys, pos[~hit], uk[~hit])
        self._sk_cnt = np.insert(counts, pos[~hit], cnt[~hit])

    def _ends(self, slots: I64) -> I64:
        return self._s_start[slots] + np.array(self.sizes, np.int64)[self._s_size[slots]]

    def emit(self) -> WindowFigures:
        """Rows of windows that closed, changed after emission (version + 1) or became final.

        Final windows are dropped after this call, which keeps state bounded by stream time.
        Before the next window is due only the closed ones changed since are looked at: a small
        batch used to scan every window held.
        """
        st = self.stream_time
        if st < self._next_due:  # none closes or becomes final: the changed closed ones only
            slots = np.unique(np.concatenate(self._redo)) if self._redo else _NO_SLOTS
            self._redo = []
            self._s_version[slots] += 1
            self._s_dirty[slots] = False
            self._s_touched[slots] = False
            return self._figures(slots, np.zeros(len(slots), np.bool_))
        live = self._live_slot
        end = self._ends(live)
        closable = st >= end + self.grace_ms
        final = closable & (st > end + self.horizon_ms) & (self._s_pending[live] <= 0)
        out = closable & (~self._s_closed[live] | final | self._s_dirty[live])
        slots = np.sort(live[out])
        self._s_version[slots] += 1
        self._s_closed[live[closable]] = True
        self._s_dirty[slots] = False
        self._s_touched[slots] = False
        is_final = np.zeros(self._cap, np.bool_)
        is_final[live[final]] = True
        figs = self._figures(slots, is_final[slots])
        if final.any():
            self._drop(final)
        self._redo = []
        live = self._live_slot
        end = self._ends(live)
        due = np.where(self._s_closed[live], end + self.horizon_ms + 1, end + self.grace_ms)
        self._next_due = int(due.min()) if len(due) else _NEVER
        return figs

    def emit_open(self) -> WindowFigures:
        """Current figures of the windows changed since their last emission, open ones too
        (no version change): what a reader should see before windows close, e.g. at the end of
        an input or when the stream goes quiet."""
        live = self._live_slot
        slots = np.sort(live[self._s_touched[live]])
        self._s_touched[slots] = False
        end = self._ends(slots)
        final = (self.stream_time > end + self.horizon_ms) & (self._s_pending[slots] <= 0)
        return self._figures(slots, final)

    def rows(self) -> WindowFigures:
        """Current figures of every window held, open ones too (no version change)."""
        live = np.sort(self._live_slot)
        end = self._ends(live)
        final = (self.stream_time > end + self.horizon_ms) & (self._s_pending[live] <= 0)
        return self._figures(live, final)

    def _drop(self, final: Bools) -> None:
        """Forget the live windows where ``final`` (aligned with the live arrays)."""
        slots = self._live_slot[final]
        self._final_st = self.stream_time
        self._merge_sketches()
        owner = self._sk_key // (self._nseg * _KSPAN)
        dead = np.zeros(self._cap, np.bool_)
        dead[slots] = True
        keep = ~dead[owner]
        self._sk_key, self._sk_cnt = self._sk_key[keep], self._sk_cnt[keep]
        self._live_key = self._live_key[~final]
        self._live_slot = self._live_slot[~final]
        self._counts[slots] = 0
        self._s_alive[slots] = False
        self._s_dirty[slots] = False
        self._s_touched[slots] = False
        self._free = np.concatenate((self._free, slots))

    def _figures(self, slots: I64, final: Bools) -> WindowFigures:
        """Figure rows of ``slots`` (ascending), one per segment with any message."""
        self._merge_sketches()
        sub = self._counts[slots]  # (m, nseg, NF)
        # a segment with neither inbound nor late messages has nothing at all
        ci, cs = np.nonzero((sub[:, :, _INB] | sub[:, :, _LATE]) != 0)
        c = sub[ci, cs].astype(np.int64)  # (rows, NF)
        slot = slots[ci]
        inbound = c[:, _INB]
        a15 = c[:, _A15]
        a1h = a15 + c[:, _A1H]
        a24h = a1h + c[:, _A24H]
        answered = a24h + c[:, _ALONG]
        unanswered = c[:, _UNANS]
        with np.errstate(invalid="ignore", divide="ignore"):
            den = np.where(inbound > 0, inbound, np.nan)
            rate, r15, r1h, r24h = (answered / den, a15 / den, a1h / den, a24h / den)
        # each (slot, segment) owns a contiguous run of the sorted sketch keys; rows are in key
        # order, so their runs are too
        base = (slot * self._nseg + cs) * _KSPAN
        lo = np.searchsorted(self._sk_key, base, "left")
        lens = np.searchsorted(self._sk_key, base + _KSPAN, "left") - lo
        offsets = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
        take = np.arange(int(offsets[-1])) + np.repeat(lo - offsets[:-1], lens)
        keys = self._sk_key[take] % _KSPAN
        counts = self._sk_cnt[take]
        qv = np.full((len(QUANTILES), len(slot)), np.nan)
        some = np.flatnonzero(answered > 0)
        if len(some):
            cum = np.concatenate(([0], np.cumsum(counts)))  # over the emitted buckets only
            q = np.array(QUANTILES)[:, None]
            rank = np.maximum(np.ceil(np.round(q * answered[some], 9)), 1).astype(np.int64)
            p = np.searchsorted(cum, cum[offsets[some]] + rank, "left") - 1
            qv[:, some] = self._values[keys[p]]
        size = np.array(self.sizes, np.int64)[self._s_size[slot]]
        start = self._s_start[slot]
        return WindowFigures(
            account=self.accounts.names_of(self._s_rid[slot]),
            window_ms=size, window_start=start, window_end=start + size,
            segment=objects(self.seg_names)[cs], version=self._s_version[slot],
            final=final[ci], inbound=inbound, answered=answered,
            answered_in_thread=c[:, _THREAD], pending=inbound - answered - unanswered,
            unanswered=unanswered, answered_15m=a15, answered_1h=a1h, answered_24h=a24h,
            rate=rate, rate_15m=r15, rate_1h=r1h, rate_24h=r24h,
            p50_ms=qv[0], p90_ms=qv[1], p99_ms=qv[2], conversation_starts=c[:, _CONV],
            late=c[:, _LATE], alpha=self.alpha, sketch_offsets=offsets, sketch_keys=keys,
            sketch_counts=counts,
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with only the non-zero cells of ``_counts`` (it is mostly zeros: free slots,
        segments of tiers nobody wrote from), its int64 arrays narrowed (``NarrowPickle``): a
        checkpoint carries (and costs) a fraction."""
        state = super().__getstate__()
        flat = self._counts.reshape(-1)
        at = np.flatnonzero(flat)
        # the cells' positions as gaps between them: small, narrowed to a byte or two
        state["_counts"] = (self._counts.shape, narrow(np.diff(at, prepend=0)), narrow(flat[at]),
                            "gaps")  # fmt: skip
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_next_due", NO_TIME)  # older checkpoints: the first emit scans
        state.setdefault("_redo", [])
        packed = state["_counts"]
        if not isinstance(packed, np.ndarray):  # else a checkpoint from before the packing
            shape, at, values, *gaps = packed  # no "gaps": positions (older checkpoints)
            at = np.cumsum(at, dtype=np.int64) if gaps else at
            counts = np.zeros(shape, np.int32)
            counts.reshape(-1)[at] = values
            state["_counts"] = counts
        super().__setstate__(state)

    def state_size(self) -> dict[str, int]:
        """Entries held: live windows, non-empty segments, sketch buckets, accounts."""
        self._merge_sketches()
        live = self._live_slot
        return {
            "windows": len(live),
            "segments": int(self._counts[live].any(axis=2).sum()),
            "sketch_buckets": len(self._sk_key),
            "accounts": len(self.accounts),
        }


def _count(into: npt.NDArray[Any], at: I64, by: int = 1) -> None:
    """``into[at] += by`` counting repeated indices (``np.add.at`` with a same-dtype operand,
    which numpy runs on its fast path)."""
    np.add.at(into, at, np.full(len(at), by, into.dtype))


def summarize(figs: WindowFigures, mask: npt.ArrayLike | None = None) -> dict[str, Any]:
    """Figures of a union of rows (e.g. every day window of one segment): counts add, sketches
    merge. Give each (account, window, segment) once, e.g. its latest version."""
    m = np.ones(len(figs), np.bool_) if mask is None else np.asarray(mask, np.bool_)
    sk = DDSketch(figs.alpha)
    for i in np.flatnonzero(m).tolist():
        sk.merge(figs.sketch(i))
    out: dict[str, Any] = {
        name: int(getattr(figs, name)[m].sum())
        for name in ("inbound", "answered", "answered_in_thread", "pending", "unanswered",
                     "answered_15m", "answered_1h", "answered_24h", "conversation_starts", "late")
    }
    inbound = out["inbound"]
    for name, num in (("rate", "answered"), ("rate_15m", "answered_15m"),
                      ("rate_1h", "answered_1h"), ("rate_24h", "answered_24h")):
        out[name] = out[num] / inbound if inbound else None
    qs = sk.quantiles(QUANTILES)
    out["p50_ms"], out["p90_ms"], out["p99_ms"] = qs
    out["sketch"] = sk
    return out


__all__ = [
    "DEFAULT_TIERS", "QUANTILES", "RATE_LIMITS_MS", "SEGMENT_ALL",
    "TIER_PREFIX", "RequesterTags", "ResponsivenessAggregator", "WindowFigures", "concat_figures",
    "summarize",
]
