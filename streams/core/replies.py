"""Reply matching (METRICS.md, "Responsiveness"): which inbound messages got answered, and when.

An inbound message to A is an addressing event B→A (B ≠ A) at t. It is answered at t', the time
of the first addressing event A→B with t < t' ≤ t + H; that one event answers every pending B→A
message, each with its own latency t' − t. A message still unanswered once stream time > t + H
expires (unanswered). Everything needed to decide lives with the unordered pair {A, B}, so a
pipeline that co-partitions events by that pair matches locally; one matcher serves one
partition. State is bounded: pending messages expire on stream time (max event time seen, never
the clock), and per-pair conversation state is forgotten 24 h after the pair's last message.

Batches are matched with numpy (sort + searchsorted), not event by event: for input in
event-time order (e.g. out of a ``ReorderBuffer``) the result is exactly that of processing the
events one by one, however the input is cut into batches. A batch itself is sorted by ts (stably)
first. Records come out as columns (``Inbound``, ``Replies``, ``Expiries``), ready for columnar
inserts; ``records()`` gives plain tuples, ``rows()`` dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple

import numpy as np

from streams.core.batch import I64, Bools, EventBatch, Objects, as_batch, objects
from streams.core.windows import DAY_MS, NO_TIME, Event

ADDRESSING_KINDS = frozenset({"REPLY", "COMMENT", "MENTION", "MESSAGE"})
DEFAULT_HORIZON_MS = 7 * DAY_MS
CONVERSATION_GAP_MS = DAY_MS  # a conversation start has no A↔B addressing event this long before
_ID_BITS = 31  # account ids < 2^31: a directed pair packs into one int64

# plain-tuple forms of the records (``records()``); the *_FIELDS name their positions
InboundRecord = tuple[str, str, str, int, int, bool]
INBOUND_FIELDS = ("event_id", "requester", "responder", "ts", "seen_at", "conversation_start")
ReplyRecord = tuple[str, str, str, int, str, int, int, bool]
REPLY_FIELDS = (
    "inbound_id", "requester", "responder", "inbound_ts", "answer_id", "answer_ts", "latency_ms",
    "in_thread",
)
ExpiryRecord = tuple[str, str, str, int, int]
EXPIRY_FIELDS = ("inbound_id", "requester", "responder", "inbound_ts", "expired_at")


class _Columns:
    """Shared behaviour of the record batches: length, tuples, dicts, concatenation."""

    FIELDS: ClassVar[tuple[str, ...]] = ()
    __slots__ = ()

    def columns(self) -> list[Any]:
        return [getattr(self, f.name) for f in fields(self)]  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.columns()[0])

    def records(self) -> list[tuple[Any, ...]]:
        """One plain tuple per record, in ``FIELDS`` order, with Python ints/bools/strs."""
        return list(zip(*(c.tolist() for c in self.columns()), strict=True))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per record, keyed by ``FIELDS``."""
        return [dict(zip(self.FIELDS, r, strict=True)) for r in self.records()]


@dataclass(frozen=True, slots=True)
class Inbound(_Columns):
    """Every inbound message of a batch, in processing order."""

    FIELDS: ClassVar[tuple[str, ...]] = INBOUND_FIELDS
    event_id: Objects
    requester: Objects  # B, the actor
    responder: Objects  # A, the target
    ts: I64
    seen_at: I64  # matcher stream time when the message arrived (decides lateness)
    conversation_start: Bools  # no A↔B addressing event in the gap (24 h) before


@dataclass(frozen=True, slots=True)
class Replies(_Columns):
    """Messages answered in a batch (any earlier batch's, too), by answer then message."""

    FIELDS: ClassVar[tuple[str, ...]] = REPLY_FIELDS
    inbound_id: Objects
    requester: Objects
    responder: Objects
    inbound_ts: I64
    answer_id: Objects
    answer_ts: I64
    latency_ms: I64
    in_thread: Bools  # the answer's in_reply_to or conversation_id is the message's event_id


@dataclass(frozen=True, slots=True)
class Expiries(_Columns):
    """Messages that became unanswered in a batch (stream time passed t + H)."""

    FIELDS: ClassVar[tuple[str, ...]] = EXPIRY_FIELDS
    inbound_id: Objects
    requester: Objects
    responder: Objects
    inbound_ts: I64
    expired_at: I64  # stream time at which it expired: the first event time > t + H


