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
from dataclasses import dataclass, field
from operator import methodcaller
from typing import Any, ClassVar, NamedTuple

import numpy as np

from streams.core.batch import I64, AccountIndex, Bools, EventBatch, Objects, as_batch, objects
from streams.core.narrow import NarrowPickle
from streams.core.windows import DAY_MS, NO_TIME, Event

ADDRESSING_KINDS = frozenset({"REPLY", "COMMENT", "MENTION", "MESSAGE"})
DEFAULT_HORIZON_MS = 7 * DAY_MS
CONVERSATION_GAP_MS = DAY_MS  # a conversation start has no A↔B addressing event this long before
_ID_BITS = 31  # account ids < 2^31: a directed pair packs into one int64

# plain-tuple forms of the records (``records()``); the *_FIELDS name their positions. Every
# record carries the message's ``seen_at`` (matcher stream time when it arrived: decides whether
# it made its window) and ``tag`` (an opaque int the caller gave the message's event, e.g. the
# requester's tier and spam flag at that time), so later stages need no per-message state.
InboundRecord = tuple[str, str, str, int, int, bool, int]
INBOUND_FIELDS = (
    "event_id", "requester", "responder", "ts", "seen_at", "conversation_start", "tag",
)
ReplyRecord = tuple[str, str, str, int, str, int, int, bool, int, int]
REPLY_FIELDS = (
    "inbound_id", "requester", "responder", "inbound_ts", "answer_id", "answer_ts", "latency_ms",
    "in_thread", "seen_at", "tag",
)
ExpiryRecord = tuple[str, str, str, int, int, int, int]
EXPIRY_FIELDS = (
    "inbound_id", "requester", "responder", "inbound_ts", "expired_at", "seen_at", "tag",
)


class _Columns:
    """Shared behaviour of the record batches: length, tuples, dicts, concatenation."""

    FIELDS: ClassVar[tuple[str, ...]] = ()
    __slots__ = ()

    def columns(self) -> list[Any]:
        """The record columns, in ``FIELDS`` order."""
        return [getattr(self, f) for f in self.FIELDS]

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
    tag: I64  # the caller's tag of the message's event (0 when none was given)
    responder_id: I64 | None = field(default=None, compare=False)  # ids in ``accounts``
    accounts: AccountIndex | None = field(default=None, compare=False, repr=False)


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
    seen_at: I64  # of the message
    tag: I64  # of the message
    responder_id: I64 | None = field(default=None, compare=False)
    accounts: AccountIndex | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Expiries(_Columns):
    """Messages that became unanswered in a batch (stream time passed t + H)."""

    FIELDS: ClassVar[tuple[str, ...]] = EXPIRY_FIELDS
    inbound_id: Objects
    requester: Objects
    responder: Objects
    inbound_ts: I64
    expired_at: I64  # stream time at which it expired: the first event time > t + H
    seen_at: I64  # of the message
    tag: I64  # of the message
    responder_id: I64 | None = field(default=None, compare=False)
    accounts: AccountIndex | None = field(default=None, compare=False, repr=False)


class MatchResult(NamedTuple):
    """What one batch produced."""

    inbound: Inbound
    replies: Replies
    expired: Expiries
    stream_time: int  # matcher stream time after the batch


_EMPTY_I = np.zeros(0, np.int64)
_EMPTY_O = np.empty(0, dtype=object)
_EMPTY_B = np.zeros(0, np.bool_)


