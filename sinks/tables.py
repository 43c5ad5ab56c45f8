"""Every table Rapport writes, declared once: name, columns, engine, deduplication key.

Event times are Int64 milliseconds (exact, as in METRICS.md); each table also gets a
``DateTime`` column the server derives on insert, for people reading the tables. All tables
whose rows can be replayed are ReplacingMergeTrees keyed on what makes a row unique, so a
replay after a crash collapses even on servers that cannot deduplicate inserts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinks.capabilities import Capabilities
from sinks.engines import DdlTarget, Distributed, MergeTree, ReplacingMergeTree

LOW_CARDINALITY = "LowCardinality(String)"


@dataclass(frozen=True)
class Column:
    """A column; ``default`` makes the server compute it, so the writer never sends it."""

    name: str
    type: str
    default: str | None = None

    def sql(self, caps: Capabilities) -> str:
        kind = self.type
        if kind == LOW_CARDINALITY and not caps.low_cardinality:
            kind = "String"
        return f"{self.name} {kind}" + (f" DEFAULT {self.default}" if self.default else "")


@dataclass(frozen=True)
class Table:
    """A table the sink writes; in cluster mode a ``_local`` shard table plus a Distributed one."""

    name: str
    columns: tuple[Column, ...]
    engine: MergeTree

    @property
    def dedup_key(self) -> tuple[str, ...]:
        """Rows agreeing on these columns are one row (the ReplacingMergeTree sorting key)."""
        return self.engine.order_by

    @property
    def insert_columns(self) -> tuple[str, ...]:
        """The columns a writer supplies, in the order rows are given."""
        return tuple(c.name for c in self.columns if c.default is None)

    def create_sql(self, target: DdlTarget) -> list[str]:
        """``CREATE TABLE IF NOT EXISTS`` statements for this server (and cluster, if any)."""
        columns = ",\n    ".join(c.sql(target.capabilities) for c in self.columns)
        local = f"{self.name}_local" if target.cluster else self.name
        statements = [
            f"CREATE TABLE IF NOT EXISTS {target.database}.{local}{target.on_cluster()} (\n"
            f"    {columns}\n) ENGINE = {self.engine.sql(target, local)}"
        ]
        if target.cluster:
            # Shard on the dedup key so that a row and its replay meet on the same shard.
            front = Distributed(local, f"cityHash64({', '.join(self.dedup_key)})")
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {target.database}.{self.name}{target.on_cluster()} "
                f"AS {target.database}.{local} ENGINE = {front.sql(target, self.name)}"
            )
        return statements


def _time_of(ms_column: str, name: str) -> Column:
    return Column(name, "DateTime('UTC')", f"toDateTime(intDiv({ms_column}, 1000))")


def _window_columns() -> tuple[Column, ...]:
    return (
        Column("window_ms", "Int64"),  # window length: 3600000 (1 h) or 86400000 (1 d)
        Column("window_start", "Int64"),
    )


_MONTH_OF_WINDOW = "toYYYYMM(window_time)"

INTERACTIONS = Table(
    "interactions",
    (
        Column("event_id", "String"),
        Column("kind", LOW_CARDINALITY),
        Column("actor", "String"),
        Column("target", "Nullable(String)"),
        Column("ts", "Int64"),
        Column("in_reply_to", "Nullable(String)"),
        Column("conversation_id", "Nullable(String)"),
        Column("text", "String"),
        Column("urls", "Array(String)"),
        Column("platform", LOW_CARDINALITY),
        Column("followers", "Nullable(Int64)"),
        Column("following", "Nullable(Int64)"),
        Column("posts", "Nullable(Int64)"),
        Column("kafka_topic", LOW_CARDINALITY),
        Column("kafka_partition", "UInt32"),
        Column("kafka_offset", "UInt64"),
        _time_of("ts", "event_time"),
    ),
    ReplacingMergeTree(order_by=("event_id",), partition_by="toYYYYMM(event_time)"),
)

ACCOUNT_PROFILES = Table(
    "account_profiles",
    (
        Column("account", "String"),
        Column("ts", "Int64"),
        Column("followers", "Int64"),
        Column("following", "Int64"),
        Column("posts", "Int64"),
        Column("created_at", "Nullable(Int64)"),
        Column("tier", LOW_CARDINALITY),
        _time_of("ts", "seen_time"),
    ),
    # Not partitioned: snapshots of one account must meet in one partition to collapse.
    ReplacingMergeTree(order_by=("account",), version="ts"),
)

REPLY_RECORDS = Table(
    "reply_records",
    (
        Column("inbound_event_id", "String"),
        Column("requester", "String"),
        Column("responder", "String"),
        Column("inbound_ts", "Int64"),
        Column("answer_event_id", "String"),
        Column("answer_ts", "Int64"),
        Column("latency_ms", "Int64"),
        Column("requester_tier", LOW_CARDINALITY),
        Column("responder_tier", LOW_CARDINALITY),
        Column("in_thread", "UInt8"),
        _time_of("inbound_ts", "inbound_time"),
    ),
    ReplacingMergeTree(order_by=("inbound_event_id",), partition_by="toYYYYMM(inbound_time)"),
)

WINDOW_AGGREGATES = Table(
    "window_aggregates",
    (
        Column("account", "String"),
        *_window_columns(),
        Column("kafka_partition", "UInt32"),  # each input partition aggregates its own dyads
        Column("requester_tier", LOW_CARDINALITY),  # 'all' for the row over every tier
        Column("inbound", "UInt64"),
        Column("answered", "UInt64"),
        Column("pending", "UInt64"),
        Column("unanswered", "UInt64"),
        Column("answered_15m", "UInt64"),
        Column("answered_1h", "UInt64"),
        Column("answered_24h", "UInt64"),
        Column("p50_ms", "Nullable(Float64)"),  # null while nothing is answered
        Column("p90_ms", "Nullable(Float64)"),
        Column("p99_ms", "Nullable(Float64)"),
        Column("answered_in_thread", "UInt64"),  # answer's in_reply_to/conversation is the message
        Column("conversation_starts", "UInt64"),  # inbound with no A↔B message in the 24 h before
        Column("late", "UInt64"),  # inbound that arrived after window end + grace (not counted)
        Column("final", "UInt8"),  # 1: stream time passed end + H, nothing pending: never changes
        # a re-emitted window carries a higher version: 2 × (records counted) + final, so the
        # same content always has the same version, whatever batches or restarts produced it
        Column("version", "UInt64"),
        _time_of("window_start", "window_time"),
    ),
    ReplacingMergeTree(
        order_by=("account", "window_ms", "window_start", "kafka_partition", "requester_tier"),
        version="version",
        partition_by=_MONTH_OF_WINDOW,
    ),
)

PAIR_COUNTS = Table(
    "pair_counts",
    (
        *_window_columns(),
        Column("src", "String"),
        Column("dst", "String"),
        Column("n", "UInt64"),
        Column("version", "UInt64"),
        _time_of("window_start", "window_time"),
    ),
    ReplacingMergeTree(
        order_by=("window_ms", "window_start", "src", "dst"),
        version="version",
        partition_by=_MONTH_OF_WINDOW,
    ),
)

TIER_MIXING = Table(
    "tier_mixing",
    (
        *_window_columns(),
        Column("kafka_partition", "UInt32"),
        Column("src_tier", LOW_CARDINALITY),
        Column("dst_tier", LOW_CARDINALITY),
        Column("n", "UInt64"),
        Column("version", "UInt64"),
        _time_of("window_start", "window_time"),
    ),
    ReplacingMergeTree(
        order_by=("window_ms", "window_start", "kafka_partition", "src_tier", "dst_tier"),
        version="version",
        partition_by=_MONTH_OF_WINDOW,
    ),
)

SPAM_ALERTS = Table(
    "spam_alerts",
    (
        Column("alert_id", "String"),  # deterministic from (rule, actor, window start)
        Column("rule", LOW_CARDINALITY),
        Column("actor", "String"),
        Column("severity", LOW_CARDINALITY),
        Column("window_start", "Int64"),
        Column("window_end", "Int64"),
        Column("evidence", "String"),  # JSON: counts, sample event ids, URL or text sample
        Column("first_seen", "Int64"),
        Column("last_seen", "Int64"),
        _time_of("window_start", "window_time"),
    ),
    # An alert updated with more evidence replaces the older row: the latest last_seen wins.
    ReplacingMergeTree(order_by=("alert_id",), version="last_seen", partition_by=_MONTH_OF_WINDOW),
)

LATE_EVENTS = Table(
    "late_events",
    (
        *_window_columns(),
        Column("kafka_topic", LOW_CARDINALITY),
        Column("kafka_partition", "UInt32"),
        Column("late", "UInt64"),  # events that arrived after window end + grace
        Column("version", "UInt64"),
        _time_of("window_start", "window_time"),
    ),
    ReplacingMergeTree(
        order_by=("window_ms", "window_start", "kafka_topic", "kafka_partition"),
        version="version",
        partition_by=_MONTH_OF_WINDOW,
    ),
)

DEAD_LETTERS = Table(
    "dead_letters",
    (
        Column("source", "String"),  # a file, a topic/partition, or clickhouse:<table>
        Column("line", "Int64"),  # line number or Kafka offset within the source
        Column("reason_code", LOW_CARDINALITY),
        Column("reason", "String"),
        Column("raw", "String"),
        Column("ts", "Int64"),  # when it was rejected
        _time_of("ts", "rejected_time"),
    ),
    ReplacingMergeTree(
        order_by=("source", "line", "reason_code"),
        ttl="rejected_time + INTERVAL 90 DAY",
    ),
)

SINK_BATCHES = Table(
    "sink_batches",
    (
        Column("table_name", "String"),
        Column("source", "String"),  # the Kafka partitions a batch came from: topic:partition,...
        Column("ranges", "String"),  # topic:partition:first-last,... covered by the batch
        Column("recorded_ns", "UInt64"),
    ),
    # The writer's journal: the last batch recorded per (table, source) before its insert.
    ReplacingMergeTree(order_by=("table_name", "source"), version="recorded_ns"),
)
