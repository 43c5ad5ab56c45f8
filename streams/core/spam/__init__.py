"""Burst-spam detection (METRICS.md, "Spam rules"): pure, synchronous, over plain-dict events.

``SpamDetector`` runs the rules R1–R8 of ``SpamConfig.enabled`` over a partition's events and
snapshots and raises ``Alert`` s (one per rule, actor and window). One module per job:
``urls`` (canonical URLs), ``minhash`` (near-duplicate texts), ``spans`` (trailing windows),
``contacts`` (prior interaction), ``frame`` (a batch as rules see it), one module per rule.
"""

from streams.core.spam.alerts import Alert, AlertLog, Evidence, alert_id
from streams.core.spam.config import RULES, SEVERITIES, SpamConfig
from streams.core.spam.detector import SpamDetector
from streams.core.spam.minhash import MinHasher, Sketches, jaccards, near_duplicates, shingles
from streams.core.spam.urls import canonical_url, canonical_urls

__all__ = [
    "RULES",
    "SEVERITIES",
    "Alert",
    "AlertLog",
    "Evidence",
    "MinHasher",
    "Sketches",
    "SpamConfig",
    "SpamDetector",
    "alert_id",
    "canonical_url",
    "canonical_urls",
    "jaccards",
    "near_duplicates",
    "shingles",
]
