"""R7 burst: an actor's addressing rate in 5 min ≥ 20× its own trailing hourly average and ≥ 30
events.

At each addressing event of an actor (to another account), with ``top`` its latest event time:
the burst count c is its addressing events in ``(top − 5 min, top]``, the burst rate c × 12 per
hour; the trailing hourly average is its addressing events in the 24 whole clock hours before
the hour holding ``top``, divided by 24 (the current hour is left out, so a burst does not
raise its own baseline). The rule fires when c ≥ 30 and c × 12 ≥ 20 × average. An account with
no history (average 0) fires on 30 events in 5 min: nothing it did before makes that normal.
The average is over what the detector has seen: a detector started mid-stream knows no history.
It is about the actor's outbound rate: a popular account mentioned by many is not the actor.
"""

from __future__ import annotations

import bisect
from operator import itemgetter
from typing import Any

import numpy as np

from streams.core.changes import Tracked, is_saving_changes
from streams.core.spam.alerts import Alert, AlertLog, Evidence
from streams.core.spam.config import MINUTE_MS, SpamConfig
from streams.core.spam.frame import Frame
from streams.core.spam.spans import Expiry, Packed, expire_keys
from streams.core.windows import HOUR_MS, NO_TIME, window_start

RULE = "R7"
ALERT_WINDOW_MS = HOUR_MS


class Sender(Packed):
    """One actor's addressing events: times and ids in the burst window, in (time, id) order
    (so the window's edge is found by bisection, not by re-reading it at every event), counts
    per clock hour."""

    __slots__ = ("top", "recent", "hours")

    def __init__(self) -> None:
        self.top = NO_TIME
        self.recent: list[tuple[int, str]] = []
        self.hours: dict[int, int] = {}  # hour start -> addressing events

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state)
        self.recent.sort()  # checkpoints before kept them in arrival order

    def add(self, t: int, event_id: str) -> None:
        entry = (t, event_id)
        if not self.recent or entry >= self.recent[-1]:
            self.recent.append(entry)
        else:
            bisect.insort(self.recent, entry)

    def forget(self, edge: int) -> None:
        """Drop the events at or before ``edge``."""
        if self.recent and self.recent[0][0] <= edge:
            del self.recent[: bisect.bisect_right(self.recent, edge, key=itemgetter(0))]