class MatchResult(NamedTuple):
    """What one batch produced."""

    inbound: Inbound
    replies: Replies
    expired: Expiries
    stream_time: int  # matcher stream time after the batch


_EMPTY_I = np.zeros(0, np.int64)
_EMPTY_O = np.empty(0, dtype=object)
_EMPTY_B = np.zeros(0, np.bool_)


class ReplyMatcher:
    """Dyadic reply matcher for one partition; ``process`` takes batches in event-time order.

    Events that are not addressing kinds (or have no target, or target = actor) only move stream
    time. A message whose answer comes after it expired stays unanswered: expiry is final.
    """

    def __init__(
        self, horizon_ms: int = DEFAULT_HORIZON_MS, conversation_gap_ms: int = CONVERSATION_GAP_MS
    ) -> None:
        self.horizon_ms = horizon_ms
        self.conversation_gap_ms = conversation_gap_ms
        self.stream_time = NO_TIME
        self._ids: dict[str, int] = {}  # account -> id (pair keys are packed ids)
        # pending messages, as columns
        self._p_t: I64 = _EMPTY_I
        self._p_seen: I64 = _EMPTY_I
        self._p_eid: Objects = _EMPTY_O
        self._p_req: Objects = _EMPTY_O
        self._p_resp: Objects = _EMPTY_O
        self._p_req_id: I64 = _EMPTY_I
        self._p_resp_id: I64 = _EMPTY_I
        # per unordered pair (sorted keys): last addressing ts, and the latest one before it
        self._c_key: I64 = _EMPTY_I
        self._c_last: I64 = _EMPTY_I
        self._c_prev: I64 = _EMPTY_I

    def pending_count(self) -> int:
        """Messages neither answered nor expired."""
        return len(self._p_t)

    def state_size(self) -> dict[str, int]:
        """Entries held: pending messages, pairs with conversation state, interned accounts."""
        return {"pending": len(self._p_t), "pairs": len(self._c_key), "accounts": len(self._ids)}

    def _intern(self, names: Sequence[str]) -> I64:
        ids = self._ids
        if len(ids) + len(names) >= 1 << _ID_BITS:
            raise OverflowError("more than 2^31 accounts in one matcher")
        get = ids.setdefault
        return np.fromiter([get(x, len(ids)) for x in names], np.int64, len(names))

    def process(self, events: Sequence[Event] | EventBatch) -> MatchResult:
        """Match a batch (sorted by ts first, stably); returns the records it produced."""
        b = as_batch(events)
        n = len(b)
        st_prev = self.stream_time
        if n == 0:
            return MatchResult(_inbound_empty(), _replies_empty(), _expiries_empty(), st_prev)
        ts = b.ts
        order: I64 | None = None
        if n > 1 and bool((ts[1:] < ts[:-1]).any()):
            order = np.argsort(ts, kind="stable")
        ts_s = ts if order is None else ts[order]
        run = np.maximum(np.maximum.accumulate(ts_s), st_prev)  # stream time after each event
        st_end = int(run[-1])

        addr = b.directed(ADDRESSING_KINDS)
        if order is None:
            sp = np.flatnonzero(addr)  # processing positions of the new messages
            oi = sp  # their rows in the batch
        else:
            sp = np.flatnonzero(addr[order])
            oi = order[sp]
        k = len(sp)
        t = ts[oi]
        seen = run[sp]
        eid = b.event_id_array[oi]
        req = b.actor_array[oi]
        resp = b.target_array[oi]
        req_id = self._intern(req.tolist())
        resp_id = self._intern(resp.tolist())

        conv = self._conversation_starts(req_id, resp_id, t, st_end) if k else _EMPTY_B
        inbound = Inbound(eid, req, resp, t, seen, conv)

        # every message still pending, then the new ones (in processing order)
        m_t = np.concatenate((self._p_t, t))
        m_seen = np.concatenate((self._p_seen, seen))
        m_eid = np.concatenate((self._p_eid, eid))
        m_req = np.concatenate((self._p_req, req))
        m_resp = np.concatenate((self._p_resp, resp))
        m_req_id = np.concatenate((self._p_req_id, req_id))
        m_resp_id = np.concatenate((self._p_resp_id, resp_id))
        m_pos = np.concatenate((np.full(len(self._p_t), -1, np.int64), sp))
        due = m_t + self.horizon_ms

        # answers: the first new message resp→req after t0 (candidates sorted by pair, then
        # processing position, which is also ts order)
        answered = np.zeros(len(m_t), np.bool_)
        j = _EMPTY_I
        if k:
            c_key = (req_id << _ID_BITS) | resp_id
            c_ord = np.lexsort((sp, c_key))
            c_key_s = c_key[c_ord]
            c_t_s = t[c_ord]
            c_seen_s = seen[c_ord]
            want = (m_resp_id << _ID_BITS) | m_req_id
            lo = np.searchsorted(c_key_s, want, "left")
            hi = np.searchsorted(c_key_s, want, "right")
            # one search inside each pair's run: rank the runs, then key = rank·span + ts offset
            rank_s = np.cumsum(np.concatenate(([0], c_key_s[1:] != c_key_s[:-1])))
            base = min(int(c_t_s.min()), int(m_t.min()))
            span = max(int(c_t_s.max()), int(m_t.max())) - base + 2
            if int(rank_s[-1]) + 1 >= (1 << 62) // span:
                raise OverflowError("batch spans too much time to match in one go")
            comp = rank_s * span + (c_t_s - base)
            has = lo < hi
            m_rank = np.where(has, rank_s[np.minimum(lo, k - 1)], 0)
            jj = np.searchsorted(comp, m_rank * span + (m_t - base), "right")
            found = has & (jj < hi)
            jj = np.minimum(jj, k - 1)
            # answered unless the message expired first (stream time at the answer > t0 + H)
            answered = found & (c_seen_s[jj] <= due)
            j = jj[answered]
            a_rows = oi[c_ord[j]]

        expired = ~answered & (due < st_end)
        keep = ~answered & ~expired

        replies = _replies_empty()
        if answered.any():
            r_eid = m_eid[answered]
            a_t = c_t_s[j]
            r_t = m_t[answered]
            irt = b.field("in_reply_to", a_rows)
            cid = b.field("conversation_id", a_rows)
            thread = np.fromiter(
                (m in (x, y) for m, x, y in zip(r_eid.tolist(), irt, cid, strict=True)),
                np.bool_, len(r_eid),
            )
            r_ord = np.lexsort((np.flatnonzero(answered), sp[c_ord[j]]))
            replies = Replies(
                r_eid[r_ord], m_req[answered][r_ord], m_resp[answered][r_ord], r_t[r_ord],
                b.event_id_array[a_rows][r_ord], a_t[r_ord], (a_t - r_t)[r_ord], thread[r_ord],
            )

        expiries = _expiries_empty()
        if expired.any():
            x_due = due[expired]
            at = np.maximum(np.searchsorted(run, x_due, "right"), np.maximum(m_pos[expired], 0))
            x_at = run[np.minimum(at, n - 1)]
            x_ord = np.lexsort((np.flatnonzero(expired), at))
            expiries = Expiries(
                m_eid[expired][x_ord], m_req[expired][x_ord], m_resp[expired][x_ord],
                m_t[expired][x_ord], x_at[x_ord],
            )

        self._p_t, self._p_seen, self._p_eid = m_t[keep], m_seen[keep], m_eid[keep]
        self._p_req, self._p_resp = m_req[keep], m_resp[keep]
        self._p_req_id, self._p_resp_id = m_req_id[keep], m_resp_id[keep]
        self.stream_time = st_end
        return MatchResult(inbound, replies, expiries, st_end)

    def _conversation_starts(self, req_id: I64, resp_id: I64, t: I64, st_end: int) -> Bools:
        """For each new message: no addressing event of its pair in [t − gap, t) (before it in
        processing order); then fold the batch into the per-pair state and prune it."""
        k = len(t)
        key = (np.minimum(req_id, resp_id) << _ID_BITS) | np.maximum(req_id, resp_id)
        o = np.lexsort((t, key))  # stable: processing order within equal (pair, ts)
        u = key[o]
        ts = t[o]
        idx = np.arange(k)
        new_run = np.ones(k, np.bool_)
        new_run[1:] = (u[1:] != u[:-1]) | (ts[1:] != ts[:-1])
        run_start = np.maximum.accumulate(np.where(new_run, idx, 0))
        pred = np.maximum(run_start - 1, 0)
        has_pred = (run_start > 0) & (u[pred] == u)
        prior = np.where(has_pred, ts[pred], NO_TIME)
        # the pair's state from earlier batches
        c_key, c_last, c_prev = self._c_key, self._c_last, self._c_prev
        pos = np.searchsorted(c_key, u)
        inside = pos < len(c_key)
        known = np.zeros(k, np.bool_)
        known[inside] = c_key[pos[inside]] == u[inside]
        cl = np.full(k, NO_TIME, np.int64)
        cp = np.full(k, NO_TIME, np.int64)
        cl[known] = c_last[pos[known]]
        cp[known] = c_prev[pos[known]]
        earlier = np.where(cl < ts, cl, np.where(cp < ts, cp, NO_TIME))
        prior = np.where(has_pred, prior, earlier)
        starts = np.empty(k, np.bool_)
        starts[o] = prior < ts - self.conversation_gap_ms
        # new state per pair: last = latest ts; prev = latest ts below it (batch or earlier)
        end = np.ones(k, np.bool_)
        end[:-1] = u[1:] != u[:-1]
        g_key, g_last, g_prior = u[end], ts[end], prior[end]
        g_cl, g_cp, g_known, g_pos = cl[end], cp[end], known[end], pos[end]
        last = np.maximum(g_last, g_cl)
        cands = np.stack((g_last, g_prior, g_cl, g_cp))
        prev = np.where(cands < last, cands, NO_TIME).max(axis=0)
        c_last = c_last.copy()
        c_prev = c_prev.copy()
        c_last[g_pos[g_known]] = last[g_known]
        c_prev[g_pos[g_known]] = prev[g_known]
        fresh = ~g_known
        c_key = np.insert(c_key, g_pos[fresh], g_key[fresh])
        c_last = np.insert(c_last, g_pos[fresh], last[fresh])
        c_prev = np.insert(c_prev, g_pos[fresh], prev[fresh])
        live = c_last >= st_end - self.conversation_gap_ms
        self._c_key, self._c_last, self._c_prev = c_key[live], c_last[live], c_prev[live]
        return starts


