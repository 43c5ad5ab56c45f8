"""Generated DDL: per server dialect and cluster mode as text, and executed on both backends."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from sinks.backends import Backend
from sinks.capabilities import Capabilities, probe
from sinks.engines import DdlTarget, MergeTree, ReplacingMergeTree, SummingMergeTree
from sinks.migrations import MIGRATIONS, SCHEMA_MIGRATIONS, migrate
from sinks.tables import DEAD_LETTERS, INTERACTIONS, WINDOW_AGGREGATES, Column, Table
from sinks.url import ClickHouseTarget

OLD = Capabilities((18, 16, 1), False, False, False, False)
MODERN = Capabilities((26, 9, 2, 1), True, True, True, True)
ALL_TABLES = (SCHEMA_MIGRATIONS, *(t for m in MIGRATIONS for t in m.tables))


def test_old_server_gets_plain_types_and_no_ttl_or_dedup_window() -> None:
    sql = "\n".join(s for t in ALL_TABLES for s in t.create_sql(DdlTarget("rapport", OLD)))
    assert "LowCardinality" not in sql
    assert "TTL" not in sql
    assert "non_replicated_deduplication_window" not in sql
    assert "ON CLUSTER" not in sql and "Replicated" not in sql
    assert "kind String," in sql


def test_modern_server_gets_low_cardinality_ttl_and_dedup_window() -> None:
    (dead,) = DEAD_LETTERS.create_sql(DdlTarget("rapport", MODERN))
    assert "reason_code LowCardinality(String)" in dead
    assert "TTL rejected_time + INTERVAL 90 DAY" in dead
    assert "SETTINGS non_replicated_deduplication_window = 1000" in dead


def test_replacing_engine_text() -> None:
    (sql,) = WINDOW_AGGREGATES.create_sql(DdlTarget("rapport", OLD))
    assert sql.startswith("CREATE TABLE IF NOT EXISTS rapport.window_aggregates (\n")
    assert "version UInt64" in sql
    assert "window_time DateTime('UTC') DEFAULT toDateTime(intDiv(window_start, 1000))" in sql
    assert sql.endswith(
        "ENGINE = ReplacingMergeTree(version)\n"
        "PARTITION BY toYYYYMM(window_time)\n"
        "ORDER BY (account, window_ms, window_start, kafka_partition, requester_tier)"
    )


def test_cluster_mode_uses_replicated_local_tables_behind_distributed() -> None:
    local, front = INTERACTIONS.create_sql(DdlTarget("rapport", MODERN, cluster="analytics"))
    assert local.startswith(
        "CREATE TABLE IF NOT EXISTS rapport.interactions_local ON CLUSTER analytics ("
    )
    assert (
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/rapport/interactions_local', '{replica}')"
    ) in local
    # Replicated tables deduplicate inserts by themselves; the plain-MergeTree knob is not theirs.
    assert "non_replicated_deduplication_window" not in local
    assert front == (
        "CREATE TABLE IF NOT EXISTS rapport.interactions ON CLUSTER analytics "
        "AS rapport.interactions_local "
        "ENGINE = Distributed(analytics, rapport, interactions_local, cityHash64(event_id))"
    )


def test_cluster_mode_keeps_version_and_shards_on_the_whole_key() -> None:
    local, front = WINDOW_AGGREGATES.create_sql(DdlTarget("rapport", OLD, cluster="c1"))
    path = "'/clickhouse/tables/{shard}/rapport/window_aggregates_local'"
    assert f"ReplicatedReplacingMergeTree({path}, '{{replica}}', version)" in local
    assert front.endswith(
        "cityHash64(account, window_ms, window_start, kafka_partition, requester_tier))"
    )


def test_summing_and_plain_merge_tree_text() -> None:
    summing = SummingMergeTree(order_by=("k",), columns=("n",), partition_by="k")
    assert summing.sql(DdlTarget("d", OLD), "t") == (
        "SummingMergeTree((n))\nPARTITION BY k\nORDER BY (k)"
    )
    assert summing.sql(DdlTarget("d", OLD, cluster="c"), "t").startswith(
        "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/d/t', '{replica}', (n))"
    )
    plain = MergeTree(
        order_by=("a", "b"), ttl="t + INTERVAL 1 DAY", settings={"index_granularity": 8192}
    )
    assert plain.sql(DdlTarget("d", MODERN), "t") == (
        "MergeTree()\nORDER BY (a, b)\nTTL t + INTERVAL 1 DAY\n"
        "SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000"
    )


def test_bad_names_are_refused() -> None:
    from streams.errors import ConfigError

    with pytest.raises(ConfigError):
        DdlTarget("rapport; DROP", OLD)
    with pytest.raises(ConfigError):
        DdlTarget("rapport", OLD, cluster="a b")


def test_migration_numbers_are_ordered_and_unique() -> None:
    numbers = [m.number for m in MIGRATIONS]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1


def test_every_table_declares_its_dedup_key_among_its_columns() -> None:
    for table in ALL_TABLES:
        names = {c.name for c in table.columns}
        assert set(table.dedup_key) <= names, table.name


# -- executed on real servers ----------------------------------------------------------------


@pytest.fixture
def backend(fresh_backend: Backend) -> Backend:
    return fresh_backend


def test_probe_tells_the_dialects_apart(backend: Backend) -> None:
    caps = probe(backend)
    if backend.version.startswith("18."):
        assert caps == dataclasses.replace(OLD, version=caps.version)
    else:
        assert caps.insert_deduplication_token and caps.non_replicated_deduplication_window
        assert caps.ttl and caps.low_cardinality and caps.deduplicates_inserts


def test_every_table_creates_on_the_real_server(backend: Backend) -> None:
    caps = probe(backend)
    target = DdlTarget(backend.target.database, caps)
    extra = (
        Table("summing", (Column("k", "String"), Column("n", "UInt64")),
              SummingMergeTree(order_by=("k",), columns=("n",))),
        Table("plain", (Column("k", "String"), Column("ts", "Int64")),
              MergeTree(order_by=("k",), partition_by="intDiv(ts, 86400000)",
                        ttl="toDateTime(intDiv(ts, 1000)) + INTERVAL 1 DAY")),
        Table("replacing", (Column("k", "String"), Column("v", "UInt64")),
              ReplacingMergeTree(order_by=("k",), version="v",
                                 settings={"index_granularity": 1024})),
    )
    for table in (*ALL_TABLES, *extra):
        for sql in table.create_sql(target):
            backend.execute(sql)
            backend.execute(sql)  # IF NOT EXISTS: repeatable
    rows = backend.execute(
        "SELECT name, engine FROM system.tables WHERE database = %(db)s",
        {"db": backend.target.database},
    )
    engines = dict(rows)
    assert engines["interactions"] == "ReplacingMergeTree"
    assert engines["summing"] == "SummingMergeTree"
    assert set(engines) == {t.name for t in (*ALL_TABLES, *extra)}
    kind = backend.execute(
        "SELECT type FROM system.columns WHERE database = %(db)s "
        "AND table = 'interactions' AND name = 'kind'",
        {"db": backend.target.database},
    )[0][0]
    assert kind == ("LowCardinality(String)" if caps.low_cardinality else "String")


class Recorder:
    """Answers every query with no rows and remembers the statements: DDL as text."""

    def __init__(self) -> None:
        self.target = ClickHouseTarget(kind="server", host="ch", database="rapport")
        self.version = "18.16.1"
        self.statements: list[str] = []
        self.inserted: list[tuple[str, list[Any]]] = []

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self.statements.append(sql)
        return []

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.inserted.append((table, [tuple(r) for r in rows]))

    def close(self) -> None:
        pass


def test_migrate_on_a_cluster_creates_the_database_and_tables_everywhere() -> None:
    recorder = Recorder()
    applied = migrate(recorder, cluster="analytics")
    assert [m.number for m in applied] == [m.number for m in MIGRATIONS]
    ddl = [s for s in recorder.statements if s.startswith("CREATE")]
    assert ddl[0] == "CREATE DATABASE IF NOT EXISTS rapport ON CLUSTER analytics"
    assert all(" ON CLUSTER analytics" in s for s in ddl)
    assert sum("ENGINE = Distributed(" in s for s in ddl) == len(ALL_TABLES)
    assert recorder.inserted[0] == ("schema_migrations", [(1, MIGRATIONS[0].name)])
