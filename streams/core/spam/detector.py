"""The spam detector: the enabled rules over one partition's events, and who is flagged.

``process`` takes a batch of events (dicts or an ``EventBatch``) in arrival order and returns
the alerts it raised, in stream order. Every rule judges events one by one in that order (with
numpy doing the per-batch work), and late events (older than stream time − lateness on arrival)
are left out, so the alerts never depend on how the stream is cut into batches. State is bounded
by stream time: windows expire as event time moves on (whole keys are dropped every hour of
stream time).

A detector pickles whole (its checkpoint). An ``AccountIndex`` shared with other stages in the
same process saves numbering accounts twice; pickle them together so they stay shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from streams.core.batch import AccountIndex, EventBatch, as_batch
from streams.core.spam.alerts import Alert, AlertLog
from streams.core.spam.config import SpamConfig
from streams.core.spam.contacts import ContactMemory
from streams.core.spam.frame import Frame
from streams.core.spam.r1_same_link import SameLinkRule
from streams.core.spam.r2_link_campaign import LinkCampaignRule
from streams.core.spam.r3_near_duplicate import NearDuplicateRule
from streams.core.spam.r4_follow import FollowSpamRule
from streams.core.spam.r5_pitch import PitchRule
from streams.core.spam.r6_cadence import CadenceRule
from streams.core.spam.r7_burst import BurstRule
from streams.core.spam.r8_profile import ProfileRule
from streams.core.windows import HOUR_MS, NO_TIME, Event

EXPIRE_EVERY_MS = HOUR_MS
_NEEDS_CONTACTS = frozenset({"R1", "R5"})


class Rule(Protocol):
    rule: str

    @property
    def keyed(self) -> tuple[str, ...]:
        """Attributes holding per-key dicts (``Tracked``: saved by their changes)."""

    def process(self, frame: Frame) -> list[Alert]: ...

    def expire(self, now: int) -> None: ...

    def state_size(self) -> int: ...


RULE_TYPES: dict[str, Callable[[SpamConfig, AlertLog], Rule]] = {
    "R1": SameLinkRule, "R2": LinkCampaignRule, "R3": NearDuplicateRule, "R4": FollowSpamRule,
    "R5": PitchRule, "R6": CadenceRule, "R7": BurstRule, "R8": ProfileRule,
}  # fmt: skip


class SpamDetector:
    """The rules of ``config.enabled`` (METRICS.md "Spam rules"), with shared contact memory,
    alert log (one alert per rule, actor and window)."""

    def __init__(
        self, config: SpamConfig | None = None, accounts: AccountIndex | None = None
    ) -> None:
        self.config = config if config is not None else SpamConfig()
        self.accounts = accounts if accounts is not None else AccountIndex()
        self.log = AlertLog(dict(self.config.severity))
        self.rules: list[Rule] = [
            RULE_TYPES[r](self.config, self.log) for r in sorted(self.config.enabled)
        ]
        self.profiles: ProfileRule | None = next(
            (r for r in self.rules if isinstance(r, ProfileRule)), None
        )
        self.contacts = (
            ContactMemory(self.config.contact_horizon_ms)
            if _NEEDS_CONTACTS & set(self.config.enabled)
            else None
        )
        self.stream_time = NO_TIME
        self.late = 0  # events left out for arriving too late
        self._next_expiry = NO_TIME

    def process(self, events: Sequence[Event] | EventBatch) -> list[Alert]:
        """Judge a batch of events (arrival order); the alerts raised, in stream order."""
        b = as_batch(events, self.accounts)
        if not len(b):
            return []
        frame = Frame(b, self.accounts, self.stream_time, self.config.lateness_ms)
        self.stream_time = frame.stream_time
        self.late += frame.late
        if self.contacts is not None:
            self.contacts.scan(frame)
        for rule in self.rules:
            rule.process(frame)
        return self._settle()

    def observe_snapshots(self, snapshots: Iterable[Mapping[str, Any]]) -> list[Alert]:
        """Judge account snapshots for the profile signature (R8), in order."""
        if self.profiles is None:
            return []
        self.profiles.observe(snapshots)
        return self._settle()

    def state_size(self) -> dict[str, int]:
        """Entries held, per part: a measure of memory that must stay bounded by stream time."""
        sizes = {r.rule: r.state_size() for r in self.rules}
        if self.contacts is not None:
            sizes["contacts"] = len(self.contacts)
        sizes["alerts"] = len(self.log.raised)
        return sizes

    def _settle(self) -> list[Alert]:
        alerts = self.log.take()
        if self.stream_time >= self._next_expiry:
            self._next_expiry = self.stream_time + EXPIRE_EVERY_MS
            self._expire(self.stream_time - self.config.lateness_ms)
        return alerts

    def _expire(self, now: int) -> None:
        """Drop what no event accepted from now on can touch (``now``: stream time − lateness)."""
        for rule in self.rules:
            rule.expire(now)
        if self.contacts is not None:
            self.contacts.expire(now)
        self.log.expire(now)
