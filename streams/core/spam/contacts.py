"""Who has been in contact with whom: "prior interaction" for R1 and R5.

Account s has *contact* with r when, within ``horizon_ms`` (30 days by default) before, there was
an interaction-layer event between them in either direction, or r followed s. The follow counts
one way only: a subscriber who follows a newsletter expects its links, but following strangers
first does not make a spammer's links to them expected. Memory is the time of the last such
event per directed pair (last by arrival), forgotten once older than the horizon, so it is
bounded by the pairs active in one horizon; an ``IntMap`` (16 bytes a pair, not a dict entry).

``scan`` answers, for every addressing event of a batch, "last contact before this event"
(events earlier in the batch included, the event itself not) with a sort and a binary search,
then takes the batch in. The answers depend only on the order of events, not on batch cuts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streams.core.batch import I64
from streams.core.intmap import IntMap
from streams.core.reciprocity import NON_INTERACTION_KINDS
from streams.core.spam.frame import Frame
from streams.core.spam.spans import Expiry
from streams.core.windows import DAY_MS, NO_TIME

_SHIFT = np.int64(32)  # account ids < 2^31: a directed pair packs into one int64
_FOLLOW = frozenset({"FOLLOW"})


class ContactMemory:
    """Last contact time per directed pair (sender, recipient) over a trailing horizon."""

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        self.last = IntMap()  # sender << 32 | recipient -> ts of last contact
        self._expiry = Expiry(horizon_ms, DAY_MS)

    def __len__(self) -> int:
        return len(self.last)

    def scan(self, frame: Frame) -> None:
        """Fill ``frame.prior`` / ``frame.prior_reverse`` for its addressing rows, then remember
        the batch's contacts."""
        b = frame.batch
        a, t = frame.actor_ids, frame.target_ids
        inter = np.flatnonzero(frame.accepted & b.directed(exclude=NON_INTERACTION_KINDS))
        follow = frame.rows(_FOLLOW)
        pos = np.concatenate((inter, inter, follow))
        keys = np.concatenate((
            a[inter] << _SHIFT | t[inter], t[inter] << _SHIFT | a[inter],
            t[follow] << _SHIFT | a[follow],  # r followed s: s may address r
        ))  # fmt: skip
        q = frame.addressing
        qkeys = np.concatenate((a[q] << _SHIFT | t[q], t[q] << _SHIFT | a[q]))
        prior = self._before(pos, keys, frame.ts[pos], np.concatenate((q, q)), qkeys, len(frame))
        frame.prior, frame.prior_reverse = prior[: len(q)], prior[len(q) :]

    def _before(self, pos: I64, keys: I64, ts: I64, qpos: I64, qkeys: I64, n: int) -> I64:
        """For each query (row, key): ts of the last update of ``key`` at a row before it in
        this batch, else the remembered one; then remember the batch's last update per key."""
        uniq, inv = np.unique(np.concatenate((keys, qkeys)), return_inverse=True)
        span = n + 1
        ucomb = inv[: len(keys)] * span + pos
        order = np.argsort(ucomb, kind="stable")
        ucomb, uts = ucomb[order], ts[order]
        qrank = inv[len(keys) :]
        j = np.searchsorted(ucomb, qrank * span + qpos, "left") - 1
        hit = j >= 0
        hit[hit] = ucomb[j[hit]] // span == qrank[hit]
        prior = np.full(len(qkeys), NO_TIME, np.int64)
        prior[hit] = uts[j[hit]]
        miss = np.flatnonzero(~hit)
        if len(miss) and len(self.last):
            prior[miss] = self.last.lookup(qkeys[miss], NO_TIME)[0]
        if len(ucomb):
            rank = ucomb // span
            last = np.flatnonzero(np.append(rank[1:] != rank[:-1], True))
            self.last.update(uniq[rank[last]], uts[last])
        return prior

    def expire(self, now: int) -> None:
        """Forget contacts older than the horizon before ``now`` (stream time − lateness); runs
        at most once per day of stream time, the pass being over the whole memory (so up to a
        day more than the horizon is held)."""
        if not self._expiry.due(now):
            return
        edge = now - self.horizon_ms
        self.last.keep(lambda ts: ts >= edge)

    def __setstate__(self, state: dict[str, Any]) -> None:
        last = state["last"]
        if isinstance(last, dict):  # a checkpoint from before the IntMap
            state["last"] = IntMap.from_dict(last)
        vars(self).update(state)
