"""Spammers: one scripted type per rule of METRICS.md, each well past its default threshold.

Every script puts its evidence inside one epoch-aligned window of the rule's length (an hour for
R1–R3, a day for R4/R5, five minutes for R7), so sliding and tumbling readings of "within 1 h"
agree. Spammers address strangers only: targets are drawn without replacement per spammer from
everyday accounts, which never address spammers on their own (and do not answer them, except a
pitch's greeting). Texts are random unless near-duplication is the point (R3), and URLs appear
only where a rule is about links, so each type trips its own rule and no other — except that an
R1 link replier also meets R5 by definition (each link reply to a stranger is a one-message
conversation ending in a link); ``network`` records that.

Designed margins (threshold → what the script does):

- R1 ≥ 10 strangers per canonical URL in 1 h → 14–20 strangers (100% strangers) in ≤ 50 min.
- R2 ≥ 5 actors per URL in 1 h → 8 actors, 2 strangers each, in ≤ 55 min.
- R3 ≥ 5 near-duplicates in 1 h → 9–13, Jaccard ≥ 0.68 pairwise, in ≤ 50 min.
- R4 ≥ 100 follows in 24 h with ≤ 30 followers → 130–170 follows (2–20 followers);
  churn ≥ 50 follow→unfollow in 48 h → 70–90 within one day.
- R5 ≥ 5 link-ending conversations with strangers in 24 h → 8–11 a day.
- R6 ≥ 50 posts with gap CV < 0.1 → 70–100 posts 5 min ± 3 s apart (CV ≈ 0.01).
- R7 ≥ 30 addressing events in 5 min and ≥ 20× the hourly average → 40–55 in < 5 min after
  ≥ 12 h at ~2 a day.
- R8 following ≥ 300 and followers ≤ 30, or following ≥ 10 × followers and ≥ 1,000 → profiles
  drawn inside the signature (population).
"""

from __future__ import annotations

import numpy as np

from streams.core.windows import HOUR_MS
from streams.simulate.behaviours import SECOND_MS, Posts, World
from streams.simulate.population import (
    CAMPAIGN_SIZE,
    COMMUNITY,
    ENGAGER,
    I64,
    ORDINARY,
    SPAM_BOT,
    SPAM_BURST,
    SPAM_CAMPAIGN,
    SPAM_CHURN,
    SPAM_DUPLICATE,
    SPAM_FOLLOW,
    SPAM_LINK,
    SPAM_PITCH,
    SPAM_PROFILE,
)
from streams.simulate.table import (
    COMMENT,
    FOLLOW,
    LIKE,
    MENTION,
    MESSAGE,
    MINUTE_MS,
    POST,
    REPLY,
    UNFOLLOW,
    lognormal_ms,
)
from streams.simulate.text import near_duplicates, random_texts, template, tracked_links

FIVE_MIN_MS = 5 * MINUTE_MS


class _Strangers:
    """Everyday accounts for one spammer to address, never the same one twice."""

    def __init__(self, world: World, rng: np.random.Generator) -> None:
        pool = world.pop.members(ORDINARY, COMMUNITY, ENGAGER)
        self._order = rng.permutation(pool).astype(np.int64)
        self._next = 0

    def take(self, k: int) -> I64:
        if self._next + k > len(self._order):
            raise ValueError("not enough accounts to address")
        out = self._order[self._next : self._next + k]
        self._next += k
        return out


def _address(
    world: World,
    posts: Posts,
    kind: int,
    actor: int,
    targets: I64,
    ts: I64,
    texts: list[str],
    urls: list[list[str]] | None = None,
) -> None:
    """``kind`` (REPLY or COMMENT) on each target's latest post before ``ts``; a MENTION where
    the target has not posted yet."""
    at = posts.latest_before(targets, ts)
    on_post = at >= 0
    kinds = np.where(on_post, kind, MENTION)
    parents = np.where(on_post, posts.idx[np.maximum(at, 0)], -1)
    world.table.add(kinds, np.full(len(targets), actor), ts, targets, parents, texts, urls)


