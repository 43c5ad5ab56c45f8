"""R8 profile signature: following ≥ 300 and followers ≤ 30, or following ≥ 10 × followers with
following ≥ 1,000 — the "follows 700, nobody follows back" account, flagged at first sight.

Profiles come from account snapshots and from the actor's profile counts carried on events.
An account is flagged once, ever: the alert's window is the day of the first matching sighting.
The flagged accounts are remembered for good, like the ``AccountIndex``: memory bounded by the
number of (flagged) accounts rather than by time, which keeps "once" exact whatever the order of
snapshots and events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import repeat
from operator import is_not
from typing import Any

import numpy as np

from streams.core.batch import I64, Bools
from streams.core.spam.alerts import Alert, AlertLog, Evidence
from streams.core.spam.config import SpamConfig
from streams.core.spam.frame import Frame
from streams.core.windows import DAY_MS

RULE = "R8"
ALERT_WINDOW_MS = DAY_MS


class ProfileRule:
    """Accounts flagged for their profile."""

    rule = RULE
    keyed = ()

    def __init__(self, config: SpamConfig, log: AlertLog) -> None:
        self.config = config
        self.log = log
        self.flagged: set[str] = set()

    def matches(self, followers: I64, following: I64) -> Bools:
        """Which (followers, following) pairs carry the signature."""
        c = self.config
        few = (following >= c.r8_min_following) & (followers <= c.r8_max_followers)
        ratio = (following >= c.r8_ratio * followers) & (following >= c.r8_ratio_min_following)
        return few | ratio

    def process(self, frame: Frame) -> list[Alert]:
        b = frame.batch
        col_f, any_f = b.column("followers")
        col_g, any_g = b.column("following")
        if not (any_f and any_g):
            return []
        known = frame.accepted.copy()
        known &= np.fromiter(map(is_not, col_f, repeat(None)), np.bool_, len(col_f))
        known &= np.fromiter(map(is_not, col_g, repeat(None)), np.bool_, len(col_g))
        rows = np.flatnonzero(known)
        if not len(rows):
            return []
        followers = col_f[rows].astype(np.int64)
        following = col_g[rows].astype(np.int64)
        hit = np.flatnonzero(self.matches(followers, following))
        posts = b.field("posts", rows[hit])
        out: list[Alert] = []
        for j, i in enumerate(hit.tolist()):
            row = int(rows[i])
            alert = self._sighting(
                row,
                b.actor[row],
                frame.ts_list[row],
                b.event_id[row],
                int(followers[i]),
                int(following[i]),
                posts[j],
            )
            if alert is not None:
                out.append(alert)
        return out

    def observe(self, snapshots: Iterable[Mapping[str, Any]]) -> list[Alert]:
        """Judge account snapshots (``schemas/snapshot.avsc`` records), in order."""
        snaps = [
            s
            for s in snapshots
            if s.get("followers") is not None and s.get("following") is not None
        ]
        if not snaps:
            return []
        followers = np.fromiter((s["followers"] for s in snaps), np.int64, len(snaps))
        following = np.fromiter((s["following"] for s in snaps), np.int64, len(snaps))
        out: list[Alert] = []
        for i in np.flatnonzero(self.matches(followers, following)).tolist():
            s = snaps[i]
            alert = self._sighting(
                i,
                str(s["account"]),
                int(s["ts"]),
                str(s.get("snapshot_id") or ""),
                int(followers[i]),
                int(following[i]),
                s.get("posts"),
            )
            if alert is not None:
                out.append(alert)
        return out

    def _sighting(
        self,
        pos: int,
        account: str,
        ts: int,
        source_id: str,
        followers: int,
        following: int,
        posts: int | None,
    ) -> Alert | None:
        if account in self.flagged:
            return None
        self.flagged.add(account)
        c = self.config
        if following >= c.r8_min_following and followers <= c.r8_max_followers:
            detail = (
                f"following {following} >= {c.r8_min_following}; followers {followers} "
                f"<= {c.r8_max_followers}"
            )
        else:
            detail = (
                f"following {following} >= {c.r8_ratio:g} x followers {followers}; "
                f"following >= {c.r8_ratio_min_following}"
            )
        counts = {"followers": followers, "following": following}
        if posts is not None:
            counts["posts"] = int(posts)
        evidence = Evidence(counts, (source_id,) if source_id else (), detail)
        return self.log.emit(pos, RULE, account, ts, ALERT_WINDOW_MS, evidence, ts, ts)

    def expire(self, now: int) -> None:
        """Nothing expires: an account is flagged once."""

    def state_size(self) -> int:
        return len(self.flagged)
