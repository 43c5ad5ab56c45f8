"""What normal accounts do: post, like, share, comment, mention, message, follow, and answer.

Everything is drawn in bulk per behaviour (Poisson counts per account, then arrays of actors,
targets and times), so a run of 5,000 accounts × 3 days takes seconds. Each behaviour has its own
random stream (``World.rng(name)``), so the run is deterministic for a seed.

- **Answers** (``conversations``): every addressing event B→A is answered by A with a
  probability that depends on A's role and B's tier group (T0/T1, T2/T3, T4/T5), after a
  lognormal delay; the answer may be answered back, and so on for a few rounds. Experts (T4/T5)
  answer peers ~85% within minutes but small accounts ~5% after hours; engagers (T2/T3) answer
  nearly everyone fast; community members answer each other; brands and the news account never
  answer.
- **Hard negatives**: a celebrity mentioned by thousands (half of it in a two-hour spike), a news
  account posting every 30 min with links (slot jitter ±9 min: gap CV ≈ 0.25), and a newsletter
  sending one link a day to subscribers who subscribed (follow + message exchange) over a day
  earlier, 30 s apart with personal texts and per-subscriber tracking parameters.
- Apart from the newsletter's mailings, normal accounts put URLs only in posts (unique per
  post), and they never address, like or follow spammers, so no rule fires for them by accident.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from streams.core.windows import DAY_MS, HOUR_MS
from streams.simulate.population import (
    BRAND,
    CELEBRITY,
    COMMUNITY,
    ENGAGER,
    EXPERT,
    F64,
    I64,
    NEWS,
    NEWSLETTER,
    NORMAL_ROLES,
    ORDINARY,
    ROLE_CODE,
    ROLES,
    Population,
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
    SHARE,
    UNFOLLOW,
    EventTable,
    Timeline,
    lognormal_ms,
)
from streams.simulate.text import personal_texts, random_texts

SECOND_MS = 1_000


@dataclass
class World:
    """Everything a behaviour needs: who, when, where events go, and its random stream."""

    pop: Population
    time: Timeline
    table: EventTable
    seed: int
    # accounts any organic behaviour may address or act on (spammers get no organic attention)
    attract: F64 = field(init=False)
    post_appeal: F64 = field(init=False)

    def __post_init__(self) -> None:
        normal = self.pop.role < len(NORMAL_ROLES)
        f = self.pop.followers.astype(np.float64)
        self.attract = np.where(normal, np.sqrt(f + 1.0), 0.0)
        self.post_appeal = np.where(normal, (f + 1.0) ** 0.4, 0.0)

    def rng(self, name: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])

    def counts(self, rng: np.random.Generator, per_day: F64) -> I64:
        """Poisson event counts per account for daily rates ``per_day``."""
        return rng.poisson(per_day * self.time.days).astype(np.int64)

    def choose(self, rng: np.random.Generator, n: int, weights: F64) -> I64:
        """``n`` accounts drawn with probability ∝ ``weights``."""
        return rng.choice(len(weights), n, p=weights / weights.sum()).astype(np.int64)

    def names(self, idx: I64) -> list[str]:
        ids = self.pop.ids
        return [ids[i] for i in idx.tolist()]


@dataclass(frozen=True)
class Rates:
    """Events an account starts per day (answers come on top)."""

    post: float = 0.0
    mention: float = 0.0
    message: float = 0.0
    comment: float = 0.0
    like: float = 0.0
    share: float = 0.0
    follow: float = 0.0


RATES: dict[str, Rates] = {
    ORDINARY: Rates(post=0.7, mention=0.8, message=0.5, comment=1.0, like=6, share=0.6, follow=0.4),
    ENGAGER: Rates(post=3, mention=3, message=2, comment=4, like=12, share=2, follow=1),
    COMMUNITY: Rates(post=1.5, mention=1, message=2, comment=2, like=8, share=1, follow=0.6),
    EXPERT: Rates(post=3, mention=2, message=1, comment=1, like=3, share=0.5, follow=0.2),
    CELEBRITY: Rates(post=4, mention=0.5, like=2, share=0.3),
    BRAND: Rates(post=8),
    NEWSLETTER: Rates(post=1),
}
UNFOLLOW_SHARE = 0.05  # of a normal account's follows undone later (hours to days)


@dataclass(frozen=True)
class Answering:
    """How an account answers requesters of tier group T0/T1, T2/T3, T4/T5."""

    rate: tuple[float, float, float]
    median_min: tuple[float, float, float]
    sigma: float


ANSWERING: dict[str, Answering] = {
    ORDINARY: Answering((0.45, 0.5, 0.55), (120, 120, 90), 1.2),
    ENGAGER: Answering((0.85, 0.88, 0.9), (15, 15, 12), 1.0),
    COMMUNITY: Answering((0.55, 0.6, 0.65), (45, 45, 45), 1.1),
    EXPERT: Answering((0.05, 0.3, 0.85), (240, 90, 4), 0.8),
    CELEBRITY: Answering((0.01, 0.03, 0.3), (600, 600, 120), 1.0),
    NEWSLETTER: Answering((0.1, 0.1, 0.1), (240, 240, 240), 1.0),
}  # brands, the news account and spammers never answer
IN_CLUSTER = Answering((0.85, 0.85, 0.85), (20, 20, 20), 0.9)  # community member to member
ROUNDS = 6  # answers to answers, at most
ROUND_DECAY = 0.9  # each further round is this much less likely to be answered


def _per_role(pop: Population, attr: str) -> F64:
    """Daily rate ``attr`` of each account, from its role."""
    by_code = np.array([getattr(RATES.get(r, Rates()), attr) for r in ROLES])
    return by_code[pop.role]


def _repeat(counts: I64) -> I64:
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


@dataclass(frozen=True)
class Posts:
    """Every post that can be liked, shared or commented on: table index, author, time."""

    idx: I64
    author: I64
    ts: I64

    def latest_before(self, authors: I64, ts: I64) -> I64:
        """Position (in these arrays) of each author's latest post before ``ts``, or -1."""
        if len(self.ts) == 0 or len(ts) == 0:
            return np.full(len(ts), -1, np.int64)
        both = np.concatenate([self.ts, ts])
        t0 = int(both.min())
        span = int(both.max()) - t0 + 1
        key = self.author * span + (self.ts - t0)
        order = np.argsort(key, kind="stable")
        at = np.searchsorted(key[order], authors * span + (ts - t0), side="left") - 1
        ok = (at >= 0) & (self.author[order][np.maximum(at, 0)] == authors)
        return np.where(ok, order[np.maximum(at, 0)], -1)


