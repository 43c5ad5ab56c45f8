"""Who is in the simulated network: accounts, their roles and their profile counts at the start.

Follower counts are heavy-tailed (lognormal or log-uniform per role), so every tier T0–T5 of
METRICS.md is present and each tier up holds fewer accounts. Roles decide behaviour
(``behaviours``, ``spammers``); account ids (``u00042``) are shuffled, so an id says nothing about
its role. Profiles of normal accounts are kept clear of the R8 profile signature (an account
with under 100 followers follows at most 200; anyone else follows under 1,000 or at most 7 times
their followers), so a flag there is always a designed spammer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.core.tiers import DEFAULT_FOLLOWER_BOUNDS
from streams.core.windows import DAY_MS

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# normal roles (hard negatives included), then one spammer type per rule (R4 has two)
ORDINARY, ENGAGER, COMMUNITY, EXPERT, BRAND = "ordinary", "engager", "community", "expert", "brand"
CELEBRITY, NEWS, NEWSLETTER = "celebrity", "news", "newsletter"
SPAM_LINK, SPAM_CAMPAIGN, SPAM_DUPLICATE = "spam_link", "spam_campaign", "spam_duplicate"
SPAM_FOLLOW, SPAM_CHURN, SPAM_PITCH = "spam_follow", "spam_churn", "spam_pitch"
SPAM_BOT, SPAM_BURST, SPAM_PROFILE = "spam_bot", "spam_burst", "spam_profile"

NORMAL_ROLES: tuple[str, ...] = (
    ORDINARY,
    ENGAGER,
    COMMUNITY,
    EXPERT,
    BRAND,
    CELEBRITY,
    NEWS,
    NEWSLETTER,
)
HARD_NEGATIVES: tuple[str, ...] = (CELEBRITY, NEWS, NEWSLETTER)
SPAM_ROLES: tuple[str, ...] = (
    SPAM_LINK,
    SPAM_CAMPAIGN,
    SPAM_DUPLICATE,
    SPAM_FOLLOW,
    SPAM_CHURN,
    SPAM_PITCH,
    SPAM_BOT,
    SPAM_BURST,
    SPAM_PROFILE,
)
ROLES: tuple[str, ...] = NORMAL_ROLES + SPAM_ROLES
ROLE_CODE: dict[str, int] = {r: i for i, r in enumerate(ROLES)}
# the rule each spammer type is built to trip (others it trips by definition: network.py)
SPAM_RULE: dict[str, str] = {
    SPAM_LINK: "R1",
    SPAM_CAMPAIGN: "R2",
    SPAM_DUPLICATE: "R3",
    SPAM_FOLLOW: "R4",
    SPAM_CHURN: "R4",
    SPAM_PITCH: "R5",
    SPAM_BOT: "R6",
    SPAM_BURST: "R7",
    SPAM_PROFILE: "R8",
}

MIN_ACCOUNTS = 300
CLUSTER_SIZE = 40  # members of one community cluster
CAMPAIGN_SIZE = 8  # accounts pushing one campaign URL (R2 needs ≥ 5)


def role_counts(accounts: int) -> dict[str, int]:
    """How many accounts play each role in a network of ``accounts`` (ordinary: the rest)."""
    if accounts < MIN_ACCOUNTS:
        raise ValueError(f"a simulated network needs at least {MIN_ACCOUNTS} accounts")

    def share(fraction: float, least: int) -> int:
        return max(least, round(accounts * fraction))

    spam = share(0.0025, 6)
    counts = {
        CELEBRITY: 1,
        NEWS: 1,
        NEWSLETTER: 1,
        EXPERT: share(0.01, 10),
        BRAND: share(0.006, 4),
        ENGAGER: share(0.08, 20),
        COMMUNITY: CLUSTER_SIZE * share(0.06 / CLUSTER_SIZE, 1),
        SPAM_LINK: spam,
        SPAM_DUPLICATE: spam,
        SPAM_FOLLOW: spam,
        SPAM_PITCH: spam,
        SPAM_BURST: spam,
        SPAM_CAMPAIGN: CAMPAIGN_SIZE * share(1 / 2500, 1),
        SPAM_CHURN: share(0.0015, 5),
        SPAM_BOT: share(0.002, 6),
        SPAM_PROFILE: share(0.003, 6),
    }
    counts[ORDINARY] = accounts - sum(counts.values())
    return {r: counts[r] for r in ROLES}


@dataclass(frozen=True)
class Population:
    """Every account: id, role code, community cluster (-1: none) and start-of-run profile."""

    ids: list[str]
    role: I64
    cluster: I64
    followers: I64
    following: I64
    posts: I64
    created_at: I64

    @property
    def n(self) -> int:
        return len(self.ids)

    def members(self, *roles: str) -> I64:
        """Account indices playing any of ``roles``, ascending."""
        codes = [ROLE_CODE[r] for r in roles]
        return np.flatnonzero(np.isin(self.role, codes)).astype(np.int64)

    def is_role(self, *roles: str) -> Bools:
        return np.isin(self.role, [ROLE_CODE[r] for r in roles])

    @property
    def tier(self) -> I64:
        """Follower tier code (0 = T0 … 5 = T5) at the start."""
        return np.searchsorted(
            np.asarray(DEFAULT_FOLLOWER_BOUNDS), self.followers, side="right"
        ).astype(np.int64)

    @property
    def tier_group(self) -> I64:
        """0 for T0/T1 (small), 1 for T2/T3 (middle), 2 for T4/T5 (top)."""
        return self.tier // 2

    def role_name(self, i: int) -> str:
        return ROLES[int(self.role[i])]


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> F64:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> F64:
    return median * np.exp(sigma * rng.standard_normal(n))


def _profiles(rng: np.random.Generator, role: str, n: int) -> tuple[F64, F64, F64, F64]:
    """(followers, following, posts, account age in days) for ``n`` accounts of ``role``."""
    u = _log_uniform
    ln = _lognormal
    if role == ORDINARY:
        followers = np.clip(ln(rng, 60, 1.2, n), 0, 9_000)
        return followers, ln(rng, 150, 0.9, n), ln(rng, 800, 1.2, n), u(rng, 30, 4000, n)
    if role == ENGAGER:
        followers = np.clip(ln(rng, 6_000, 0.9, n), 1_000, 99_000)
        return followers, ln(rng, 1_200, 0.6, n), ln(rng, 20_000, 0.8, n), u(rng, 300, 5000, n)
    if role == COMMUNITY:
        followers = np.clip(ln(rng, 400, 0.8, n), 30, 9_000)
        return followers, ln(rng, 350, 0.6, n), ln(rng, 4_000, 0.8, n), u(rng, 200, 4000, n)
    if role == EXPERT:
        return (
            u(rng, 150_000, 4_000_000, n),
            u(rng, 200, 2_000, n),
            u(rng, 5_000, 60_000, n),
            u(rng, 1500, 6000, n),
        )
    if role == BRAND:
        return (
            u(rng, 80_000, 800_000, n),
            u(rng, 50, 500, n),
            u(rng, 2_000, 20_000, n),
            u(rng, 800, 5000, n),
        )
    if role == CELEBRITY:
        return (
            u(rng, 8e6, 2e7, n),
            u(rng, 100, 500, n),
            u(rng, 10_000, 40_000, n),
            u(rng, 2500, 5000, n),
        )
    if role == NEWS:
        return (
            u(rng, 300_000, 900_000, n),
            u(rng, 10, 200, n),
            u(rng, 1e5, 4e5, n),
            u(rng, 2500, 5000, n),
        )
    if role == NEWSLETTER:
        return (
            u(rng, 5_000, 50_000, n),
            u(rng, 50, 400, n),
            u(rng, 500, 3_000, n),
            u(rng, 400, 2000, n),
        )
    if role == SPAM_FOLLOW:  # ≤ 30 followers, following stays < 300 through a spree
        return (u(rng, 2, 20, n), u(rng, 10, 60, n), u(rng, 0.5, 40, n), u(rng, 2, 60, n))
    if role == SPAM_CHURN:  # plenty of followers: churn is how they got them
        return (
            u(rng, 300, 3_000, n),
            u(rng, 300, 900, n),
            u(rng, 100, 3_000, n),
            u(rng, 60, 900, n),
        )
    if role == SPAM_PROFILE:  # half "follows 700, nobody follows back", half 10×-ratio
        few = rng.random(n) < 0.5
        followers = np.where(few, u(rng, 0.5, 25, n), u(rng, 100, 400, n))
        following = np.where(
            few, u(rng, 400, 2_500, n), np.maximum(1_500, followers * u(rng, 12, 25, n))
        )
        return followers, following, u(rng, 0.5, 200, n), u(rng, 2, 300, n)
    if role == SPAM_BOT:
        return (
            u(rng, 40, 600, n),
            u(rng, 50, 600, n),
            u(rng, 20_000, 200_000, n),
            u(rng, 30, 900, n),
        )
    # the other spammer types: modest audiences, no R8 signature
    return (u(rng, 40, 600, n), u(rng, 100, 900, n), u(rng, 50, 5_000, n), u(rng, 10, 600, n))


def build(accounts: int, seed: int, start_ms: int) -> Population:
    """The population of ``accounts`` accounts for ``seed`` (deterministic)."""
    counts = role_counts(accounts)
    rng = np.random.default_rng([seed, 1])
    roles = np.repeat(np.arange(len(ROLES), dtype=np.int64), [counts[r] for r in ROLES])
    followers = np.zeros(accounts)
    following = np.zeros(accounts)
    posts = np.zeros(accounts)
    age_days = np.zeros(accounts)
    for code, role in enumerate(ROLES):
        where = np.flatnonzero(roles == code)
        if len(where):
            f, g, p, a = _profiles(rng, role, len(where))
            followers[where], following[where], posts[where], age_days[where] = f, g, p, a
    followers = np.floor(followers)
    following = np.floor(following)
    normal = roles < len(NORMAL_ROLES)
    # normal profiles stay clear of R8 (and unfollows cannot push them into it)
    small = normal & (followers < 100)
    following = np.where(small, np.minimum(following, 200), following)
    following = np.where(
        normal & ~small, np.minimum(following, np.maximum(900, 7 * followers)), following
    )
    cluster = np.full(accounts, -1, np.int64)
    community = np.flatnonzero(roles == ROLE_CODE[COMMUNITY])
    cluster[community] = np.arange(len(community)) // CLUSTER_SIZE
    # shuffle who is who: ids are in order, roles are not
    order = rng.permutation(accounts)
    created = start_ms - np.round(age_days * DAY_MS).astype(np.int64)
    return Population(
        ids=[f"u{i:05d}" for i in range(accounts)],
        role=roles[order],
        cluster=cluster[order],
        followers=followers.astype(np.int64)[order],
        following=following.astype(np.int64)[order],
        posts=np.round(posts).astype(np.int64)[order],
        created_at=created[order],
    )
