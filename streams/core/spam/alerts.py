"""Spam alerts (METRICS.md, "alert"), their Avro form (``schemas/alert.avsc``) and the log that
keeps each (rule, actor, window) to one alert.

An alert is raised once, by the event that made its rule's condition true; its evidence is what
the rule saw at that moment, so replaying a stream, however cut into batches, raises the same
alerts with the same evidence. ``window_start``/``window_end`` are the epoch-aligned window
(1 h or 1 d, per rule) holding that moment; ``first_seen``/``last_seen`` bound the evidence's
events, which may begin in the previous window (rules look at trailing windows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.core.windows import window_bounds, window_start

TEXT_SAMPLE_CHARS = 280


def alert_id(rule: str, actor: str, window_start: int) -> str:
    """Deterministic id of the one alert of (rule, actor, window): 32 hex digits."""
    key = f"{rule}\x1f{actor}\x1f{window_start}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Evidence:
    """What made the rule fire: counts, up to ``SpamConfig.samples`` event ids, the URL or a text
    sample, and ``detail``: the thresholds crossed, e.g. ``targets 10 >= 10; new share 0.90 >=
    0.80``."""

    counts: Mapping[str, int]
    sample_event_ids: tuple[str, ...]
    detail: str
    url: str | None = None
    text_sample: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts), "sample_event_ids": list(self.sample_event_ids),
            "url": self.url,
            "text_sample": None if self.text_sample is None
            else self.text_sample[:TEXT_SAMPLE_CHARS],
            "detail": self.detail,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Alert:
    """One spam alert; ``severity`` is "low", "medium" or "high" (``SpamConfig.severity``)."""

    alert_id: str
    rule: str
    actor: str
    severity: str
    window_start: int
    window_end: int
    evidence: Evidence
    first_seen: int
    last_seen: int

    def to_record(self) -> dict[str, Any]:
        """The Avro record (``schemas/alert.avsc``: severity as its enum symbol, LOW … HIGH)."""
        return {
            "alert_id": self.alert_id, "rule": self.rule, "actor": self.actor,
            "severity": self.severity.upper(), "window_start": self.window_start,
            "window_end": self.window_end, "evidence": self.evidence.to_record(),
            "first_seen": self.first_seen, "last_seen": self.last_seen,
        }  # fmt: skip


@dataclass
class AlertLog:
    """Raises alerts for the rules: at most one per (rule, actor, window), remembered until no
    accepted event can fall in that window any more (stream time ≥ window end + lateness).

    Rules emit in the order of the events that fired them; ``take`` hands a batch's alerts over
    sorted by (event position, rule, actor), so they come out in stream order.
    """

    severity: Mapping[str, str]
    raised: dict[str, int] = field(default_factory=dict)  # alert_id -> window end
    _pending: list[tuple[int, str, str, Alert]] = field(default_factory=list)

    def emit(
        self,
        pos: int,
        rule: str,
        actor: str,
        at: int,
        window_ms: int,
        evidence: Evidence,
        first_seen: int,
        last_seen: int,
    ) -> Alert | None:
        """The alert of ``rule`` for ``actor`` in the ``window_ms`` window holding ``at``, or
        None when that one was raised already. ``pos``: the firing event's row in the batch."""
        start, end = window_bounds(at, window_ms)
        aid = alert_id(rule, actor, start)
        if aid in self.raised:
            return None
        self.raised[aid] = end
        alert = Alert(
            aid, rule, actor, self.severity[rule], start, end, evidence, first_seen, last_seen
        )
        self._pending.append((pos, rule, actor, alert))
        return alert

    def raised_for(self, rule: str, actor: str, at: int, window_ms: int) -> bool:
        """Whether the alert of (rule, actor, the window holding ``at``) was raised already."""
        return alert_id(rule, actor, window_start(at, window_ms)) in self.raised

    def take(self) -> list[Alert]:
        """Alerts emitted since the last call, in stream order."""
        pending, self._pending = self._pending, []
        pending.sort(key=_order)
        return [p[3] for p in pending]

    def expire(self, now: int) -> None:
        """Forget alerts whose window ended at or before ``now`` (no accepted event can fall in
        it: callers pass stream time − lateness)."""
        self.raised = {a: end for a, end in self.raised.items() if end > now}


def _order(p: tuple[int, str, str, Alert]) -> tuple[int, str, str]:
    return p[0], p[1], p[2]
