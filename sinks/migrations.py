"""Numbered schema migrations, applied once each and recorded in ``schema_migrations``.

A migration's DDL is generated for the server it runs on (capabilities, cluster), so the same
history yields TTLs and LowCardinality on current ClickHouse and the plain dialect on 18.x.
Statements are ``IF NOT EXISTS``, so a run interrupted half-way is safe to repeat.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinks import tables
from sinks.backends import Backend
from sinks.capabilities import probe
from sinks.engines import DdlTarget, ReplacingMergeTree
from sinks.tables import Column, Table


@dataclass(frozen=True)
class Migration:
    """One step of the schema history: the tables it creates."""

    number: int
    name: str
    tables: tuple[Table, ...]

    def statements(self, target: DdlTarget) -> list[str]:
        return [sql for table in self.tables for sql in table.create_sql(target)]


SCHEMA_MIGRATIONS = Table(
    "schema_migrations",
    (
        Column("number", "UInt32"),
        Column("name", "String"),
        Column("applied_at", "DateTime", "now()"),
    ),
    # Two workers migrating at once both record a number; the duplicate collapses.
    ReplacingMergeTree(order_by=("number",)),
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events and sink bookkeeping",
        (tables.INTERACTIONS, tables.ACCOUNT_PROFILES, tables.DEAD_LETTERS, tables.SINK_BATCHES),
    ),
    Migration(2, "responsiveness", (tables.REPLY_RECORDS, tables.WINDOW_AGGREGATES)),
    Migration(
        3,
        "reciprocity and spam",
        (tables.PAIR_COUNTS, tables.TIER_MIXING, tables.SPAM_ALERTS, tables.LATE_EVENTS),
    ),
)


def _applied_numbers(backend: Backend) -> set[int]:
    rows = backend.execute(
        f"SELECT DISTINCT number FROM {backend.target.database}.{SCHEMA_MIGRATIONS.name}"
    )
    return {int(number) for (number,) in rows}


def migrate(backend: Backend, cluster: str | None = None) -> list[Migration]:
    """Apply the migrations not yet recorded, in order; return those applied (none on rerun)."""
    target = DdlTarget(backend.target.database, probe(backend), cluster)
    if cluster:
        backend.execute(f"CREATE DATABASE IF NOT EXISTS {target.database}{target.on_cluster()}")
    for sql in SCHEMA_MIGRATIONS.create_sql(target):
        backend.execute(sql)
    done = _applied_numbers(backend)
    applied = []
    for migration in MIGRATIONS:
        if migration.number in done:
            continue
        for sql in migration.statements(target):
            backend.execute(sql)
        backend.insert(
            SCHEMA_MIGRATIONS.name,
            SCHEMA_MIGRATIONS.insert_columns,
            [(migration.number, migration.name)],
        )
        applied.append(migration)
    return applied
