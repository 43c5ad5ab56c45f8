"""Responsiveness per responder and window (METRICS.md, "Responsiveness"), from matcher records.

Windows are by the inbound message's time t (1 h and 1 d, epoch-aligned). For each (responder,
window) the aggregator keeps counters and a latency sketch per segment: ``all``,
``spam_adjusted`` (inbound from flagged accounts left out) and ``tier:<tier of the requester>``.
A message's tier, flag and whether it made its window (grace, judged on the matcher's stream
time when it arrived) are decided once, when its inbound record arrives, and remembered until it
is answered or expires: a message always counts in the same segments and windows.

Windows are emitted when they close (stream time ≥ end + grace), re-emitted with version + 1
when an answer arrives for one of their messages, and emitted a last time, ``final``, once
stream time > end + H (and none of their messages is pending); then they are dropped, so state
is bounded by stream time. State is columnar (numpy) and updated per batch, not per record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.batch import I64, Bools, Objects, objects
from streams.core.replies import DEFAULT_HORIZON_MS, Expiries, Inbound, MatchResult, Replies
from streams.core.sketch import DEFAULT_ALPHA, DDSketch, nearest_rank
from streams.core.tiers import BASE, TOP, UPPER, follower_tiers
from streams.core.windows import DAY_MS, GRACE_MS, HOUR_MS, NO_TIME, WINDOW_SIZES

SEGMENT_ALL = "all"
SEGMENT_SPAM_ADJUSTED = "spam_adjusted"
TIER_PREFIX = "tier:"
DEFAULT_TIERS: tuple[str, ...] = (*follower_tiers(), TOP, UPPER, BASE)
RATE_LIMITS_MS = (15 * 60_000, HOUR_MS, DAY_MS)  # rate@15min, @1h, @24h
QUANTILES = (0.5, 0.9, 0.99)

# counters per (window, segment): inbound, answered by latency band (≤15m, ≤1h, ≤24h, longer),
# answered in thread, unanswered (expired), conversation starts, late (missed the window)
_INB, _A15, _A1H, _A24H, _ALONG, _THREAD, _UNANS, _CONV, _LATE = range(9)
_NF = 9
_ALL, _ADJ = 0, 1  # segment ids; tiers are 2, 3, ...
_KSPAN = 1 << 12  # sketch keys of latencies ≥ 1 ms are 0 … < 4096
_SLOT_BITS = 24  # slots of one size packed in a message code
_SLOT_MASK = (1 << _SLOT_BITS) - 1
_CODE_SHIFT = 5  # code = segment id of the tier (4 bits) | flagged << 4 | (slot + 1) << 5 + 24i
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


class ResponsivenessAggregator:
    """Aggregates inbound/reply/expiry records per responder and window; see module docstring.

    ``tier_of(account)`` gives a requester's tier, one of ``tiers`` (e.g. ``TierBook.tier``);
    ``flagged`` is the set of accounts under an active spam alert (the caller may change it; a
    message is judged when it arrives). Feed each batch's records in the matcher's order:
    ``consume(result)`` does that. At most two window sizes.
    """

    def __init__(
        self,
        sizes: Iterable[int] = WINDOW_SIZES,
        horizon_ms: int = DEFAULT_HORIZON_MS,
        grace_ms: int = GRACE_MS,
        tier_of: Callable[[str], str] | None = None,
        tiers: Sequence[str] = DEFAULT_TIERS,
        flagged: Collection[str] | None = None,
        alpha: float = DEFAULT_ALPHA,
    ) -> None:
        self.sizes: tuple[int, ...] = tuple(sizes)
        if not 1 <= len(self.sizes) <= 2:
            raise ValueError("one or two window sizes")
        if len(tiers) > 14:
            raise ValueError("at most 14 tiers")
        self.horizon_ms = horizon_ms
        self.grace_ms = grace_ms
        self.tier_of = tier_of
        self.flagged: set[str] = set(flagged or ())
        self.alpha = alpha
        sk = DDSketch(alpha)
        self._inv_log_gamma = sk._inv_log_gamma
        self._gamma = sk.gamma
        self.seg_names: list[str] = [SEGMENT_ALL, SEGMENT_SPAM_ADJUSTED] + [
            TIER_PREFIX + t for t in tiers]
        self._tier_seg = {t: i + 2 for i, t in enumerate(tiers)}
        self._nseg = len(self.seg_names)
        self.stream_time = NO_TIME
        self._final_st = NO_TIME  # stream time of the last emit that dropped final windows
        self._acc: dict[str, int] = {}
        self._acc_names: list[str] = []
        self._slot_of: dict[int, int] = {}  # packed (responder, size, start) -> slot
        self._free: list[int] = []
        self._cap = 0
        # per live window ("slot"): counters by segment, owner, size index, start, version,
        # pending messages, packed key, and flags
        self._counts: I64 = np.zeros((0, self._nseg, _NF), np.int64)
        self._s_rid: I64 = np.zeros(0, np.int64)
        self._s_size: I64 = np.zeros(0, np.int64)
        self._s_start: I64 = np.zeros(0, np.int64)
        self._s_version: I64 = np.zeros(0, np.int64)
        self._s_pending: I64 = np.zeros(0, np.int64)
        self._s_key: I64 = np.zeros(0, np.int64)
        self._s_alive: Bools = np.zeros(0, np.bool_)
        self._s_closed: Bools = np.zeros(0, np.bool_)
        self._s_dirty: Bools = np.zeros(0, np.bool_)
        self._grow(1024)
        # sketch buckets of every (slot, segment): sorted packed keys and their counts, plus
        # not yet merged additions
        self._sk_key: I64 = np.zeros(0, np.int64)
        self._sk_cnt: I64 = np.zeros(0, np.int64)
        self._sk_new: list[I64] = []
        self.pending: dict[str, int] = {}  # inbound id -> message code
        self.unmatched = 0  # replies/expiries for messages this aggregator never saw
        self.dropped_late = 0  # inbound whose window was already final and dropped

    # --- slots ---

    def _grow(self, cap: int) -> None:
        """Room for ``cap`` live windows (arrays are copied into larger ones)."""
        if cap > _SLOT_MASK:
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
        self._s_key = grown(self._s_key)
        self._s_alive = grown(self._s_alive)
        self._s_closed = grown(self._s_closed)
        self._s_dirty = grown(self._s_dirty)
        self._free.extend(range(cap - 1, old - 1, -1))
        self._cap = cap

    def _slots(self, si: int, rid: I64, start: I64) -> I64:
        """Slot of each (responder, size ``si``, window start); −1 for windows already dropped."""
        size = self.sizes[si]
        wkey = ((rid * 2 + si) << 32) + (start // size + (1 << 31))
        uk, first, inv = np.unique(wkey, return_index=True, return_inverse=True)
        get = self._slot_of.get
        slot_u = np.fromiter([get(x, -1) for x in uk.tolist()], np.int64, len(uk))
        new = np.flatnonzero(slot_u < 0)
        if len(new):
            n_start = start[first[new]]
            gone = n_start + size + self.horizon_ms < self._final_st
            slot_u[new[gone]] = -1
            new = new[~gone]
            if len(new) > len(self._free):
                self._grow(max(self._cap * 2, self._cap + len(new)))
            fresh = np.array([self._free.pop() for _ in range(len(new))], np.int64)
            slot_u[new] = fresh
            self._s_rid[fresh] = rid[first[new]]
            self._s_size[fresh] = si
            self._s_start[fresh] = start[first[new]]
            self._s_key[fresh] = uk[new]
            self._s_version[fresh] = 0
            self._s_alive[fresh] = True
            self._s_closed[fresh] = False
            self._s_dirty[fresh] = False
            self._s_pending[fresh] = 0
            self._slot_of.update(zip(uk[new].tolist(), fresh.tolist(), strict=True))
        return slot_u[inv.reshape(-1)]

    def _intern(self, names: list[str]) -> I64:
        acc = self._acc
        n0 = len(acc)
        get = acc.setdefault
        ids = np.fromiter([get(x, len(acc)) for x in names], np.int64, len(names))
        if len(acc) > n0:
            u, first = np.unique(ids, return_index=True)
            self._acc_names.extend(names[i] for i in first[u >= n0].tolist())
        return ids

    def _cells(self, slot: I64, tid: I64, flagged: Bools) -> tuple[I64, I64, I64]:
        """(row into the records, slot, segment) for each record's segments: all, tier, adjusted."""
        idx = np.arange(len(slot))
        has_tier = tid > 0
        adj = ~flagged
        rows = np.concatenate((idx, idx[has_tier], idx[adj]))
        segs = np.concatenate((np.zeros(len(slot), np.int64), tid[has_tier],
                               np.ones(int(adj.sum()), np.int64)))
        return rows, slot[rows], segs

    def _add(self, slot: I64, seg: I64, field: I64 | int) -> None:
        flat = (slot * self._nseg + seg) * _NF + field
        np.add.at(self._counts.reshape(-1), flat, 1)

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
        n = len(inb.ts)
        if n == 0:
            return
        t, seen = inb.ts, inb.seen_at
        rid = self._intern(inb.responder.tolist())
        reqs = inb.requester.tolist()
        if self.tier_of is not None:
            tier_of, tier_seg = self.tier_of, self._tier_seg
            try:
                tid = np.fromiter([tier_seg[tier_of(r)] for r in reqs], np.int64, n)
            except KeyError as exc:
                raise ValueError(f"tier {exc} is not one of the aggregator's tiers") from None
        else:
            tid = np.zeros(n, np.int64)
        flagged_set = self.flagged
        flg = np.fromiter([r in flagged_set for r in reqs], np.bool_, n)
        code = tid | (flg.astype(np.int64) << 4)
        conv = inb.conversation_start
        for si, size in enumerate(self.sizes):
            start = t - t % size
            slot = self._slots(si, rid, start)
            live = slot >= 0
            self.dropped_late += int((~live).sum())
            accepted = live & (seen < start + size + self.grace_ms)
            late = live & ~accepted
            rows, cslot, cseg = self._cells(slot, tid, flg)
            acc_r = accepted[rows]
            self._add(cslot[acc_r], cseg[acc_r], _INB)
            conv_r = acc_r & conv[rows]
            self._add(cslot[conv_r], cseg[conv_r], _CONV)
            late_r = late[rows]
            self._add(cslot[late_r], cseg[late_r], _LATE)
            np.add.at(self._s_pending, slot[accepted], 1)
            code |= np.where(accepted, slot + 1, 0) << (_CODE_SHIFT + _SLOT_BITS * si)
        self.pending.update(zip(inb.event_id.tolist(), code.tolist(), strict=True))
        self.advance(int(t.max()))

    def _codes(self, ids: Objects) -> tuple[I64, Bools]:
        pop = self.pending.pop
        code = np.fromiter([pop(m, -1) for m in ids.tolist()], np.int64, len(ids))
        known = code >= 0
        self.unmatched += int((~known).sum())
        return code, known

    def add_replies(self, rep: Replies) -> None:
        if len(rep.inbound_ts) == 0:
            return
        code, known = self._codes(rep.inbound_id)
        lat = rep.latency_ms[known]
        if len(lat) and int(lat.min()) <= 0:
            raise ValueError("reply latency must be > 0 ms")
        code = code[known]
        thread = rep.in_thread[known]
        band = np.searchsorted(np.array(RATE_LIMITS_MS), lat, "left") + _A15
        key = np.ceil(np.log(lat.astype(np.float64)) * self._inv_log_gamma).astype(np.int64)
        tid = code & 15
        flg = ((code >> 4) & 1).astype(np.bool_)
        for si in range(len(self.sizes)):
            slot = ((code >> (_CODE_SHIFT + _SLOT_BITS * si)) & _SLOT_MASK) - 1
            rows, cslot, cseg = self._cells(slot, tid, flg)
            ok = cslot >= 0
            rows, cslot, cseg = rows[ok], cslot[ok], cseg[ok]
            np.add.at(self._counts.reshape(-1), (cslot * self._nseg + cseg) * _NF + band[rows], 1)
            th = thread[rows]
            self._add(cslot[th], cseg[th], _THREAD)
            self._sk_new.append((cslot * self._nseg + cseg) * _KSPAN + key[rows])
            s = slot[slot >= 0]
            np.subtract.at(self._s_pending, s, 1)
            self._s_dirty[s] = True
        self.advance(int(rep.answer_ts.max()))

    def add_expired(self, exp: Expiries) -> None:
        if len(exp.inbound_ts) == 0:
            return
        code, known = self._codes(exp.inbound_id)
        code = code[known]
        tid = code & 15
        flg = ((code >> 4) & 1).astype(np.bool_)
        for si in range(len(self.sizes)):
            slot = ((code >> (_CODE_SHIFT + _SLOT_BITS * si)) & _SLOT_MASK) - 1
            _, cslot, cseg = self._cells(slot, tid, flg)
            ok = cslot >= 0
            self._add(cslot[ok], cseg[ok], _UNANS)
            np.subtract.at(self._s_pending, slot[slot >= 0], 1)
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

    def emit(self) -> WindowFigures:
        """Rows of windows that closed, changed after emission (version + 1) or became final.

        Final windows are dropped after this call, which keeps state bounded by stream time.
        """
        st = self.stream_time
        cap = self._cap
        alive = self._s_alive[:cap]
        end = self._s_start + np.array(self.sizes, np.int64)[self._s_size]
        closable = alive & (st >= end + self.grace_ms)
        final = closable & (st > end + self.horizon_ms) & (self._s_pending == 0)
        out = closable & (~self._s_closed | final | self._s_dirty)
        slots = np.flatnonzero(out)
        self._s_version[slots] += 1
        self._s_closed[closable] = True
        self._s_dirty[slots] = False
        figs = self._figures(slots, final[slots])
        self._drop(np.flatnonzero(final))
        return figs

    def rows(self) -> WindowFigures:
        """Current figures of every window held, open ones too (no version change)."""
        slots = np.flatnonzero(self._s_alive)
        end = self._s_start[slots] + np.array(self.sizes, np.int64)[self._s_size[slots]]
        final = (self.stream_time > end + self.horizon_ms) & (self._s_pending[slots] == 0)
        return self._figures(slots, final)

    def _drop(self, slots: I64) -> None:
        if not len(slots):
            return
        self._final_st = self.stream_time
        self._merge_sketches()
        owner = self._sk_key // (self._nseg * _KSPAN)
        keep = ~np.isin(owner, slots)
        self._sk_key, self._sk_cnt = self._sk_key[keep], self._sk_cnt[keep]
        for k in self._s_key[slots].tolist():
            del self._slot_of[k]
        self._counts[slots] = 0
        self._s_alive[slots] = False
        self._s_dirty[slots] = False
        self._free.extend(slots[::-1].tolist())

    def _figures(self, slots: I64, final: Bools) -> WindowFigures:
        self._merge_sketches()
        sub = self._counts[slots]  # (m, nseg, NF)
        ci, cs = np.nonzero(sub.any(axis=2))
        c = sub[ci, cs]  # (rows, NF)
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
        # sketch rows: each (slot, segment) owns a contiguous run of the sorted bucket keys
        base = (slot * self._nseg + cs) * _KSPAN
        lo = np.searchsorted(self._sk_key, base, "left")
        hi = np.searchsorted(self._sk_key, base + _KSPAN, "left")
        cum = np.concatenate(([0], np.cumsum(self._sk_cnt)))
        qv = []
        for q in QUANTILES:
            n = answered
            rank = np.clip(np.ceil(np.round(q * n, 9)), 1, None).astype(np.int64)
            p = np.searchsorted(cum, cum[lo] + rank, "left") - 1
            k = self._sk_key[np.clip(p, 0, max(len(self._sk_key) - 1, 0))] % _KSPAN \
                if len(self._sk_key) else np.zeros(len(n), np.int64)
            v = 2.0 * self._gamma ** k.astype(np.float64) / (self._gamma + 1.0)
            qv.append(np.where(n > 0, v, np.nan))
        lens = hi - lo
        take = np.repeat(lo, lens) + (np.arange(int(lens.sum())) - np.repeat(
            np.concatenate(([0], np.cumsum(lens)[:-1])), lens))
        names = objects(self._acc_names)
        size = np.array(self.sizes, np.int64)[self._s_size[slot]]
        start = self._s_start[slot]
        return WindowFigures(
            account=names[self._s_rid[slot]] if len(slot) else np.empty(0, object),
            window_ms=size, window_start=start, window_end=start + size,
            segment=objects(self.seg_names)[cs], version=self._s_version[slot],
            final=final[ci], inbound=inbound, answered=answered,
            answered_in_thread=c[:, _THREAD], pending=inbound - answered - unanswered,
            unanswered=unanswered, answered_15m=a15, answered_1h=a1h, answered_24h=a24h,
            rate=rate, rate_15m=r15, rate_1h=r1h, rate_24h=r24h,
            p50_ms=qv[0], p90_ms=qv[1], p99_ms=qv[2], conversation_starts=c[:, _CONV],
            late=c[:, _LATE], alpha=self.alpha,
            sketch_offsets=np.concatenate(([0], np.cumsum(lens))).astype(np.int64),
            sketch_keys=self._sk_key[take] % _KSPAN, sketch_counts=self._sk_cnt[take],
        )

    def state_size(self) -> dict[str, int]:
        """Entries held: live windows, non-empty segments, sketch buckets, pending messages."""
        self._merge_sketches()
        alive = np.flatnonzero(self._s_alive)
        return {
            "windows": len(alive),
            "segments": int(self._counts[alive].any(axis=2).sum()),
            "sketch_buckets": len(self._sk_key),
            "pending": len(self.pending),
            "accounts": len(self._acc_names),
        }


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
    "DEFAULT_TIERS", "QUANTILES", "RATE_LIMITS_MS", "SEGMENT_ALL", "SEGMENT_SPAM_ADJUSTED",
    "TIER_PREFIX", "ResponsivenessAggregator", "WindowFigures", "concat_figures", "nearest_rank",
    "summarize",
]
