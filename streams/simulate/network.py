"""The simulated network end to end: population, behaviours, spammers, events and ground truth.

``simulate(accounts, days, seed)`` is deterministic: the same arguments give the same events
(ids ``sim:<seed>:<n>`` in time order), snapshots and labels, whatever the clock says; the run
starts on a fixed day (``DEFAULT_START_MS``, 2026-01-05T00:00Z) unless told otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.core.tiers import follower_tier
from streams.core.windows import DAY_MS
from streams.simulate import behaviours, population, spammers
from streams.simulate.population import HARD_NEGATIVES, ROLES, SPAM_RULE, Population
from streams.simulate.table import PLATFORM, EventTable, Timeline, finish

Event = dict[str, Any]
DEFAULT_START_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
RULES: tuple[str, ...] = ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8")


@dataclass
class Simulation:
    """One simulated run: events in time order, snapshots at the start, and ground truth.

    ``labels`` maps every account to its role; ``spammers_by_rule`` maps each rule to the
    accounts it should flag (by the METRICS.md definition over these events: R5 holds the
    R1 link repliers too, see ``designed_by_rule``); ``clusters`` the community members'
    cluster; ``subscribers`` the newsletter's subscribers.
    """

    accounts: int
    days: float
    seed: int
    start_ms: int
    end_ms: int
    events: list[Event]
    snapshots: list[Event]
    labels: dict[str, str]
    spammers_by_rule: dict[str, set[str]]
    clusters: dict[str, int] = field(default_factory=dict)
    subscribers: list[str] = field(default_factory=list)
    hard_negatives: dict[str, str] = field(default_factory=dict)

    def accounts_with_role(self, *roles: str) -> list[str]:
        return sorted(a for a, r in self.labels.items() if r in roles)

    @property
    def designed_by_rule(self) -> dict[str, set[str]]:
        """The spammers each rule was built for, by type alone (R5: only the pitchers)."""
        out: dict[str, set[str]] = {r: set() for r in RULES}
        for account, role in self.labels.items():
            if role in SPAM_RULE:
                out[SPAM_RULE[role]].add(account)
        return {r: out[r] & self.spammers_by_rule[r] for r in RULES}

    def rules_of(self, account: str) -> list[str]:
        """The rules that should flag ``account`` (none for a normal account)."""
        return [r for r in RULES if account in self.spammers_by_rule[r]]

    def summary(self) -> dict[str, Any]:
        """Counts: accounts per role and tier, events per kind and per role and kind."""
        role_of = self.labels
        kinds: Counter[str] = Counter()
        by_role: dict[str, Counter[str]] = {r: Counter() for r in ROLES}
        for e in self.events:
            kinds[e["kind"]] += 1
            by_role[role_of[e["actor"]]][e["kind"]] += 1
        tiers = Counter(follower_tier(s["followers"]) for s in self.snapshots)
        return {
            "accounts": self.accounts,
            "days": self.days,
            "seed": self.seed,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "events": len(self.events),
            "snapshots": len(self.snapshots),
            "roles": dict(sorted(Counter(role_of.values()).items())),
            "tiers": dict(sorted(tiers.items())),
            "kinds": dict(sorted(kinds.items())),
            "events_by_role": {r: dict(sorted(c.items())) for r, c in by_role.items() if c},
            "spammers_by_rule": {r: len(self.spammers_by_rule[r]) for r in RULES},
        }


def _snapshots(pop: Population, start_ms: int, seed: int) -> list[Event]:
    return [
        {
            "snapshot_id": f"sim:{seed}:snapshot:{name}",
            "account": name,
            "ts": start_ms,
            "followers": f1,
            "following": f2,
            "posts": p,
            "created_at": c,
            "platform": PLATFORM,
        }
        for name, f1, f2, p, c in zip(
            pop.ids,
            pop.followers.tolist(),
            pop.following.tolist(),
            pop.posts.tolist(),
            pop.created_at.tolist(),
            strict=True,
        )
    ]


def simulate(accounts: int, days: float, seed: int, start_ms: int | None = None) -> Simulation:
    """Simulate ``accounts`` accounts for ``days`` days (deterministic for ``seed``)."""
    if days <= 0:
        raise ValueError("days must be positive")
    start = DEFAULT_START_MS if start_ms is None else int(start_ms)
    end = start + round(days * DAY_MS)
    pop = population.build(accounts, seed, start)
    world = behaviours.World(pop, Timeline(start, end), EventTable(), seed)
    posts = behaviours.posts(world)
    comments = behaviours.post_engagement(world, posts)
    direct = behaviours.direct_messages(world)
    fans = behaviours.celebrity_mentions(world)
    behaviours.conversations(world, np.concatenate([comments, direct, fans]))
    behaviours.follows(world)
    subscribers = behaviours.newsletter(world)
    ran = spammers.run_all(world, posts)
    # by definition an R1 link reply to a stranger is a one-message conversation ending in a
    # link, so R1 link repliers meet R5 too (≥ 14 such conversations in an hour)
    ran["R5"] = ran["R5"] | ran["R1"]
    done = finish(world.table, pop, end, seed)
    ids = pop.ids
    labels = {ids[i]: pop.role_name(i) for i in range(pop.n)}
    return Simulation(
        accounts=accounts,
        days=days,
        seed=seed,
        start_ms=start,
        end_ms=end,
        events=done.events,
        snapshots=_snapshots(pop, start, seed),
        labels=labels,
        spammers_by_rule={r: {ids[i] for i in ran.get(r, set())} for r in RULES},
        clusters={ids[i]: int(c) for i, c in enumerate(pop.cluster.tolist()) if c >= 0},
        subscribers=[ids[i] for i in subscribers.tolist()],
        hard_negatives={r: ids[int(pop.members(r)[0])] for r in HARD_NEGATIVES},
    )