_BLOGS = ("blog.example", "photos.example", "notes.example", "video.example", "code.example")


def posts(world: World) -> Posts:
    """Organic posts of every normal role, the brands' link posts and the news schedule."""
    rng = world.rng("posts")
    pop, table = world.pop, world.table
    actors = _repeat(world.counts(rng, _per_role(pop, "post")))
    ts = world.time.sample(rng, len(actors))
    n = len(actors)
    brand = pop.role[actors] == ROLE_CODE[BRAND]
    linked = brand | (rng.random(n) < 0.12)
    texts = random_texts(rng, n, 6, 18)
    blog = rng.integers(0, len(_BLOGS), n).tolist()
    names = world.names(actors)
    urls: list[list[str]] = [
        [f"https://shop-{names[i]}.example/p/{table.n + i}"]
        if brand[i]
        else [f"https://{_BLOGS[blog[i]]}/{names[i]}/{table.n + i}"]
        if linked[i]
        else []
        for i in range(n)
    ]
    organic = table.add(POST, actors, ts, texts=texts, urls=urls)
    news = _news(world)
    idx = np.concatenate([organic, news])
    return Posts(idx, table.column("actor")[idx], table.column("ts")[idx])


NEWS_PERIOD_MS = 30 * MINUTE_MS
NEWS_JITTER_MS = 9 * MINUTE_MS  # ±30% of the period, per slot: gap CV ≈ 0.25