class ReplyMatcher(NarrowPickle):
    """Dyadic reply matcher for one partition; ``process`` takes batches in event-time order.

    Events that are not addressing kinds (or have no target, or target = actor) only move stream
    time. A message whose answer comes after it expired stays unanswered: expiry is final.
    """

    def __init__(
        self,
        horizon_ms: int = DEFAULT_HORIZON_MS,
        conversation_gap_ms: int = CONVERSATION_GAP_MS,
        accounts: AccountIndex | None = None,
    ) -> None:
        self.horizon_ms = horizon_ms
        self.conversation_gap_ms = conversation_gap_ms
        self.stream_time = NO_TIME
        # account ids (pair keys are packed ids); share the index with the aggregator of the
        # same process and records carry responder ids it can use directly
        self.accounts = accounts if accounts is not None else AccountIndex()
        # pending messages, as columns
        self._p_t: I64 = _EMPTY_I
        self._p_seen: I64 = _EMPTY_I
        self._p_eid: Objects = _EMPTY_O
        self._p_req_id: I64 = _EMPTY_I
        self._p_resp_id: I64 = _EMPTY_I
        self._p_tag: I64 = _EMPTY_I
        # per unordered pair (sorted keys): last addressing ts, and the latest one before it
        self._c_key: I64 = _EMPTY_I
        self._c_last: I64 = _EMPTY_I
        self._c_prev: I64 = _EMPTY_I

    def pending_count(self) -> int:
        """Messages neither answered nor expired."""
        return len(self._p_t)

    def state_size(self) -> dict[str, int]:
        """Entries held: pending messages, pairs with conversation state, interned accounts."""
        return {
            "pending": len(self._p_t), "pairs": len(self._c_key), "accounts": len(self.accounts),
        }

    def _intern(self, names: list[str]) -> I64:
        if len(self.accounts) + len(names) >= 1 << _ID_BITS:
            raise OverflowError("more than 2^31 accounts in one matcher")
        return self.accounts.ids_of(names)

    def process(
        self, events: Sequence[Event] | EventBatch, tags: I64 | None = None
    ) -> MatchResult:
        """Match a batch (sorted by ts first, stably); returns the records it produced.

        ``tags[i]`` (optional) is carried with the message of event i into its records.
        """
        b = as_batch(events, self.accounts)
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
        if b.accounts is self.accounts and b.actor_ids is not None and b.target_ids is not None:
            req_id, resp_id = b.actor_ids[oi], b.target_ids[oi]
        else:
            actors, targets = b.actor, b.target
            oi_list = oi.tolist()
            req_id = self._intern([actors[i] for i in oi_list])
            resp_id = self._intern([targets[i] for i in oi_list])  # type: ignore[misc]
        if len(self.accounts) >= 1 << _ID_BITS:
            raise OverflowError("more than 2^31 accounts in one matcher")
        names = self.accounts.names_of
        tag = np.zeros(k, np.int64) if tags is None else np.asarray(tags, np.int64)[oi]

        conv = self._conversation_starts(req_id, resp_id, t, st_end) if k else _EMPTY_B
        acc = self.accounts
        inbound = Inbound(eid, names(req_id), names(resp_id), t, seen, conv, tag, resp_id, acc)

        # the pending messages this batch can touch (answerable by a new message, or expiring),
        # then the new ones, in processing order; the rest stay pending as they are (a batch
        # used to re-sort every pending message: its cost grew with the state, not the batch)
        n_old = len(self._p_t)
        touch = self._p_t + self.horizon_ms < st_end
        if k and n_old:
            c_keys = np.unique((req_id << _ID_BITS) | resp_id)
            want_old = (self._p_resp_id << _ID_BITS) | self._p_req_id
            at_key = np.minimum(np.searchsorted(c_keys, want_old), len(c_keys) - 1)
            touch |= c_keys[at_key] == want_old
        old = np.flatnonzero(touch)
        n_sel = len(old)
        m_t = np.concatenate((self._p_t[old], t))
        m_seen = np.concatenate((self._p_seen[old], seen))
        m_req_id = np.concatenate((self._p_req_id[old], req_id))
        m_resp_id = np.concatenate((self._p_resp_id[old], resp_id))
        m_tag = np.concatenate((self._p_tag[old], tag))
        m_pos = np.concatenate((np.full(n_sel, -1, np.int64), sp))
        due = m_t + self.horizon_ms

        def m_eid(idx: I64) -> Objects:  # event ids of messages, without concatenating them all
            return _pick(self._p_eid, old, eid, idx)

        # answers: the first new message resp→req after t0. Pairs get dense ranks, and
        # rank·span + ts orders candidates by pair, then time (= processing order)
        answered = np.zeros(len(m_t), np.bool_)
        j = _EMPTY_I
        if k:
            c_key = (req_id << _ID_BITS) | resp_id
            want = (m_resp_id << _ID_BITS) | m_req_id
            _, rank = np.unique(np.concatenate((c_key, want)), return_inverse=True)
            rank = rank.reshape(-1)
            base = int(m_t.min())  # candidates are messages too: none is earlier
            span = int(m_t.max()) - base + 2
            if len(rank) >= (1 << 62) // span:
                raise OverflowError("batch spans too much time to match in one go")
            comp = rank[:k] * span + (t - base)
            c_ord = np.argsort(comp, kind="stable")
            comp_s = comp[c_ord]
            jj = np.searchsorted(comp_s, rank[k:] * span + (m_t - base), "right")
            jj = np.minimum(jj, k - 1)
            found = rank[:k][c_ord[jj]] == rank[k:]
            c_t_s = t[c_ord]
            found &= c_t_s[jj] > m_t
            # answered unless the message expired first (stream time at the answer > t0 + H)
            answered = found & (seen[c_ord[jj]] <= due)
            j = jj[answered]
            a_rows = oi[c_ord[j]]

        expired = ~answered & (due < st_end)
        keep = ~answered & ~expired

        replies = _replies_empty()
        if answered.any():
            mi = np.flatnonzero(answered)
            a_pos = sp[c_ord[j]]
            r_ord = np.lexsort((mi, a_pos))  # by answer, then message
            mi, a_rows = mi[r_ord], a_rows[r_ord]
            r_eid = m_eid(mi)
            r_t = m_t[mi]
            a_t = c_t_s[j][r_ord]
            replies = Replies(
                r_eid, names(m_req_id[mi]), names(m_resp_id[mi]), r_t, b.event_id_array[a_rows],
                a_t, a_t - r_t,
                _in_thread(b, a_rows, r_eid), m_seen[mi], m_tag[mi], m_resp_id[mi], acc,
            )

        expiries = _expiries_empty()
        if expired.any():
            xi = np.flatnonzero(expired)
            at = np.maximum(np.searchsorted(run, due[xi], "right"), np.maximum(m_pos[xi], 0))
            x_ord = np.lexsort((xi, at))
            xi, at = xi[x_ord], at[x_ord]
            expiries = Expiries(
                m_eid(xi), names(m_req_id[xi]), names(m_resp_id[xi]), m_t[xi],
                run[np.minimum(at, n - 1)],
                m_seen[xi], m_tag[xi], m_resp_id[xi], acc,
            )

        gone = old[~keep[:n_sel]]
        if len(gone):
            stay = np.ones(n_old, np.bool_)
            stay[gone] = False
            self._p_t, self._p_seen, self._p_eid = (
                self._p_t[stay], self._p_seen[stay], self._p_eid[stay])
            self._p_req_id, self._p_resp_id = self._p_req_id[stay], self._p_resp_id[stay]
            self._p_tag = self._p_tag[stay]
        new = np.flatnonzero(keep[n_sel:])
        if len(new):
            self._p_t = np.concatenate((self._p_t, t[new]))
            self._p_seen = np.concatenate((self._p_seen, seen[new]))
            self._p_eid = np.concatenate((self._p_eid, eid[new]))
            self._p_req_id = np.concatenate((self._p_req_id, req_id[new]))
            self._p_resp_id = np.concatenate((self._p_resp_id, resp_id[new]))
            self._p_tag = np.concatenate((self._p_tag, tag[new]))
        # a pair silent for longer than the gap cannot make anything "not a start" again
        live = self._c_last >= st_end - self.conversation_gap_ms
        if not live.all():
            self._c_key, self._c_last, self._c_prev = (
                self._c_key[live], self._c_last[live], self._c_prev[live])
        self.stream_time = st_end
        return MatchResult(inbound, replies, expiries, st_end)

    def _conversation_starts(self, req_id: I64, resp_id: I64, t: I64, st_end: int) -> Bools:
        """For each new message: no addressing event of its pair in [t − gap, t) (before it in
        processing order); then fold the batch into the per-pair state."""
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
        self._c_key, self._c_last, self._c_prev = c_key, c_last, c_prev
        return starts