def _minutes(rng: np.random.Generator, begin: int, lo_min: int, hi_min: int, k: int) -> I64:
    """``k`` sorted times between ``begin + lo_min`` and ``begin + hi_min`` minutes."""
    return np.sort(begin + rng.integers(lo_min * MINUTE_MS, hi_min * MINUTE_MS, k))


def link_repliers(world: World, posts: Posts) -> set[int]:
    """R1: 1–2 sessions a day, each 14–20 link replies to strangers within 50 min."""
    done = set()
    for a in world.pop.members(SPAM_LINK).tolist():
        rng = world.rng(f"spam:link:{a}")
        strangers = _Strangers(world, rng)
        path = f"/offer/{world.pop.ids[a]}"
        for day in world.time.day_starts():
            hours = world.time.aligned_hours(day, 8, 22)
            if not hours:
                continue
            for hour in rng.choice(hours, min(len(hours), int(rng.integers(1, 3))), False):
                k = int(rng.integers(14, 21))
                ts = _minutes(rng, int(hour), 2, 50, k)
                _address(
                    world,
                    posts,
                    REPLY,
                    a,
                    strangers.take(k),
                    ts,
                    random_texts(rng, k),
                    [[u] for u in tracked_links(rng, "deals-hub.example", path, k)],
                )
                done.add(a)
    return done


