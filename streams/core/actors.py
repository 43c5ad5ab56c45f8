"""Spam rules over one by-actor partition.

Interactions arrive keyed by the account pair (reply matching needs both directions of a
conversation together), so one actor's events are spread over every partition. The worker
re-keys them into the ``by-actor`` topic (``route``): every event to its actor's partition, and
each event with links to the partition of each canonical URL (rule R2 counts actors per URL).
An ``ActorEngine`` per partition of that topic thus sees each of its actors' whole stream, and
each of its URLs' every use, however many partitions and workers there are.

Its input merges every source partition, each at its own pace (a replay or a lagging worker can
put one source hours ahead of another), and the rules drop events that arrive later than their
lateness allowance. So each routed message carries its source partition and a watermark (the
source's newest event time; end of input: infinity, until the source gets events again), and
events are held until they are at most half the allowance ahead of the slowest source, then
judged in (time, id) order: however the sources interleave, nothing arrives too late, and in
a live stream (sources within seconds of each other) nothing waits. A source that receives
nothing holds the others back (an end-of-input marker releases it).
One batch of a source reaches a partition as up to two messages (its actor events, then its
link events): only the last carries the watermark, the one before says ``NO_NEWS``. Were the
watermark on the first, a consumer that takes the two in separate calls (Faust cuts its
batches anywhere) would move the source on before the link events of the batch arrived, and
judge them late, so the alerts would depend on where the batches were cut.
Events can arrive twice (a replay re-sends what the crashed run had sent, a file is published
twice): repeated ids are dropped as they are released, remembered for the rules' lateness
allowance only — an older repeat is late for the rules anyway (they judge the events released in
the same order, against the same stream time), so remembering ids for days (the partition
engines' horizon) would only grow the checkpoint. Profile alerts (R8) come from snapshots,
elsewhere. Checkpoints pickle it whole, or only the rules' keys changed since the last save
(``tracked``, ``streams.core.changes``) with the rest whole.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from dataclasses import replace
from itertools import repeat
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from streams.core.batch import AccountIndex
from streams.core.changes import Trackable, Tracked, TracksChanges
from streams.core.dedupe import SeenIds
from streams.core.engine import EngineConfig
from streams.core.spam import Alert, SpamDetector
from streams.core.spam.urls import canonical_url
from streams.core.windows import NO_TIME, Event

Route = Literal["actor", "link"]
END = 2**62  # the watermark of a source that ended (end-of-input marker)
NO_NEWS = NO_TIME  # the watermark of a message that more of the same batch follows: moves nothing
LINK_RULES = frozenset({"R2"})  # judged per URL; the rest (but R8) per actor
_TS, _ID, _TS_OF_HELD = itemgetter("ts"), itemgetter("event_id"), itemgetter(0)


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def route(events: list[Event], partitions: int) -> dict[tuple[int, Route], list[Event]]:
    """Events per (by-actor partition, route): each to its actor's partition; each with links
    also to each URL's partition, carrying only the links that partition owns."""
    out: dict[tuple[int, Route], list[Event]] = {}
    for e in events:
        out.setdefault((partition_of(e["actor"], partitions), "actor"), []).append(e)
        urls = e["urls"]
        if urls:
            owned: dict[int, list[str]] = {}
            for url in urls:
                owned.setdefault(partition_of(canonical_url(url), partitions), []).append(url)
            for q, mine in owned.items():
                copy = e if len(owned) == 1 else {**e, "urls": mine}
                out.setdefault((q, "link"), []).append(copy)
    return out


def _seen_ids(lateness_ms: int) -> dict[Route, SeenIds]:
    """Per route, ids remembered for the rules' lateness (an older repeat is late anyway)."""
    return {r: SeenIds(lateness_ms, max(1, lateness_ms)) for r in ("actor", "link")}


class Routed(NamedTuple):
    """One by-actor message: events of one route from one source partition, and how far that
    source has got in event time (``NO_NEWS``: the batch goes on in the next message)."""

    route: Route
    source: int
    watermark: int
    events: list[Event]


