"""R4 follow spam: ≥ 100 FOLLOWs in 24 h by an actor with ≤ 30 followers, or > 400 FOLLOWs in
24 h, or ≥ 50 follow→unfollow of the same target within 48 h (churn).

The actor's follower count is the one carried by its FOLLOW events (the latest in the window
that carries one); without any, only the > 400 variant applies. A churn is an UNFOLLOW of a
target the actor FOLLOWed less than 48 h before (each FOLLOW ends at most one churn); the rule
counts churns whose UNFOLLOW falls in the trailing 48 h. Follow counts only need the latest 401
FOLLOWs, so no more are kept, however fast an account follows.
"""

from __future__ import annotations

from streams.core.changes import Tracked
from streams.core.spam.alerts import Alert, AlertLog, Evidence
from streams.core.spam.config import SpamConfig
from streams.core.spam.frame import Frame
from streams.core.spam.spans import Expiry, Packed, TrailingSet, expire_keys
from streams.core.windows import DAY_MS, HOUR_MS, NO_TIME

RULE = "R4"
ALERT_WINDOW_MS = DAY_MS
_FOLLOW_KINDS = frozenset({"FOLLOW", "UNFOLLOW"})


class Follower(Packed):
    """One actor's recent FOLLOWs (by event id), open follows (by target) and churns."""

    __slots__ = ("follows", "open", "churns", "followers")

    def __init__(self, config: SpamConfig) -> None:
        cap = max(config.r4_min_follows, config.r4_max_follows + 1)
        self.follows = TrailingSet(config.r4_window_ms, cap)
        self.open = TrailingSet(config.r4_churn_window_ms)
        self.churns: TrailingSet | None = None  # made by the first churn: most never churn
        self.followers: tuple[int, int] | None = None  # (ts, count) last carried by a FOLLOW

    @property
    def top(self) -> int:
        return max(
            self.follows.top, self.open.top, NO_TIME if self.churns is None else self.churns.top
        )


class FollowSpamRule:
    """Per actor: follow counts and follow→unfollow churn in trailing windows."""

    rule = RULE
    keyed = ("actors",)

    def __init__(self, config: SpamConfig, log: AlertLog) -> None:
        self.config = config
        self.log = log
        self.actors: dict[str, Follower] = Tracked()
        self.keep_ms = max(config.r4_window_ms, config.r4_churn_window_ms)
        self._expiry = Expiry(self.keep_ms)

    def process(self, frame: Frame) -> list[Alert]:
        b, ts = frame.batch, frame.ts_list
        rows = frame.rows(_FOLLOW_KINDS)
        followers = b.field("followers", rows)
        out: list[Alert] = []
        for i, row in enumerate(rows.tolist()):
            actor, t, eid = b.actor[row], ts[row], b.event_id[row]
            f = self.actors.get(actor)
            if f is None:
                f = self.actors[actor] = Follower(self.config)
            if b.kind[row] == "FOLLOW":
                if followers[i] is not None:
                    f.followers = (t, int(followers[i]))
                f.open.add(b.target[row], t, eid)
                if f.follows.add(eid, t, eid) is None:
                    continue
                alert = self._follows(row, actor, f)
            else:
                alert = self._unfollow(row, actor, f, b.target[row], t, eid)
            if alert is not None:
                out.append(alert)
        return out

    def _follows(self, row: int, actor: str, f: Follower) -> Alert | None:
        c = self.config
        n, followers = len(f.follows), None
        if f.followers is not None and f.followers[0] > f.follows.top - c.r4_window_ms:
            followers = f.followers[1]
        if n > c.r4_max_follows:
            detail = f"follows {n} > {c.r4_max_follows} in {c.r4_window_ms // HOUR_MS} h"
        elif n >= c.r4_min_follows and followers is not None and followers <= c.r4_max_followers:
            detail = (
                f"follows {n} >= {c.r4_min_follows} in {c.r4_window_ms // HOUR_MS} h; "
                f"followers {followers} <= {c.r4_max_followers}"
            )
        else:
            return None
        counts = {"follows": n} if followers is None else {"follows": n, "followers": followers}
        return self._emit(row, actor, f.follows, counts, detail)

    def _unfollow(
        self, row: int, actor: str, f: Follower, target: str | None, t: int, eid: str
    ) -> Alert | None:
        c = self.config
        opened = f.open.entries.get(target)
        if opened is None or not t - c.r4_churn_window_ms < opened.ts <= t:
            return None
        f.open.remove(target)
        if f.churns is None:
            f.churns = TrailingSet(c.r4_churn_window_ms, c.r4_min_churns)
        if f.churns.add(eid, t, eid) is None or len(f.churns) < c.r4_min_churns:
            return None
        n = len(f.churns)
        detail = f"follow->unfollow {n} >= {c.r4_min_churns} in {c.r4_churn_window_ms // HOUR_MS} h"
        return self._emit(row, actor, f.churns, {"churns": n}, detail)

    def _emit(
        self, row: int, actor: str, events: TrailingSet, counts: dict[str, int], detail: str
    ) -> Alert | None:
        evidence = Evidence(counts, events.sample(self.config.samples), detail)
        return self.log.emit(
            row, RULE, actor, events.top, ALERT_WINDOW_MS, evidence, events.first_seen(), events.top
        )

    def expire(self, now: int) -> None:
        if self._expiry.due(now):
            expire_keys(self.actors, now - self.keep_ms)

    def state_size(self) -> int:
        return len(self.actors) + sum(
            len(f.follows) + len(f.open) + len(f.churns or ()) for f in self.actors.values()
        )