def _news(world: World) -> I64:
    """The news account: a post with a link every 30 min, each slot jittered ±9 min."""
    rng = world.rng("news")
    account = int(world.pop.members(NEWS)[0])
    t = world.time
    slots = np.arange(t.start + NEWS_PERIOD_MS // 2, t.end, NEWS_PERIOD_MS, dtype=np.int64)
    ts = slots + rng.integers(-NEWS_JITTER_MS, NEWS_JITTER_MS + 1, len(slots))
    ts = ts[(ts >= t.start) & (ts < t.end)]
    n = len(ts)
    texts = random_texts(rng, n, 8, 14, ["Breaking:"] * n)
    urls = [[f"https://news.example/story/{world.table.n + i}"] for i in range(n)]
    return world.table.add(POST, np.full(n, account), ts, texts=texts, urls=urls)


def _pick_posts(world: World, rng: np.random.Generator, actors: I64, posts: Posts) -> I64:
    """A post for each actor: community members mostly their cluster's, experts mostly their
    peers', everyone else by appeal (∝ author followers^0.4)."""
    pop = world.pop
    appeal = world.post_appeal[posts.author]
    pick = rng.choice(len(posts.idx), len(actors), p=appeal / appeal.sum())
    roles = pop.role[actors]
    # experts: 60% from other experts' posts
    expert_posts = np.flatnonzero(pop.role[posts.author] == ROLE_CODE[EXPERT])
    if len(expert_posts):
        mine = np.flatnonzero((roles == ROLE_CODE[EXPERT]) & (rng.random(len(actors)) < 0.6))
        pick[mine] = expert_posts[rng.integers(0, len(expert_posts), len(mine))]
    # community: 70% from their cluster's posts
    cluster_of_post = pop.cluster[posts.author]
    wants = (pop.cluster[actors] >= 0) & (rng.random(len(actors)) < 0.7)
    for c in np.unique(pop.cluster[actors][wants]).tolist():
        candidates = np.flatnonzero(cluster_of_post == c)
        mine = np.flatnonzero(wants & (pop.cluster[actors] == c))
        if len(candidates):
            pick[mine] = candidates[rng.integers(0, len(candidates), len(mine))]
    return pick.astype(np.int64)


def post_engagement(world: World, posts: Posts) -> I64:
    """Likes, shares and comments on posts, some minutes to hours after them; the comments'
    table indices (they are addressing events: their authors may answer)."""
    comments = np.zeros(0, np.int64)
    for kind, attr, median_min in (
        (LIKE, "like", 40),
        (SHARE, "share", 60),
        (COMMENT, "comment", 45),
    ):
        rng = world.rng(f"engage:{attr}")
        actors = _repeat(world.counts(rng, _per_role(world.pop, attr)))
        pick = _pick_posts(world, rng, actors, posts)
        author = posts.author[pick]
        keep = author != actors
        if kind != COMMENT:  # one like (share) of a post per account
            key = actors * len(posts.idx) + pick
            first = np.zeros(len(key), bool)
            first[np.unique(key, return_index=True)[1]] = True
            keep &= first
        actors, pick, author = actors[keep], pick[keep], author[keep]
        n = len(actors)
        ts = posts.ts[pick] + lognormal_ms(rng, median_min * MINUTE_MS, 1.3, n, 5 * SECOND_MS)
        texts = random_texts(rng, n) if kind == COMMENT else None
        idx = world.table.add(kind, actors, ts, author, posts.idx[pick], texts=texts)
        if kind == COMMENT:
            comments = idx
    return comments


def _targets(world: World, rng: np.random.Generator, actors: I64) -> I64:
    """Whom each actor addresses or follows: by attraction (∝ √followers), with role habits."""
    pop = world.pop
    n = len(actors)
    targets = world.choose(rng, n, world.attract)
    roles = pop.role[actors]
    u = rng.random(n)
    experts = pop.members(EXPERT)
    engagers = pop.members(ENGAGER)
    is_expert = roles == ROLE_CODE[EXPERT]
    peer = np.flatnonzero(is_expert & (u < 0.7))
    targets[peer] = experts[rng.integers(0, len(experts), len(peer))]
    middle = np.flatnonzero(is_expert & (u >= 0.7) & (u < 0.9))
    targets[middle] = engagers[rng.integers(0, len(engagers), len(middle))]
    # engagers reach out broadly: half their targets uniform over everyday accounts
    everyday = pop.members(ORDINARY, COMMUNITY, ENGAGER)
    broad = np.flatnonzero((roles == ROLE_CODE[ENGAGER]) & (u < 0.5))
    targets[broad] = everyday[rng.integers(0, len(everyday), len(broad))]
    # community members: 85% their own cluster
    cluster = pop.cluster[actors]
    inside = (cluster >= 0) & (u < 0.85)
    for c in np.unique(cluster[inside]).tolist():
        members = np.flatnonzero(pop.cluster == c)
        mine = np.flatnonzero(inside & (cluster == c))
        targets[mine] = members[rng.integers(0, len(members), len(mine))]
    return targets


def direct_messages(world: World) -> I64:
    """Mentions and direct messages that start conversations; their table indices."""
    out = []
    for kind, attr in ((MENTION, "mention"), (MESSAGE, "message")):
        rng = world.rng(f"direct:{attr}")
        actors = _repeat(world.counts(rng, _per_role(world.pop, attr)))
        targets = _targets(world, rng, actors)
        keep = targets != actors
        actors, targets = actors[keep], targets[keep]
        n = len(actors)
        ts = world.time.sample(rng, n)
        prefixes = [f"@{t}" for t in world.names(targets)] if kind == MENTION else None
        texts = random_texts(rng, n, 5, 14, prefixes)
        out.append(world.table.add(kind, actors, ts, targets, texts=texts))
    return np.concatenate(out)


CELEBRITY_REACH = 0.45  # share of everyday accounts that mention the celebrity
SPIKE_SHARE = 0.55  # of those mentions, in the two-hour spike


def celebrity_mentions(world: World) -> I64:
    """Thousands of accounts mention the celebrity, over half of them within two hours."""
    rng = world.rng("celebrity")
    pop, t = world.pop, world.time
    celebrity = int(pop.members(CELEBRITY)[0])
    everyday = pop.members(ORDINARY, COMMUNITY, ENGAGER)
    fans = everyday[rng.random(len(everyday)) < CELEBRITY_REACH]
    n = len(fans)
    ts = t.sample(rng, n)
    days = t.day_starts()
    spike = days[min(1, len(days) - 1)] + 18 * HOUR_MS if days else t.start
    if t.fits(spike, 2 * HOUR_MS):
        in_spike = rng.random(n) < SPIKE_SHARE
        delay = np.minimum(rng.exponential(35 * MINUTE_MS, n), 2 * HOUR_MS - 1).astype(np.int64)
        ts = np.where(in_spike, spike + delay, ts)
    name = pop.ids[celebrity]
    texts = random_texts(rng, n, 5, 14, [f"@{name}"] * n)
    return world.table.add(MENTION, fans, ts, celebrity, texts=texts)


def _answer_model(pop: Population) -> tuple[F64, F64, F64]:
    """(probability, median ms, sigma) tables indexed [role code, requester tier group]."""
    rate = np.zeros((len(ROLES), 3))
    median = np.full((len(ROLES), 3), 60.0)
    sigma = np.ones(len(ROLES))
    for role, a in ANSWERING.items():
        rate[ROLE_CODE[role]] = a.rate
        median[ROLE_CODE[role]] = a.median_min
        sigma[ROLE_CODE[role]] = a.sigma
    return rate, median * MINUTE_MS, sigma


def conversations(world: World, inbound: I64) -> None:
    """Answers to the addressing events ``inbound`` (table indices), round after round."""
    rng = world.rng("answers")
    pop, table = world.pop, world.table
    rate, median, sigma = _answer_model(pop)
    group = pop.tier_group
    current = inbound
    for depth in range(ROUNDS):
        if len(current) == 0:
            break
        sender = table.column("actor")[current]
        receiver = table.column("target")[current]
        ts = table.column("ts")[current]
        kind = table.column("kind")[current]
        role, g = pop.role[receiver], group[sender]
        p, med, sig = rate[role, g], median[role, g], sigma[role]
        same = (pop.cluster[sender] >= 0) & (pop.cluster[sender] == pop.cluster[receiver])
        p = np.where(same, IN_CLUSTER.rate[0], p) * ROUND_DECAY**depth
        med = np.where(same, IN_CLUSTER.median_min[0] * MINUTE_MS, med)
        sig = np.where(same, IN_CLUSTER.sigma, sig)
        answered = (rng.random(len(current)) < p) & (ts < world.time.end)
        n = int(answered.sum())
        delay = lognormal_ms(rng, med[answered], sig[answered], n, 20 * SECOND_MS)
        texts = random_texts(rng, n, 3, 14)
        answer_kind = np.where(kind[answered] == MESSAGE, MESSAGE, REPLY)
        current = table.add(
            answer_kind,
            receiver[answered],
            ts[answered] + delay,
            sender[answered],
            current[answered],
            texts=texts,
        )


def follows(world: World) -> None:
    """Follows (a few a day) and the odd unfollow, hours to days later."""
    rng = world.rng("follows")
    actors = _repeat(world.counts(rng, _per_role(world.pop, "follow")))
    targets = _targets(world, rng, actors)
    keep = targets != actors
    key = actors * world.pop.n + targets
    first = np.zeros(len(key), bool)
    first[np.unique(key, return_index=True)[1]] = True
    keep &= first
    actors, targets = actors[keep], targets[keep]
    ts = world.time.sample(rng, len(actors))
    world.table.add(FOLLOW, actors, ts, targets)
    undo = rng.random(len(actors)) < UNFOLLOW_SHARE
    later = ts[undo] + rng.integers(HOUR_MS, 3 * DAY_MS, int(undo.sum()))
    world.table.add(UNFOLLOW, actors[undo], later, targets[undo])


SUBSCRIBE_MS = 6 * HOUR_MS  # subscriptions happen in the first hours of the run
FIRST_SEND_AFTER_MS = 34 * HOUR_MS  # > 24 h after the last subscription exchange
SEND_HOUR_MS = 16 * HOUR_MS
SEND_SPACING_MS = 30 * SECOND_MS  # 10 a 5 minutes: far from a burst
MAX_SUBSCRIBERS = 400


def newsletter(world: World) -> I64:
    """Subscribers follow and message the newsletter, which welcomes each; from the second day
    it sends every subscriber the day's link (tracking parameters per subscriber) at 16:00.
    The subscribers (account indices)."""
    rng = world.rng("newsletter")
    pop, t, table = world.pop, world.time, world.table
    letter = int(pop.members(NEWSLETTER)[0])
    everyday = pop.members(ORDINARY, COMMUNITY, ENGAGER)
    k = min(MAX_SUBSCRIBERS, max(30, round(0.04 * pop.n)), len(everyday))
    subs = np.sort(rng.choice(everyday, k, replace=False)).astype(np.int64)
    joined = t.start + rng.integers(0, SUBSCRIBE_MS, k)
    table.add(FOLLOW, subs, joined, letter)
    asked = joined + rng.integers(MINUTE_MS, 20 * MINUTE_MS, k)
    ask = table.add(
        MESSAGE,
        subs,
        asked,
        letter,
        texts=random_texts(rng, k, 4, 10, ["Please subscribe me:"] * k),
    )
    welcome_ts = asked + lognormal_ms(rng, 10 * MINUTE_MS, 0.6, k, 30 * SECOND_MS)
    table.add(
        MESSAGE,
        np.full(k, letter),
        welcome_ts,
        subs,
        ask,
        texts=personal_texts(rng, k, "Welcome aboard!"),
    )
    sub_names = world.names(subs)
    for issue, day in enumerate(t.day_starts()):
        send = day + SEND_HOUR_MS
        if send < t.start + FIRST_SEND_AFTER_MS or not t.fits(send, k * SEND_SPACING_MS + HOUR_MS):
            continue
        order = rng.permutation(k)
        ts = send + order * SEND_SPACING_MS + rng.integers(0, 20 * SECOND_MS, k)
        urls = [
            [
                f"https://letters.example/issue/{issue}?utm_source=newsletter&utm_medium=dm"
                f"&utm_content={name}"
            ]
            for name in sub_names
        ]
        sent = table.add(
            MESSAGE,
            np.full(k, letter),
            ts,
            subs,
            texts=personal_texts(rng, k, "Your picks today:"),
            urls=urls,
        )
        thanks = rng.random(k) < 0.08
        n = int(thanks.sum())
        table.add(
            MESSAGE,
            subs[thanks],
            ts[thanks] + lognormal_ms(rng, HOUR_MS, 1.0, n),
            letter,
            sent[thanks],
            texts=random_texts(rng, n, 3, 8),
        )
    return subs