def campaigns(world: World, posts: Posts) -> set[int]:
    """R2: groups of 8 push one URL within an hour, 2 strangers each, every other day."""
    done = set()
    members = world.pop.members(SPAM_CAMPAIGN)
    days = world.time.day_starts()
    for g in range(len(members) // CAMPAIGN_SIZE):
        group = members[g * CAMPAIGN_SIZE : (g + 1) * CAMPAIGN_SIZE].tolist()
        rng = world.rng(f"spam:campaign:{g}")
        strangers = {a: _Strangers(world, rng) for a in group}
        mine = [d for i, d in enumerate(days) if i % 2 == g % 2] or days[:1]
        for d, day in enumerate(mine):
            hours = world.time.aligned_hours(day, 9, 21)
            if not hours:
                continue
            hour = int(rng.choice(hours))
            for a in group:
                ts = _minutes(rng, hour, 1, 56, 2)
                urls = tracked_links(rng, f"promo-{g}.example", f"/win/{d}", 2)
                _address(
                    world,
                    posts,
                    REPLY,
                    a,
                    strangers[a].take(2),
                    ts,
                    random_texts(rng, 2),
                    [[u] for u in urls],
                )
            done.update(group)
    return done


def duplicate_commenters(world: World, posts: Posts) -> set[int]:
    """R3: a session a day of 9–13 near-duplicate comments to strangers within 50 min."""
    done = set()
    for a in world.pop.members(SPAM_DUPLICATE).tolist():
        rng = world.rng(f"spam:duplicate:{a}")
        strangers = _Strangers(world, rng)
        words = template(rng, int(rng.integers(22, 29)))
        for day in world.time.day_starts():
            hours = world.time.aligned_hours(day, 8, 22)
            if not hours:
                continue
            k = int(rng.integers(9, 14))
            ts = _minutes(rng, int(rng.choice(hours)), 2, 52, k)
            _address(
                world, posts, COMMENT, a, strangers.take(k), ts, near_duplicates(rng, words, k)
            )
            done.add(a)
    return done


def _day_with(world: World, rng: np.random.Generator, length: int, earliest: int) -> int | None:
    """A random aligned day whose ``earliest``…``earliest + length`` lies in the run."""
    days = [d for d in world.time.day_starts() if world.time.fits(d + earliest, length)]
    return int(rng.choice(days)) if days else None


def follow_spammers(world: World, posts: Posts) -> set[int]:
    """R4: one spree of 130–170 follows within 4–8 h of one day, by accounts with ≤ 20
    followers (and fewer than 300 followed after it: not R8)."""
    done = set()
    for a in world.pop.members(SPAM_FOLLOW).tolist():
        rng = world.rng(f"spam:follow:{a}")
        day = _day_with(world, rng, 18 * HOUR_MS - 4 * HOUR_MS, 4 * HOUR_MS)
        if day is None:
            continue
        begin = day + int(rng.integers(4 * HOUR_MS, 10 * HOUR_MS))
        k = int(rng.integers(130, 171))
        ts = np.sort(begin + rng.integers(0, int(rng.integers(4, 9)) * HOUR_MS, k))
        targets = rng.choice(world.pop.n, k, False, p=world.attract / world.attract.sum())
        world.table.add(FOLLOW, np.full(k, a), ts, targets)
        _likes(world, rng, a, 2.0, posts)
        done.add(a)
    return done


def churners(world: World) -> set[int]:
    """R4 churn: 70–90 follows in one morning, each undone 2–10 h later, the same day."""
    done = set()
    for a in world.pop.members(SPAM_CHURN).tolist():
        rng = world.rng(f"spam:churn:{a}")
        day = _day_with(world, rng, 21 * HOUR_MS, HOUR_MS)
        if day is None:
            continue
        k = int(rng.integers(70, 91))
        targets = rng.choice(world.pop.n, k, False, p=world.attract / world.attract.sum())
        ts = day + rng.integers(HOUR_MS, 12 * HOUR_MS, k)
        world.table.add(FOLLOW, np.full(k, a), ts, targets)
        world.table.add(
            UNFOLLOW, np.full(k, a), ts + rng.integers(2 * HOUR_MS, 10 * HOUR_MS, k), targets
        )
        done.add(a)
    return done


def pitchers(world: World, posts: Posts) -> set[int]:
    """R5: each day 8–11 stranger conversations: a greeting, maybe an answer, then a pitch with
    a link (the spammer's last message), one conversation per slot of 08:00–20:00."""
    done = set()
    table = world.table
    for a in world.pop.members(SPAM_PITCH).tolist():
        rng = world.rng(f"spam:pitch:{a}")
        strangers = _Strangers(world, rng)
        for day in world.time.day_starts():
            if not world.time.fits(day, 23 * HOUR_MS):
                continue
            k = int(rng.integers(8, 12))
            slot = 12 * HOUR_MS // k
            t0 = day + 8 * HOUR_MS + np.arange(k) * slot + rng.integers(0, slot // 2, k)
            targets = strangers.take(k)
            hello = table.add(
                MESSAGE, np.full(k, a), t0, targets, texts=random_texts(rng, k, 4, 10, ["Hi!"] * k)
            )
            answered = rng.random(k) < 0.6
            n = int(answered.sum())
            t1 = t0[answered] + np.minimum(lognormal_ms(rng, 20 * MINUTE_MS, 0.8, n), 2 * HOUR_MS)
            replies = table.add(
                MESSAGE,
                targets[answered],
                t1,
                a,
                hello[answered],
                texts=random_texts(rng, n, 3, 10),
            )
            last = t0.copy()
            last[answered] = t1
            parent = hello.copy()
            parent[answered] = replies
            pitch_ts = last + rng.integers(5 * MINUTE_MS, 40 * MINUTE_MS, k)
            urls = tracked_links(rng, "quick-income.example", f"/join/{world.pop.ids[a]}", k)
            table.add(
                MESSAGE,
                np.full(k, a),
                pitch_ts,
                targets,
                parent,
                texts=random_texts(rng, k, 8, 16),
                urls=[[u] for u in urls],
            )
            done.add(a)
    return done


def bots(world: World) -> set[int]:
    """R6: a block a day of 70–100 link posts exactly 5 min (± 3 s) apart."""
    done = set()
    for a in world.pop.members(SPAM_BOT).tolist():
        rng = world.rng(f"spam:bot:{a}")
        for day in world.time.day_starts():
            k = int(rng.integers(70, 101))
            begin = day + int(rng.integers(0, 10 * HOUR_MS))
            gaps = np.round(FIVE_MIN_MS + rng.normal(0, 3 * SECOND_MS, k - 1)).astype(np.int64)
            ts = begin + np.r_[0, np.cumsum(gaps)]
            if not world.time.fits(begin, int(ts[-1] - begin) + 1):
                continue
            urls = [
                [f"https://autofeed.example/{world.pop.ids[a]}/{world.table.n + i}"]
                for i in range(k)
            ]
            world.table.add(POST, np.full(k, a), ts, texts=random_texts(rng, k, 6, 14), urls=urls)
            done.add(a)
    return done


BURST_QUIET_MS = 12 * HOUR_MS  # history before a burst


def bursters(world: World, posts: Posts) -> set[int]:
    """R7: a quiet account (~2 mentions and ~4 likes a day) fires 40–55 addressing events at
    strangers inside one aligned 5-minute window, after at least 12 h (and 40% of the run)."""
    done = set()
    t = world.time
    for a in world.pop.members(SPAM_BURST).tolist():
        rng = world.rng(f"spam:burst:{a}")
        strangers = _Strangers(world, rng)
        quiet = int(rng.poisson(2 * t.days))
        quiet_targets = world.choose(rng, quiet, world.attract)
        world.table.add(
            MENTION,
            np.full(quiet, a),
            t.sample(rng, quiet),
            quiet_targets,
            texts=random_texts(rng, quiet),
        )
        _likes(world, rng, a, 4.0, posts)
        earliest = t.start + max(BURST_QUIET_MS, int(0.4 * t.span))
        first = earliest + (-earliest) % FIVE_MIN_MS
        windows = np.arange(first, t.end - FIVE_MIN_MS, FIVE_MIN_MS, dtype=np.int64)
        if len(windows) == 0:
            continue
        window = int(rng.choice(windows))
        k = int(rng.integers(40, 56))
        ts = np.sort(window + rng.integers(5 * SECOND_MS, FIVE_MIN_MS - 10 * SECOND_MS, k))
        _address(world, posts, REPLY, a, strangers.take(k), ts, random_texts(rng, k))
        done.add(a)
    return done


def profiles(world: World, posts: Posts) -> set[int]:
    """R8: accounts with the profile signature; they like (3 a day) and follow (1 a day)."""
    done = set()
    for a in world.pop.members(SPAM_PROFILE).tolist():
        rng = world.rng(f"spam:profile:{a}")
        _likes(world, rng, a, 3.0, posts)
        k = int(rng.poisson(world.time.days))
        targets = rng.choice(world.pop.n, k, False, p=world.attract / world.attract.sum())
        world.table.add(FOLLOW, np.full(k, a), world.time.sample(rng, k), targets)
        done.add(a)
    return done


def _likes(
    world: World, rng: np.random.Generator, actor: int, per_day: float, posts: Posts
) -> None:
    """Background likes of popular posts, ``per_day`` on average."""
    if len(posts.idx) == 0:
        return
    k = int(rng.poisson(per_day * world.time.days))
    appeal = world.post_appeal[posts.author]
    pick = np.unique(rng.choice(len(posts.idx), k, p=appeal / appeal.sum()))
    ts = posts.ts[pick] + lognormal_ms(rng, 40 * MINUTE_MS, 1.3, len(pick), 5 * SECOND_MS)
    world.table.add(LIKE, np.full(len(pick), actor), ts, posts.author[pick], posts.idx[pick])


def run_all(world: World, posts: Posts) -> dict[str, set[int]]:
    """Every spammer script; the accounts whose script ran, by the rule it was built for."""
    return {
        "R1": link_repliers(world, posts),
        "R2": campaigns(world, posts),
        "R3": duplicate_commenters(world, posts),
        "R4": follow_spammers(world, posts) | churners(world),
        "R5": pitchers(world, posts),
        "R6": bots(world),
        "R7": bursters(world, posts),
        "R8": profiles(world, posts),
    }
