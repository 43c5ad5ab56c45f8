"""R1 same link to many: one actor sends one canonical URL to ≥ 10 distinct addressed targets
within 1 h, ≥ 80% of them with no prior interaction with the actor.

Targets are those of addressing events (REPLY, COMMENT, MENTION, MESSAGE) carrying the URL. A
target is new when the actor had no contact with it (``ContactMemory``: an interaction either
way, or the target following the actor, within 30 days) before the first message of the window
that carried the URL to it. A newsletter whose subscribers follow it, or one that wrote to them
before, is therefore not spamming strangers.
"""

from __future__ import annotations

from streams.core.changes import Tracked
from streams.core.spam.alerts import Alert, AlertLog, Evidence
from streams.core.spam.config import SpamConfig
from streams.core.spam.frame import Frame
from streams.core.spam.spans import Expiry, TrailingSet, expire_keys
from streams.core.windows import HOUR_MS

RULE = "R1"
ALERT_WINDOW_MS = HOUR_MS


class SameLinkRule:
    """Per (actor, canonical URL): the targets addressed with it in the trailing window."""

    rule = RULE
    keyed = ("keys",)

    def __init__(self, config: SpamConfig, log: AlertLog) -> None:
        self.window_ms = config.r1_window_ms
        self.min_targets = config.r1_min_targets
        self.min_new_share = config.r1_min_new_share
        self.contact_horizon_ms = config.contact_horizon_ms
        self.samples = config.samples
        self.log = log
        self.keys: dict[tuple[str, str], TrailingSet] = Tracked()
        self._expiry = Expiry(self.window_ms)

    def process(self, frame: Frame) -> list[Alert]:
        b, ts, urls = frame.batch, frame.ts_list, frame.urls
        out: list[Alert] = []
        for k in frame.linking():
            row = int(frame.addressing[k])
            actor, target, t = b.actor[row], b.target[row], ts[row]
            new = int(frame.prior[k]) < t - self.contact_horizon_ms
            for url in urls[row]:
                targets = self.keys.get((actor, url))
                if targets is None:
                    targets = self.keys[actor, url] = TrailingSet(self.window_ms)
                if targets.add(target, t, b.event_id[row], mark=new) is None:
                    continue
                alert = self._judge(row, actor, url, targets)
                if alert is not None:
                    out.append(alert)
        return out

    def _judge(self, row: int, actor: str, url: str, targets: TrailingSet) -> Alert | None:
        n, new = len(targets), targets.marked
        if n < self.min_targets or new / n < self.min_new_share:
            return None
        evidence = Evidence(
            {"targets": n, "new_targets": new},
            targets.sample(self.samples),
            f"targets {n} >= {self.min_targets}; new share {new / n:.2f} >= "
            f"{self.min_new_share:.2f}",
            url=url,
        )
        return self.log.emit(
            row,
            RULE,
            actor,
            targets.top,
            ALERT_WINDOW_MS,
            evidence,
            targets.first_seen(),
            targets.top,
        )

    def expire(self, now: int) -> None:
        if self._expiry.due(now):
            expire_keys(self.keys, now - self.window_ms)

    def state_size(self) -> int:
        return sum(len(s) for s in self.keys.values()) + len(self.keys)