def _inbound_empty() -> Inbound:
    return Inbound(_EMPTY_O, _EMPTY_O, _EMPTY_O, _EMPTY_I, _EMPTY_I, _EMPTY_B)


def _replies_empty() -> Replies:
    return Replies(_EMPTY_O, _EMPTY_O, _EMPTY_O, _EMPTY_I, _EMPTY_O, _EMPTY_I, _EMPTY_I, _EMPTY_B)


def _expiries_empty() -> Expiries:
    return Expiries(_EMPTY_O, _EMPTY_O, _EMPTY_O, _EMPTY_I, _EMPTY_I)


def concat_results(results: Sequence[MatchResult]) -> MatchResult:
    """Several batches' results as one (e.g. to check a whole stream)."""
    if not results:
        return MatchResult(_inbound_empty(), _replies_empty(), _expiries_empty(), NO_TIME)

    def cat(cls: type[Any], parts: list[Any]) -> Any:
        cols = zip(*(p.columns() for p in parts), strict=True)
        return cls(*(np.concatenate(c) if c else c for c in cols))

    return MatchResult(
        cat(Inbound, [r.inbound for r in results]),
        cat(Replies, [r.replies for r in results]),
        cat(Expiries, [r.expired for r in results]),
        results[-1].stream_time,
    )


__all__ = [
    "ADDRESSING_KINDS", "CONVERSATION_GAP_MS", "DEFAULT_HORIZON_MS", "EXPIRY_FIELDS",
    "INBOUND_FIELDS", "REPLY_FIELDS", "Expiries", "ExpiryRecord", "Inbound", "InboundRecord",
    "MatchResult", "ReplyMatcher", "ReplyRecord", "Replies", "concat_results", "objects",
]
