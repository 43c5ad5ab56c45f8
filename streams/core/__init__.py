"""Rapport's analytics core: pure, typed, synchronous functions over plain-dict events.

No Kafka and no ClickHouse here: Faust agents wrap these as thin wiring, and every figure can be
tested (and reproduced) from a list of events. Definitions: ``../shared/METRICS.md``.

Work happens per batch, with numpy: ``EventBatch`` extracts each field (and, given an
``AccountIndex``, numbers the accounts) once per batch; ``RequesterTags`` stamps requester tier
and spam flag; ``ReplyMatcher`` matches replies; ``ResponsivenessAggregator`` keeps per-window
figures and emits them; ``PairCounter``/``count_pairs`` count pairs for the reciprocity figures;
``TierBook`` keeps tiers; ``WindowGate``/``ReorderBuffer`` handle event time.
"""

from streams.core.batch import AccountIndex, EventBatch, as_batch
from streams.core.reciprocity import (
    NON_INTERACTION_KINDS,
    GiveTake,
    PairCounter,
    PairCounts,
    Reciprocity,
    RichClub,
    account_reciprocity,
    conversation_roots,
    count_pairs,
    give_take,
    merge_pair_counts,
    other_centred_counts,
    other_centred_share,
    reciprocity,
    rich_club,
    tier_mixing,
    top_accounts,
)
from streams.core.replies import (
    ADDRESSING_KINDS,
    CONVERSATION_GAP_MS,
    DEFAULT_HORIZON_MS,
    EXPIRY_FIELDS,
    INBOUND_FIELDS,
    REPLY_FIELDS,
    Expiries,
    ExpiryRecord,
    Inbound,
    InboundRecord,
    MatchResult,
    Replies,
    ReplyMatcher,
    ReplyRecord,
    concat_results,
)
from streams.core.responsiveness import (
    DEFAULT_TIERS,
    QUANTILES,
    RATE_LIMITS_MS,
    SEGMENT_ALL,
    TIER_PREFIX,
    RequesterTags,
    ResponsivenessAggregator,
    WindowFigures,
    concat_figures,
    summarize,
)
from streams.core.sketch import DEFAULT_ALPHA, DDSketch, merged, nearest_rank
from streams.core.tiers import (
    BASE,
    DEFAULT_FOLLOWER_BOUNDS,
    TOP,
    UPPER,
    TierBook,
    follower_tier,
    follower_tiers,
    rank_tiers,
)
from streams.core.windows import (
    DAY_MS,
    GRACE_MS,
    HOUR_MS,
    NO_TIME,
    REORDER_MS,
    WINDOW_SIZES,
    Admission,
    Event,
    ReorderBuffer,
    WindowGate,
    is_late,
    window_bounds,
    window_start,
)

__all__ = [
    "ADDRESSING_KINDS", "BASE", "CONVERSATION_GAP_MS", "DAY_MS", "DEFAULT_ALPHA",
    "DEFAULT_FOLLOWER_BOUNDS", "DEFAULT_HORIZON_MS", "DEFAULT_TIERS", "EXPIRY_FIELDS", "GRACE_MS",
    "HOUR_MS", "INBOUND_FIELDS", "NON_INTERACTION_KINDS", "NO_TIME", "QUANTILES",
    "RATE_LIMITS_MS", "REORDER_MS", "REPLY_FIELDS", "SEGMENT_ALL",
    "TIER_PREFIX", "TOP", "UPPER", "WINDOW_SIZES", "AccountIndex", "Admission", "DDSketch",
    "Event", "EventBatch", "Expiries", "ExpiryRecord", "GiveTake", "Inbound", "InboundRecord",
    "MatchResult", "PairCounter", "PairCounts", "Reciprocity", "ReorderBuffer", "Replies",
    "ReplyMatcher", "ReplyRecord", "RequesterTags", "ResponsivenessAggregator", "RichClub",
    "TierBook", "WindowFigures", "WindowGate", "account_reciprocity", "as_batch",
    "concat_figures", "concat_results", "conversation_roots", "count_pairs", "follower_tier",
    "follower_tiers", "give_take", "is_late", "merge_pair_counts", "merged", "nearest_rank",
    "other_centred_counts", "other_centred_share", "rank_tiers", "reciprocity", "rich_club",
    "summarize", "tier_mixing", "top_accounts", "window_bounds", "window_start",
]
