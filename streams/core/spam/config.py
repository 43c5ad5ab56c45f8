"""Spam rule parameters (METRICS.md, "Spam rules"): every threshold and window, with defaults.

A frozen plain dataclass of ints, floats and tuples, so ``streams.config`` can fill it from TOML
or the environment like any other settings section. Rules are switched off one by one by leaving
them out of ``enabled``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from streams.core.replies import CONVERSATION_GAP_MS
from streams.core.windows import DAY_MS, GRACE_MS, HOUR_MS

RULES: tuple[str, ...] = ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8")
SEVERITIES: tuple[str, ...] = ("low", "medium", "high")
MINUTE_MS = 60_000


@dataclass(frozen=True)
class SpamConfig:
    """Defaults are METRICS.md's; names say which rule a field belongs to."""

    enabled: tuple[str, ...] = RULES
    """Rules that run; the others keep no state and raise nothing."""
    lateness_ms: int = GRACE_MS
    """An event older than stream time − this on arrival is late: counted, never judged."""
    contact_horizon_ms: int = 30 * DAY_MS
    """How far back "prior interaction" (R1, R5) looks: contacts older than this are forgotten."""
    flag_hold_ms: int = DAY_MS
    """Spam-adjusted figures leave out an alerted actor's messages from the alert's first_seen to
    window_end + this (at query time, ``streams/reports.py``)."""
    samples: int = 5
    """Sample event ids per alert."""
    severity: tuple[tuple[str, str], ...] = (
        ("R1", "high"), ("R2", "high"), ("R3", "medium"), ("R4", "medium"),
        ("R5", "high"), ("R6", "medium"), ("R7", "medium"), ("R8", "low"),
    )  # fmt: skip
    """Severity per rule: content pushed at strangers (R1, R2, R5) is high, behaviour that is
    spam-like but has honest look-alikes (R3, R4, R6, R7) medium, a profile alone (R8) low."""

    r1_window_ms: int = HOUR_MS
    """R1: trailing window for one actor's one canonical URL."""
    r1_min_targets: int = 10
    """R1: distinct addressed targets of that URL."""
    r1_min_new_share: float = 0.8
    """R1: share of those targets with no prior interaction with the actor."""

    r2_window_ms: int = HOUR_MS
    """R2: trailing window for one canonical URL."""
    r2_min_actors: int = 5
    """R2: distinct actors addressing others with the URL."""
    r2_min_targets: int = 5
    """R2: distinct accounts addressed with it ("to others": many people answering one popular
    account with its own link is not a campaign)."""

    r3_window_ms: int = HOUR_MS
    """R3: trailing window for one actor's texts."""
    r3_min_texts: int = 5
    """R3: near-duplicate texts, each to a different target or thread."""
    r3_min_jaccard: float = 0.5
    """R3: word-bigram Jaccard similarity of a near-duplicate."""
    r3_bands: int = 42
    """R3: LSH bands; with ``r3_rows`` rows each: 126 MinHash values per text."""
    r3_rows: int = 3
    """R3: MinHash values per band (42 × 3 makes a pair with Jaccard 0.5 a candidate 99.6% of
    the time; candidates are then checked exactly)."""

    r4_window_ms: int = DAY_MS
    """R4: trailing window for follow counts."""
    r4_min_follows: int = 100
    """R4: FOLLOWs in the window by a small account ..."""
    r4_max_followers: int = 30
    """R4: ... having at most this many followers."""
    r4_max_follows: int = 400
    """R4: more FOLLOWs than this in the window, whoever follows."""
    r4_churn_window_ms: int = 2 * DAY_MS
    """R4: follow→unfollow of one target within this is a churn; counted over this too."""
    r4_min_churns: int = 50
    """R4: churns in the churn window."""

    r5_window_ms: int = DAY_MS
    """R5: trailing window for pitched conversations."""
    r5_min_conversations: int = 5
    """R5: conversations with distinct counterparts ending in a link, counterpart new."""
    r5_conversation_gap_ms: int = CONVERSATION_GAP_MS
    """R5: a conversation ends after this long without an addressing event between the two."""

    r6_window_ms: int = 12 * HOUR_MS
    """R6: the posts judged for cadence must fall within this trailing window."""
    r6_min_posts: int = 50
    """R6: POSTs in that window whose gaps are checked (the latest this many)."""
    r6_max_cv: float = 0.1
    """R6: coefficient of variation of their inter-post gaps below this is automation."""
    r6_max_posts_per_hour: int = 120
    """R6: rate cap: more POSTs than this in each of ``r6_rate_hours`` consecutive hours."""
    r6_rate_hours: int = 3
    """R6: how long the rate must stay above the cap."""

    r7_window_ms: int = 5 * MINUTE_MS
    """R7: burst window."""
    r7_min_events: int = 30
    """R7: addressing events in the burst window."""
    r7_min_ratio: float = 20.0
    """R7: burst rate over the trailing hourly average."""
    r7_history_hours: int = 24
    """R7: whole clock hours before the current one that make the trailing average."""

    r8_min_following: int = 300
    """R8: following at least this ..."""
    r8_max_followers: int = 30
    """R8: ... with at most this many followers; or:"""
    r8_ratio: float = 10.0
    """R8: following ≥ this × followers ..."""
    r8_ratio_min_following: int = 1000
    """R8: ... and following ≥ this."""

    def __post_init__(self) -> None:
        unknown = set(self.enabled) - set(RULES)
        if unknown:
            raise ValueError(f"unknown spam rules {sorted(unknown)}; known: {RULES}")
        rules = dict(self.severity)
        if set(rules) != set(RULES) or not set(rules.values()) <= set(SEVERITIES):
            raise ValueError(f"severity needs one of {SEVERITIES} for each of {RULES}")
        for f in fields(self):
            value = getattr(self, f.name)
            zero_ok = f.name == "lateness_ms"
            if isinstance(value, int | float) and (value < 0 or value == 0 and not zero_ok):
                raise ValueError(f"spam setting {f.name} must be > 0, not {value}")
        for name in ("r1_min_new_share", "r3_min_jaccard"):
            if getattr(self, name) > 1:
                raise ValueError(f"spam setting {name} is a share: at most 1")
