"""Reciprocity over a window (METRICS.md, "Reciprocity"): who engages back, and is the top a club.

Counting and figuring are separate. Counting keeps ``dict[(u, v)] -> interactions u→v`` for the
interaction layer (every kind with a target except FOLLOW/UNFOLLOW, u ≠ v); counts from shards
(the pipeline shards by account) or from consecutive windows merge by adding. Every figure is
then a function of merged counts, except other-centred share, which needs what the events were
(shares, threads) and has its own mergeable counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, cast

import numpy as np

from streams.core.batch import AccountIndex, Bools, EventBatch, as_batch
from streams.core.windows import DAY_MS, Event

NON_INTERACTION_KINDS = frozenset({"FOLLOW", "UNFOLLOW"})
_ID_BITS = 31
PairCounts = dict[tuple[str, str], int]


def count_pairs(
    events: Sequence[Event] | EventBatch,
    start: int | None = None,
    end: int | None = None,
    into: PairCounts | None = None,
) -> PairCounts:
    """Interaction-layer events u→v (u ≠ v) per directed pair, for events with ts in [start, end).

    Adds into ``into`` when given (and returns it), so a shard can keep one dict per window.
    """
    counts: PairCounts = {} if into is None else into
    b = as_batch(events)
    keep = b.directed(exclude=NON_INTERACTION_KINDS)
    if start is not None:
        keep &= b.ts >= start
    if end is not None:
        keep &= b.ts < end
    _count_into(counts, b, keep)
    return counts


def _count_into(counts: PairCounts, b: EventBatch, keep: Bools) -> None:
    rows = np.flatnonzero(keep)
    # rows kept have a target: the pairs are (str, str)
    pairs = cast(Iterator[tuple[str, str]], zip(
        b.actor_array[rows].tolist(), b.target_array[rows].tolist(), strict=True))
    if isinstance(counts, Counter):
        counts.update(pairs)  # counted in C
    else:
        for k in pairs:
            counts[k] = counts.get(k, 0) + 1


def merge_pair_counts(*parts: Mapping[Any, int]) -> PairCounts:
    """Sum of pair counts (shards, or windows making up a longer W)."""
    out: dict[Any, int] = {}
    for part in parts:
        for k, c in part.items():
            out[k] = out.get(k, 0) + c
    return out


class PairCounter:
    """Pair counts per epoch-aligned window (default 1 d); a longer W merges consecutive ones.

    With an ``AccountIndex`` (the one the batches were built with) it counts packed id pairs,
    cheaper than tuples of names; ``counts()`` always returns ``dict[(u, v)] -> count``.
    """

    def __init__(self, size_ms: int = DAY_MS, accounts: AccountIndex | None = None) -> None:
        self.size_ms = size_ms
        self.accounts = accounts
        self.windows: dict[int, Counter[Any]] = {}  # keys (u, v), or u_id << 31 | v_id

    def add(self, events: Sequence[Event] | EventBatch) -> None:
        b = as_batch(events, self.accounts)
        if not len(b):
            return
        keep = b.directed(exclude=NON_INTERACTION_KINDS)
        by_id = (self.accounts is not None and b.accounts is self.accounts
                 and b.actor_ids is not None and b.target_ids is not None)
        start = b.ts - b.ts % self.size_ms
        first, last = int(start.min()), int(start.max())
        for s in [first] if first == last else np.unique(start[keep]).tolist():
            counts = self.windows.get(s)
            if counts is None:
                counts = self.windows[s] = Counter()
            rows = keep if first == last else keep & (start == s)
            if by_id:
                assert b.actor_ids is not None and b.target_ids is not None
                counts.update(((b.actor_ids[rows] << _ID_BITS) | b.target_ids[rows]).tolist())
            else:
                _count_into(counts, b, rows)

    def _named(self, counts: Mapping[Any, int]) -> PairCounts:
        if self.accounts is None:
            return dict(counts)
        names = self.accounts.names
        mask = (1 << _ID_BITS) - 1
        out: PairCounts = {}
        for k, c in counts.items():
            pair = k if isinstance(k, tuple) else (names[k >> _ID_BITS], names[k & mask])
            out[pair] = out.get(pair, 0) + c
        return out

    def counts(self, start: int | None = None, end: int | None = None) -> PairCounts:
        """Merged counts of the windows whose start lies in [start, end) (all when None)."""
        return self._named(merge_pair_counts(
            *(
                c
                for s, c in sorted(self.windows.items())
                if (start is None or s >= start) and (end is None or s < end)
            )
        ))

    def drop_before(self, start: int) -> None:
        """Forget windows starting before ``start`` (bounded state)."""
        for s in [s for s in self.windows if s < start]:
            del self.windows[s]

    def state_size(self) -> dict[str, int]:
        return {"windows": len(self.windows), "pairs": sum(map(len, self.windows.values()))}


class Reciprocity(NamedTuple):
    edges: int  # |E|, directed pairs
    mutual: int  # |{(u, v) ∈ E : (v, u) ∈ E}|
    accounts: int  # N, accounts with any edge
    r: float | None  # network reciprocity mutual / |E|
    density: float | None  # ā = |E| / (N(N − 1))
    rho: float | None  # Garlaschelli–Loffredo (r − ā) / (1 − ā)


def reciprocity(counts: Mapping[tuple[str, str], int]) -> Reciprocity:
    """Network reciprocity r and Garlaschelli–Loffredo ρ of the pairs with count ≥ 1."""
    edges = {k for k, c in counts.items() if c > 0}
    mutual = sum(1 for u, v in edges if (v, u) in edges)
    nodes = {u for u, _ in edges} | {v for _, v in edges}
    n_e, n = len(edges), len(nodes)
    r = mutual / n_e if n_e else None
    density = n_e / (n * (n - 1)) if n > 1 else None
    rho = None
    if r is not None and density is not None and density < 1:
        rho = (r - density) / (1 - density)
    return Reciprocity(n_e, mutual, n, r, density, rho)


def account_reciprocity(counts: Mapping[tuple[str, str], int]) -> dict[str, float]:
    """Per account with in-neighbours: share of its in-neighbours it also has an edge to."""
    edges = {k for k, c in counts.items() if c > 0}
    incoming: dict[str, int] = {}
    returned: dict[str, int] = {}
    for u, v in edges:
        incoming[v] = incoming.get(v, 0) + 1
        if (v, u) in edges:
            returned[v] = returned.get(v, 0) + 1
    return {a: returned.get(a, 0) / n for a, n in incoming.items()}


class GiveTake(NamedTuple):
    given: int  # interactions A→others
    taken: int  # interactions others→A
    ratio: float | None  # given / taken; None when nothing was taken


def give_take(counts: Mapping[tuple[str, str], int]) -> dict[str, GiveTake]:
    """Per account: interactions given, taken, and their ratio."""
    given: dict[str, int] = {}
    taken: dict[str, int] = {}
    for (u, v), c in counts.items():
        given[u] = given.get(u, 0) + c
        taken[v] = taken.get(v, 0) + c
    out: dict[str, GiveTake] = {}
    for a in given.keys() | taken.keys():
        g, t = given.get(a, 0), taken.get(a, 0)
        out[a] = GiveTake(g, t, g / t if t else None)
    return out


def conversation_roots(
    events: Iterable[Event], into: dict[str, str] | None = None
) -> dict[str, str]:
    """Thread root id → author, from events that start a thread: a POST without a parent, or any
    event whose conversation_id is its own id."""
    roots: dict[str, str] = {} if into is None else into
    for e in events:
        eid = e["event_id"]
        conv = e.get("conversation_id")
        if conv == eid or (
            e["kind"] == "POST" and e.get("in_reply_to") is None and conv is None
        ):
            roots[eid] = e["actor"]
    return roots


def other_centred_counts(
    events: Iterable[Event],
    roots: Mapping[str, str] | None = None,
    into: dict[str, list[int]] | None = None,
) -> dict[str, list[int]]:
    """Per actor ``[other-centred events, outbound events]`` (mergeable by adding).

    Outbound = every event the account acted (self-interactions excluded). Other-centred = a SHARE
    of someone else's content (target ≠ actor) or a REPLY/COMMENT in a conversation the account
    did not start: the author of the thread root (``roots``: root id → author, see
    ``conversation_roots``) is someone else. When the root's author is unknown, a REPLY/COMMENT
    addressed to someone else counts as other-centred.
    """
    out: dict[str, list[int]] = {} if into is None else into
    roots = roots or {}
    for e in events:
        a = e["actor"]
        target = e.get("target")
        if target == a:
            continue
        c = out.get(a)
        if c is None:
            c = out[a] = [0, 0]
        c[1] += 1
        kind = e["kind"]
        if kind == "SHARE":
            if target is not None:
                c[0] += 1
        elif kind in ("REPLY", "COMMENT"):
            conv = e.get("conversation_id")
            author = roots.get(conv) if conv is not None else None
            if author is None and e.get("in_reply_to") is not None and conv is None:
                author = roots.get(e["in_reply_to"])
            if author is not None:
                if author != a:
                    c[0] += 1
            elif target is not None:
                c[0] += 1
    return out


def other_centred_share(counts: Mapping[str, list[int]]) -> dict[str, float]:
    """Other-centred share per account with any outbound event."""
    return {a: oc / total for a, (oc, total) in counts.items() if total}


TierOf = Callable[[str], str] | Mapping[str, str]


def tier_mixing(
    counts: Mapping[tuple[str, str], int], tier_of: TierOf
) -> dict[str, dict[str, int]]:
    """M[s][t] = interactions from accounts of tier s to accounts of tier t."""
    lookup: Callable[[str], str] = tier_of.__getitem__ if isinstance(tier_of, Mapping) else tier_of
    m: dict[str, dict[str, int]] = {}
    for (u, v), c in counts.items():
        row = m.setdefault(lookup(u), {})
        tv = lookup(v)
        row[tv] = row.get(tv, 0) + c
    return m


class RichClub(NamedTuple):
    members: list[str]  # the top-k accounts, best first
    edges: int  # E_k: directed pairs among members
    phi: float | None  # E_k / (k(k − 1))
    expected: float | None  # Σ_{i≠j in club} out_i·in_j / |E| (configuration model)
    rho: float | None  # normalised ρ_rc = E_k / expected


def top_accounts(
    counts: Mapping[tuple[str, str], int], k: int, followers: Mapping[str, int] | None = None
) -> list[str]:
    """The k accounts of the graph with most followers, or (no follower counts for any of them)
    most inbound interactions; ties by account id. Accounts without a count rank last."""
    inbound: dict[str, int] = {}
    for (u, v), c in counts.items():
        if c > 0:
            inbound[v] = inbound.get(v, 0) + c
            inbound.setdefault(u, 0)
    if followers is not None and any(a in followers for a in inbound):
        return sorted(inbound, key=lambda a: (-followers.get(a, -1), a))[:k]
    return sorted(inbound, key=lambda a: (-inbound[a], a))[:k]


def rich_club(
    counts: Mapping[tuple[str, str], int],
    k: int,
    followers: Mapping[str, int] | None = None,
    members: Iterable[str] | None = None,
) -> RichClub:
    """Rich-club coefficient φ and normalised ρ_rc of the top-k (or the given ``members``).

    out_i / in_j are degrees in E (pairs), so Σ out_i·in_j / |E| is the expected number of pairs
    i→j between members under the directed configuration model. k is the club's actual size
    when the graph has fewer accounts.
    """
    club = list(members) if members is not None else top_accounts(counts, k, followers)
    inside = set(club)
    edges = [kv for kv, c in counts.items() if c > 0]
    out_deg: dict[str, int] = {}
    in_deg: dict[str, int] = {}
    e_k = 0
    for u, v in edges:
        out_deg[u] = out_deg.get(u, 0) + 1
        in_deg[v] = in_deg.get(v, 0) + 1
        if u in inside and v in inside:
            e_k += 1
    size = len(club)
    phi = e_k / (size * (size - 1)) if size > 1 else None
    expected = None
    rho = None
    if edges and size > 1:
        s_out = sum(out_deg.get(a, 0) for a in club)
        s_in = sum(in_deg.get(a, 0) for a in club)
        self_terms = sum(out_deg.get(a, 0) * in_deg.get(a, 0) for a in club)
        expected = (s_out * s_in - self_terms) / len(edges)
        rho = e_k / expected if expected > 0 else None
    return RichClub(club, e_k, phi, expected, rho)