def _pick(old: Objects, chosen: I64, new: Objects, idx: I64) -> Objects:
    """Elements ``idx`` of the concatenation of ``old[chosen]`` and ``new``, without building
    it."""
    out = np.empty(len(idx), dtype=object)
    from_old = idx < len(chosen)
    out[from_old] = old[chosen[idx[from_old]]]
    out[~from_old] = new[idx[~from_old] - len(chosen)]
    return out


def _in_thread(b: EventBatch, rows: I64, message_ids: Objects) -> Bools:
    """Whether each answer (batch row) points at its message by in_reply_to or conversation_id.

    Only the answering rows are read (each once), not the whole batch.
    """
    out = np.zeros(len(rows), np.bool_)
    uniq, inv = np.unique(rows, return_inverse=True)
    events = b.events
    answers = list(map(events.__getitem__, uniq.tolist()))
    for name in ("in_reply_to", "conversation_id"):
        vals = list(map(methodcaller("get", name), answers))
        if vals.count(None) != len(vals):
            out |= objects(vals)[inv.reshape(-1)] == message_ids
    return out


def _inbound_empty() -> Inbound:
    return Inbound(_EMPTY_O, _EMPTY_O, _EMPTY_O, _EMPTY_I, _EMPTY_I, _EMPTY_B, _EMPTY_I)


def _replies_empty() -> Replies:
    return Replies(
        _EMPTY_O, _EMPTY_O, _EMPTY_O, _EMPTY_I, _EMPTY_O, _EMPTY_I, _EMPTY_I, _EMPTY_B, _EMPTY_I,
        _EMPTY_I,
    )


def _expiries_empty() -> Expiries:
    return Expiries(_EMPTY_O, _EMPTY_O, _EMPTY_O, _EMPTY_I, _EMPTY_I, _EMPTY_I, _EMPTY_I)


def concat_results(results: Sequence[MatchResult]) -> MatchResult:
    """Several batches' results as one (e.g. to check a whole stream)."""
    if not results:
        return MatchResult(_inbound_empty(), _replies_empty(), _expiries_empty(), NO_TIME)

    def cat(cls: type[Any], parts: list[Any]) -> Any:
        cols = zip(*(p.columns() for p in parts), strict=True)
        return cls(*(np.concatenate(c) for c in cols))

    return MatchResult(
        cat(Inbound, [r.inbound for r in results]),
        cat(Replies, [r.replies for r in results]),
        cat(Expiries, [r.expired for r in results]),
        results[-1].stream_time,
    )


__all__ = [
    "ADDRESSING_KINDS", "CONVERSATION_GAP_MS", "DEFAULT_HORIZON_MS", "EXPIRY_FIELDS",
    "INBOUND_FIELDS", "REPLY_FIELDS", "Expiries", "ExpiryRecord", "Inbound", "InboundRecord",
    "MatchResult", "ReplyMatcher", "ReplyRecord", "Replies", "concat_results",
]
