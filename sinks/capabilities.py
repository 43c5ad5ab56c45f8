"""What the ClickHouse behind a backend can do, probed once from its system tables.

DDL and inserts differ between the old servers still in the field (18.16: no TTL, no insert
deduplication tokens, LowCardinality behind an experimental flag) and current ClickHouse or
chDB. We look the features up instead of trying them because old servers accept unknown
settings silently, so "it did not fail" proves nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sinks.backends import Backend


@dataclass(frozen=True)
class Capabilities:
    """Server features the sink adapts to; every flag False is the safe, oldest dialect."""

    version: tuple[int, ...]
    insert_deduplication_token: bool  # per-insert token: a retried batch is dropped, not doubled
    non_replicated_deduplication_window: bool  # block dedup on plain (non-replicated) MergeTree
    ttl: bool  # table TTL clauses
    low_cardinality: bool  # LowCardinality(...) columns without an experimental flag

    @property
    def deduplicates_inserts(self) -> bool:
        """Whether a retried insert with the same token is dropped on a single server."""
        return self.insert_deduplication_token and self.non_replicated_deduplication_window


def _parse_version(text: str) -> tuple[int, ...]:
    """``'18.16.1'`` → ``(18, 16, 1)``; suffixes such as ``-stable`` are ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:4])


def probe(backend: Backend) -> Capabilities:
    """Read the server's settings tables once and say which features it has."""
    settings = dict(
        backend.execute(
            "SELECT name, value FROM system.settings WHERE name IN "
            "('insert_deduplication_token', 'allow_experimental_low_cardinality_type')"
        )
    )
    tree_settings = {
        name
        for (name,) in backend.execute(
            "SELECT name FROM system.merge_tree_settings WHERE name IN "
            "('non_replicated_deduplication_window', 'merge_with_ttl_timeout')"
        )
    }
    has_low_cardinality = bool(
        backend.execute("SELECT name FROM system.data_type_families WHERE name = 'LowCardinality'")
    )
    return Capabilities(
        version=_parse_version(backend.version),
        insert_deduplication_token="insert_deduplication_token" in settings,
        non_replicated_deduplication_window="non_replicated_deduplication_window" in tree_settings,
        # TTL and its merge setting arrived together (19.6); no table lists TTL support itself.
        ttl="merge_with_ttl_timeout" in tree_settings,
        # 18.x knows the type but rejects it unless this flag is on; later versions drop the flag.
        low_cardinality=has_low_cardinality
        and settings.get("allow_experimental_low_cardinality_type", "1") != "0",
    )
