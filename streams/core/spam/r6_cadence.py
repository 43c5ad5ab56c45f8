"""R6 automation cadence: ≥ 50 posts whose inter-post gaps have coefficient of variation < 0.1,
or a sustained rate above a configured cap.

Posts are POST events. Cadence: when an actor has ≥ 50 POSTs in the trailing 12 h, the gaps
between its latest 50 (in time order) are checked: population standard deviation / mean < 0.1.
The 12 h window is what separates a scheduler from a bot: a news account posting every 30 min
(24 in 12 h) never gets there, a bot every 5 min does after about 4 h; an account needs a mean gap
under 14.4 min to be judged at all. Rate: more than 120 POSTs in each of the 3 consecutive
trailing hours (the hours ending at the actor's latest post).
"""

from __future__ import annotations

import numpy as np

from streams.core.changes import Tracked
from streams.core.spam.alerts import Alert, AlertLog, Evidence
from streams.core.spam.config import SpamConfig
from streams.core.spam.frame import Frame
from streams.core.spam.spans import Expiry, Packed, expire_keys
from streams.core.windows import DAY_MS, HOUR_MS, NO_TIME

RULE = "R6"
ALERT_WINDOW_MS = DAY_MS
_POST = frozenset({"POST"})


class Posts(Packed):
    """One actor's POSTs (time, event id) in the longest trailing window, in arrival order."""

    __slots__ = ("top", "ts", "event_ids")

    def __init__(self) -> None:
        self.top = NO_TIME
        self.ts: list[int] = []
        self.event_ids: list[str] = []


class CadenceRule:
    """Per actor: recent POST times, judged for clockwork gaps and sustained rate."""

    rule = RULE
    keyed = ("actors",)

    def __init__(self, config: SpamConfig, log: AlertLog) -> None:
        self.window_ms = config.r6_window_ms
        self.min_posts = config.r6_min_posts
        self.max_cv = config.r6_max_cv
        self.cap = config.r6_max_posts_per_hour
        self.rate_hours = config.r6_rate_hours
        self.keep_ms = max(self.window_ms, self.rate_hours * HOUR_MS)
        self.least = min(self.min_posts, (self.cap + 1) * self.rate_hours)
        self.samples = config.samples
        self.log = log
        self.actors: dict[str, Posts] = Tracked()
        self._expiry = Expiry(self.keep_ms)

    def process(self, frame: Frame) -> list[Alert]:
        b, ts = frame.batch, frame.ts_list
        out: list[Alert] = []
        for row in frame.rows(_POST, directed=False).tolist():
            actor, t = b.actor[row], ts[row]
            p = self.actors.get(actor)
            if p is None:
                p = self.actors[actor] = Posts()
            elif t <= p.top - self.keep_ms:
                continue
            p.top = max(p.top, t)
            p.ts.append(t)
            p.event_ids.append(b.event_id[row])
            if len(p.ts) >= self.least and not self.log.raised_for(
                RULE, actor, p.top, ALERT_WINDOW_MS
            ):
                alert = self._judge(row, actor, p)
                if alert is not None:
                    out.append(alert)
        return out

    def _judge(self, row: int, actor: str, p: Posts) -> Alert | None:
        ts = np.asarray(p.ts, np.int64)
        live = ts > p.top - self.keep_ms
        if not live.all():
            keep = np.flatnonzero(live).tolist()
            p.ts = [p.ts[i] for i in keep]
            p.event_ids = [p.event_ids[i] for i in keep]
            ts = ts[live]
        order = np.lexsort((np.asarray(p.event_ids), ts))
        ts = ts[order]
        found = self._cadence(ts, p.top) or self._rate(ts, p.top)
        if found is None:
            return None
        first, counts, detail = found
        picked = order[first:].tolist()
        evidence = Evidence(counts, tuple(p.event_ids[i] for i in picked[: self.samples]), detail)
        return self.log.emit(
            row, RULE, actor, p.top, ALERT_WINDOW_MS, evidence, int(ts[first]), p.top
        )

    def _cadence(self, ts: np.ndarray, top: int) -> tuple[int, dict[str, int], str] | None:
        """(index of the first post judged, counts, detail) when the latest posts are clockwork."""
        n = len(ts)
        first = n - self.min_posts
        if first < 0 or ts[first] <= top - self.window_ms:
            return None
        gaps = np.diff(ts[first:])
        mean = float(gaps.mean())
        cv = float(gaps.std()) / mean if mean > 0 else 0.0
        if cv >= self.max_cv:
            return None
        span = int(ts[-1] - ts[first])
        return (
            first,
            {"posts": self.min_posts, "span_ms": span, "mean_gap_ms": round(mean)},
            (
                f"gap CV {cv:.3f} < {self.max_cv} over the latest {self.min_posts} posts in "
                f"{self.window_ms // HOUR_MS} h"
            ),
        )

    def _rate(self, ts: np.ndarray, top: int) -> tuple[int, dict[str, int], str] | None:
        """(index of the first post counted, counts, detail) when every trailing hour is over
        the cap."""
        edges = top - HOUR_MS * np.arange(self.rate_hours + 1, dtype=np.int64)[::-1]
        per_hour = np.diff(np.searchsorted(ts, edges, side="right"))
        if per_hour.min() <= self.cap:
            return None
        first = int(np.searchsorted(ts, edges[0], side="right"))
        counts = {f"posts_hour_{i + 1}": int(c) for i, c in enumerate(per_hour.tolist())}
        return (
            first,
            counts,
            (f"posts per hour {per_hour.tolist()} > {self.cap} for {self.rate_hours} h"),
        )

    def expire(self, now: int) -> None:
        if self._expiry.due(now):
            expire_keys(self.actors, now - self.keep_ms)

    def state_size(self) -> int:
        return len(self.actors) + sum(len(p.ts) for p in self.actors.values())