class ActorEngine(TracksChanges):
    """The event rules (R1–R7 as enabled) over one partition of the ``by-actor`` topic."""

    def __init__(
        self, config: EngineConfig, topic: str = "", partition: int = 0, sources: int = 1
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = -1  # last Kafka offset folded in: set by the caller, kept in checkpoints
        self.marks = [NO_TIME] * sources  # watermark per source partition
        self.lead_ms = config.spam.lateness_ms // 2  # how far ahead of the slowest source
        # sorted by (ts, event id, arrival number): repeats stay apart until released (then
        # the first to arrive counts), and two events are never compared themselves
        self.held: list[tuple[int, str, int, Route, Event]] = []
        self.arrived = 0
        self.accounts = AccountIndex()
        enabled = set(config.spam.enabled) - {"R8"}
        self.seen = _seen_ids(config.spam.lateness_ms)
        self.detectors = {
            r: SpamDetector(replace(config.spam, enabled=tuple(sorted(rules))), self.accounts)
            for r, rules in (("actor", enabled - LINK_RULES), ("link", enabled & LINK_RULES))
        }

    def process(self, messages: list[Routed]) -> list[Alert]:
        """Take messages in offset order; judge what every source has passed; the alerts."""
        held = self.held
        before = len(held)
        for m in messages:
            mark = self.marks[m.source]
            # a source that ended and starts again (another file) counts from its new events
            # (from none yet, until the message that ends their batch: NO_NEWS is NO_TIME)
            resumed = mark == END and m.watermark != END and bool(m.events)
            self.marks[m.source] = m.watermark if resumed else max(mark, m.watermark)
            n = self.arrived
            held.extend(zip(map(_TS, m.events), map(_ID, m.events), range(n, n + len(m.events)),
                            repeat(m.route), m.events))  # fmt: skip
            self.arrived += len(m.events)
        if len(held) > before:
            held.sort()  # sorted runs (what was held, each message's mostly in order): merged
        frontier = min(self.marks) + self.lead_ms
        released = bisect_right(held, frontier, key=_TS_OF_HELD)
        due: dict[Route, list[Event]] = {"actor": [], "link": []}
        for item in held[:released]:
            due[item[3]].append(item[4])
        del held[:released]
        alerts: list[Alert] = []
        for r, events in due.items():
            if events:
                alerts.extend(self.detectors[r].process(self.seen[r].fresh(events)))
        return alerts

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "arrived" not in state:  # repeats were dropped on arrival, for days: the held
            # events are in those sets already, so start sets for dropping on release
            state["seen"] = _seen_ids(state["lead_ms"] * 2)
            state["held"] = [(ts, i, n, r, e) for n, (ts, i, r, e) in enumerate(state["held"])]
            state["arrived"] = len(state["held"])
        state["held"].sort()  # saved as a heap before sorted lists
        vars(self).update(state)

    def tracked(self) -> dict[str, Trackable]:
        """The per-key parts, by route and rule and attribute: the rules' per-key dicts (those
        loaded as plain dicts, from columns or older checkpoints, become tracked dicts), the
        contact times, the ids seen."""
        out: dict[str, Trackable] = {f"{r}/seen": seen.ids for r, seen in self.seen.items()}
        for r, detector in self.detectors.items():
            for rule in detector.rules:
                for attr in rule.keyed:
                    d = getattr(rule, attr)
                    if not isinstance(d, Tracked):
                        d = Tracked(d)
                        setattr(rule, attr, d)
                    out[f"{r}/{rule.rule}/{attr}"] = d
            if detector.contacts is not None:
                out[f"{r}/contacts"] = detector.contacts.last
        return out

    def state_size(self) -> dict[str, int]:
        return {
            "event_ids": sum(map(len, self.seen.values())),
            "held": len(self.held),
            **{f"{r}_{k}": v for r, d in self.detectors.items() for k, v in d.state_size().items()},
        }