class BurstRule:
    """Per actor: a short window of events and an hourly history."""

    rule = RULE
    keyed = ("actors",)

    def __init__(self, config: SpamConfig, log: AlertLog) -> None:
        self.window_ms = config.r7_window_ms
        self.min_events = config.r7_min_events
        self.min_ratio = config.r7_min_ratio
        self.history_ms = config.r7_history_hours * HOUR_MS
        self.per_hour = HOUR_MS / self.window_ms
        self.samples = config.samples
        self.log = log
        self.actors: dict[str, Sender] = Senders()
        self._expiry = Expiry(self.history_ms + HOUR_MS)

    def process(self, frame: Frame) -> list[Alert]:
        b, ts = frame.batch, frame.ts_list
        out: list[Alert] = []
        for row in frame.addressing.tolist():
            actor, t = b.actor[row], ts[row]
            s = self.actors.get(actor)
            if s is None:
                s = self.actors[actor] = Sender()
            if t > s.top:
                s.top = t
            hour = t - t % HOUR_MS
            n = s.hours.get(hour)
            if n is None:  # a new hour: forget what no judgement will count again
                first = window_start(s.top, HOUR_MS) - self.history_ms
                for h in [h for h in s.hours if h < first]:
                    del s.hours[h]
                s.forget(s.top - self.window_ms)
            s.hours[hour] = 1 if n is None else n + 1
            s.add(t, b.event_id[row])
            if len(s.recent) >= self.min_events:
                s.forget(s.top - self.window_ms)
                if len(s.recent) >= self.min_events and not self.log.raised_for(
                    RULE, actor, s.top, ALERT_WINDOW_MS
                ):
                    alert = self._judge(row, actor, s)
                    if alert is not None:
                        out.append(alert)
        return out

    def _judge(self, row: int, actor: str, s: Sender) -> Alert | None:
        c = len(s.recent)
        now = window_start(s.top, HOUR_MS)
        first = now - self.history_ms
        history = sum(n for h, n in s.hours.items() if first <= h < now)
        average = history * HOUR_MS / self.history_ms
        rate = c * self.per_hour
        if rate < self.min_ratio * average:
            return None
        recent = s.recent
        evidence = Evidence(
            {"events": c, "history": history, "history_hours": self.history_ms // HOUR_MS},
            tuple(e for _, e in recent[: self.samples]),
            f"events {c} >= {self.min_events} in {self.window_ms // MINUTE_MS} min; rate "
            f"{rate:.0f}/h >= {self.min_ratio:g} x average {average:.2f}/h",
        )
        return self.log.emit(
            row, RULE, actor, s.top, ALERT_WINDOW_MS, evidence, recent[0][0], s.top
        )

    def expire(self, now: int) -> None:
        if self._expiry.due(now):
            expire_keys(self.actors, now - self.history_ms - HOUR_MS)

    def state_size(self) -> int:
        return len(self.actors) + sum(len(s.recent) + len(s.hours) for s in self.actors.values())

    def __getstate__(self) -> dict[str, Any]:
        """The senders as columns (``_columns``): pickled one by one they took ~8 µs each,
        0.2 of the 0.8 CPU-s of a by-actor checkpoint at the alert bench's pace. A save of
        changes keeps the dict (``streams.core.changes``)."""
        if is_saving_changes():
            return vars(self)
        state = {k: v for k, v in vars(self).items() if k != "actors"}
        return {**state, "columns": _columns(self.actors)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "columns" in state:  # else a checkpoint from before the columns (``actors`` a dict)
            state["actors"] = _senders(state.pop("columns"))  # or of changes (``Senders``)
        if not isinstance(state["actors"], Senders):
            state["actors"] = Senders(state["actors"])
        vars(self).update(state)


def _columns(actors: dict[str, Sender]) -> dict[str, Any]:
    senders = actors.values()
    recent = [e for s in senders for e in s.recent]
    hours = [h for s in senders for h in s.hours.items()]
    times, ids = zip(*recent, strict=True) if recent else ((), ())
    starts, counts = zip(*hours, strict=True) if hours else ((), ())
    return {
        "names": list(actors),
        "tops": np.fromiter((s.top for s in senders), np.int64, len(actors)),
        "recent": np.fromiter(map(len, (s.recent for s in senders)), np.int64, len(actors)),
        "times": np.array(times, np.int64),
        "ids": list(ids),
        "hours": np.fromiter(map(len, (s.hours for s in senders)), np.int64, len(actors)),
        "starts": np.array(starts, np.int64),
        "counts": np.array(counts, np.int64),
    }


def _senders(c: dict[str, Any]) -> dict[str, Sender]:
    """``_columns`` back into one ``Sender`` per actor."""
    recent = list(zip(c["times"].tolist(), c["ids"], strict=True))
    hours = list(zip(c["starts"].tolist(), c["counts"].tolist(), strict=True))
    actors, at_event, at_hour = {}, 0, 0
    for name, top, n_events, n_hours in zip(c["names"], c["tops"].tolist(), c["recent"].tolist(),
                                            c["hours"].tolist(), strict=True):  # fmt: skip
        s = actors[name] = Sender()
        s.top = top
        s.recent = recent[at_event : at_event + n_events]
        s.hours = dict(hours[at_hour : at_hour + n_hours])
        at_event += n_events
        at_hour += n_hours
    return actors


class Senders(Tracked[str, Sender]):
    """The rule's senders, their changes saved as columns too."""

    __slots__ = ()
    pack, unpack = staticmethod(_columns), staticmethod(_senders)
