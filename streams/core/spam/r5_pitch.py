"""R5 pitch-and-link endings: ≥ 5 conversations with distinct counterparts within 24 h where the
actor's last message contains a URL and the actor had no interaction with the counterpart before
that conversation.

A conversation of A with B is a run of addressing events between them (either direction) with
no gap over 24 h (``CONVERSATION_GAP_MS``, as for conversation starts). It is new when A had no
contact with B (``ContactMemory``) before its first event. "Last message" is A's latest message
so far: a conversation counts from A's message with a URL until A writes to B again without one,
so alerts come live rather than a gap after the pitch. The window holds the pitches (the times of
those last messages).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np

from streams.core.changes import Tracked, is_saving_changes
from streams.core.narrow import int_keyed, int_keyed_columns
from streams.core.spam.alerts import Alert, AlertLog, Evidence
from streams.core.spam.config import SpamConfig
from streams.core.spam.frame import Frame
from streams.core.spam.spans import Expiry, TrailingSet, expire_keys
from streams.core.windows import DAY_MS, HOUR_MS

RULE = "R5"
ALERT_WINDOW_MS = DAY_MS
_SHIFT = 32

# One account's conversation with one counterpart: (latest event time, whether the counterpart
# was new, event id of the account's last message if it has a URL). A tuple, not an object:
# there is one per active pair, and the garbage collector stops tracking tuples of atoms.
Conversation = tuple[int, bool, str | None]


class PitchRule:
    """Conversations per directed pair; pitched new conversations per actor."""

    rule = RULE
    keyed = ("conversations", "pitches")

    def __init__(self, config: SpamConfig, log: AlertLog) -> None:
        self.window_ms = config.r5_window_ms
        self.gap_ms = config.r5_conversation_gap_ms
        self.min_conversations = config.r5_min_conversations
        self.contact_horizon_ms = config.contact_horizon_ms
        self.samples = config.samples
        self.log = log
        self.conversations: dict[int, Conversation] = Tracked()  # account << 32 | counterpart
        self.pitches: dict[str, TrailingSet] = Tracked()  # actor -> counterparts pitched
        self._expiry = Expiry(max(self.gap_ms, self.window_ms))

    def __getstate__(self) -> dict[str, Any]:
        """The conversations as columns, not a dict of tuples (~20 bytes an entry pickled); a
        save of changes keeps the dict (``streams.core.changes``)."""
        if is_saving_changes():
            return vars(self)
        keys, convs = int_keyed_columns(self.conversations)
        tops, new, eids = zip(*convs, strict=True) if convs else ((), (), ())
        columns = (keys, np.array(tops, np.int64), np.array(new, np.bool_), list(eids))
        return {**vars(self), "conversations": columns}

    def __setstate__(self, state: dict[str, Any]) -> None:
        convs = state["conversations"]
        if isinstance(convs, tuple):  # else a dict, from before the columns
            keys, tops, new, eids = convs
            state["conversations"] = int_keyed(
                keys, zip(tops.tolist(), new.tolist(), eids, strict=True)
            )
        vars(self).update(state)

    def process(self, frame: Frame) -> list[Alert]:
        b, ts, urls = frame.batch, frame.ts_list, frame.urls
        rows = frame.addressing.tolist()
        a = frame.actor_ids[frame.addressing].tolist()
        x = frame.target_ids[frame.addressing].tolist()
        prior, reverse = frame.prior.tolist(), frame.prior_reverse.tolist()
        conversations = self.conversations
        out: list[Alert] = []
        for k, row in enumerate(rows):
            t = ts[row]
            theirs = x[k] << _SHIFT | a[k]
            conversations[theirs] = self._touch(theirs, t, reverse[k])
            mine = a[k] << _SHIFT | x[k]
            top, new, pitch = self._touch(mine, t, prior[k])
            got = urls.get(row)
            if got is None:
                if pitch is not None:
                    self._withdraw(b.actor[row], str(b.target[row]), pitch)
                conversations[mine] = (top, new, None)
                continue
            eid = b.event_id[row]
            conversations[mine] = (top, new, eid)
            if new:
                alert = self._pitch(row, b.actor[row], str(b.target[row]), t, eid, got[0])
                if alert is not None:
                    out.append(alert)
        return out

    def _touch(self, key: int, t: int, prior: int) -> Conversation:
        """The conversation ``key`` with an event at ``t`` in it (a new one after a gap)."""
        c = self.conversations.get(key)
        if c is None or t > c[0] + self.gap_ms:
            return t, prior < t - self.contact_horizon_ms, None
        return (t, c[1], c[2]) if t > c[0] else c

    def _withdraw(self, actor: str, counterpart: str, pitch: str) -> None:
        """The actor wrote again without a link: that conversation no longer ends in a pitch."""
        pitched = self.pitches.get(actor)
        if pitched is not None:
            entry = pitched.entries.get(counterpart)
            if entry is not None and entry.event_id == pitch:
                pitched.remove(counterpart)

    def _pitch(
        self, row: int, actor: str, counterpart: str, t: int, eid: str, url: str
    ) -> Alert | None:
        pitched = self.pitches.get(actor)
        if pitched is None:
            pitched = self.pitches[actor] = TrailingSet(self.window_ms)
        if pitched.add(counterpart, t, eid) is None or len(pitched) < self.min_conversations:
            return None
        n = len(pitched)
        evidence = Evidence(
            {"conversations": n},
            pitched.sample(self.samples),
            f"new conversations ending in a link {n} >= {self.min_conversations} in "
            f"{self.window_ms // HOUR_MS} h",
            url=url,
        )
        return self.log.emit(
            row,
            RULE,
            actor,
            pitched.top,
            ALERT_WINDOW_MS,
            evidence,
            pitched.first_seen(),
            pitched.top,
        )

    def expire(self, now: int) -> None:
        if not self._expiry.due(now):
            return
        edge = now - self.gap_ms  # a conversation last active at edge still takes t = now
        expire_keys(self.conversations, edge - 1, itemgetter(0))
        expire_keys(self.pitches, now - self.window_ms)

    def state_size(self) -> int:
        return (
            len(self.conversations) + len(self.pitches) + sum(len(p) for p in self.pitches.values())
        )
