"""R2 link campaign: one canonical URL from ≥ 5 distinct actors within 1 h, addressed to others.

"Addressed to others": addressing events (REPLY, COMMENT, MENTION, MESSAGE; a SHARE re-broadcasts
and addresses nobody) to a target other than the actor, reaching ≥ 5 distinct targets in the
window: many people answering one popular account with a link to its own page is no campaign.
Every actor of the campaign is alerted (the rule's alerts name one actor each): those in the
window when it fires, and each one joining while it holds.
"""

from __future__ import annotations

from streams.core.changes import Tracked
from streams.core.spam.alerts import Alert, AlertLog, Evidence
from streams.core.spam.config import SpamConfig
from streams.core.spam.frame import Frame
from streams.core.spam.spans import Expiry, Packed, TrailingSet, expire_keys
from streams.core.windows import HOUR_MS, NO_TIME, window_start

RULE = "R2"
ALERT_WINDOW_MS = HOUR_MS


class Campaign(Packed):
    """One URL's actors and targets in the trailing window."""

    __slots__ = ("actors", "targets", "alerted")

    def __init__(self, window_ms: int) -> None:
        self.actors = TrailingSet(window_ms)
        self.targets = TrailingSet(window_ms)
        self.alerted = NO_TIME  # alert window in which every actor in the window was alerted

    @property
    def top(self) -> int:
        return self.actors.top


class LinkCampaignRule:
    """Per canonical URL: who sent it to whom in the trailing window."""

    rule = RULE
    keyed = ("urls",)

    def __init__(self, config: SpamConfig, log: AlertLog) -> None:
        self.window_ms = config.r2_window_ms
        self.min_actors = config.r2_min_actors
        self.min_targets = config.r2_min_targets
        self.samples = config.samples
        self.log = log
        self.urls: dict[str, Campaign] = Tracked()
        self._expiry = Expiry(self.window_ms)

    def process(self, frame: Frame) -> list[Alert]:
        b, ts, urls = frame.batch, frame.ts_list, frame.urls
        out: list[Alert] = []
        for k in frame.linking():
            row = int(frame.addressing[k])
            actor, t, eid = b.actor[row], ts[row], b.event_id[row]
            for url in urls[row]:
                c = self.urls.get(url)
                if c is None:
                    c = self.urls[url] = Campaign(self.window_ms)
                if c.actors.add(actor, t, eid) is None:
                    continue
                c.targets.add(b.target[row], t, eid)
                if len(c.actors) < self.min_actors or len(c.targets) < self.min_targets:
                    continue
                start = window_start(c.top, ALERT_WINDOW_MS)
                who = [actor] if c.alerted == start else list(c.actors.entries)
                c.alerted = start
                for a in who:
                    alert = self._alert(row, a, url, c)
                    if alert is not None:
                        out.append(alert)
        return out

    def _alert(self, row: int, actor: str, url: str, c: Campaign) -> Alert | None:
        n, m = len(c.actors), len(c.targets)
        own = c.actors.entries[actor].event_id
        others = [e for e in c.actors.sample(self.samples) if e != own]
        evidence = Evidence(
            {"actors": n, "targets": m},
            (own, *others[: self.samples - 1]),
            f"actors {n} >= {self.min_actors}; targets {m} >= {self.min_targets}",
            url=url,
        )
        return self.log.emit(
            row, RULE, actor, c.top, ALERT_WINDOW_MS, evidence, c.actors.first_seen(), c.top
        )

    def expire(self, now: int) -> None:
        if self._expiry.due(now):
            expire_keys(self.urls, now - self.window_ms)

    def state_size(self) -> int:
        return sum(len(c.actors) + len(c.targets) for c in self.urls.values()) + len(self.urls)
