"""Table engines as objects that write their own ``ENGINE = ...`` clause.

As in Snuba's migrations, a table states *what* it wants (a ReplacingMergeTree ordered by its
key, partitioned by month) and the engine decides *how* to say it for the server at hand:
clauses the server lacks (TTL) are left out, insert deduplication is switched on where it
exists, and on a cluster the engine becomes its Replicated twin with a Distributed table in
front of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sinks.capabilities import Capabilities
from streams.errors import ConfigError

# Blocks whose tokens a plain MergeTree remembers: a crashed batch replayed within this many
# later inserts into the same table is dropped instead of stored twice.
DEDUPLICATION_WINDOW = 1000


@dataclass(frozen=True)
class DdlTarget:
    """Where DDL lands: the database, what its server supports, and the cluster if sharded."""

    database: str
    capabilities: Capabilities
    cluster: str | None = None

    def __post_init__(self) -> None:
        for name in (self.database, self.cluster):
            if name is not None and not name.replace("_", "").isalnum():
                raise ConfigError(f"ClickHouse name {name!r} must be letters, digits and _")

    def on_cluster(self) -> str:
        """The ``ON CLUSTER`` clause (with a leading space), empty on a single server."""
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""


class TableEngine(ABC):
    """One ClickHouse table engine; ``sql`` is everything after ``ENGINE =``."""

    @abstractmethod
    def sql(self, target: DdlTarget, table: str) -> str: ...


class MergeTree(TableEngine):
    """Plain MergeTree; the base of the family, which differs only in engine parameters."""

    family = "MergeTree"

    def __init__(
        self,
        order_by: Sequence[str],
        partition_by: str | None = None,
        ttl: str | None = None,
        settings: Mapping[str, int | str] | None = None,
    ) -> None:
        if not order_by:
            raise ValueError("a MergeTree needs at least one ORDER BY column")
        self.order_by = tuple(order_by)
        self.partition_by = partition_by
        self.ttl = ttl
        self.settings = dict(settings or {})

    def parameters(self) -> list[str]:
        """Engine arguments after the replication ones (version or sum columns)."""
        return []

    def sql(self, target: DdlTarget, table: str) -> str:
        caps = target.capabilities
        arguments = self.parameters()
        name = self.family
        settings = dict(self.settings)
        if target.cluster:
            name = f"Replicated{self.family}"
            # Literal database/table in the path: {database}/{table} macros are too new for 18.x.
            path = f"'/clickhouse/tables/{{shard}}/{target.database}/{table}'"
            arguments = [path, "'{replica}'", *arguments]
        elif caps.non_replicated_deduplication_window:
            settings.setdefault("non_replicated_deduplication_window", DEDUPLICATION_WINDOW)
        clauses = [f"{name}({', '.join(arguments)})"]
        if self.partition_by:
            clauses.append(f"PARTITION BY {self.partition_by}")
        clauses.append(f"ORDER BY ({', '.join(self.order_by)})")
        if self.ttl and caps.ttl:
            clauses.append(f"TTL {self.ttl}")
        if settings:
            clauses.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
        return "\n".join(clauses)


class ReplacingMergeTree(MergeTree):
    """Rows with equal ORDER BY keys collapse to one (the highest ``version``, else the last).

    This is what makes replays harmless where the server cannot deduplicate inserts: read
    with ``FINAL`` or ``argMax`` and a row stored twice counts once.
    """

    family = "ReplacingMergeTree"

    def __init__(
        self,
        order_by: Sequence[str],
        version: str | None = None,
        partition_by: str | None = None,
        ttl: str | None = None,
        settings: Mapping[str, int | str] | None = None,
    ) -> None:
        super().__init__(order_by, partition_by, ttl, settings)
        self.version = version

    def parameters(self) -> list[str]:
        return [self.version] if self.version else []


class SummingMergeTree(MergeTree):
    """Rows with equal keys are summed; only safe for inserts that are deduplicated."""

    family = "SummingMergeTree"

    def __init__(
        self,
        order_by: Sequence[str],
        columns: Sequence[str] = (),
        partition_by: str | None = None,
        ttl: str | None = None,
        settings: Mapping[str, int | str] | None = None,
    ) -> None:
        super().__init__(order_by, partition_by, ttl, settings)
        self.columns = tuple(columns)

    def parameters(self) -> list[str]:
        return [f"({', '.join(self.columns)})"] if self.columns else []


class Distributed(TableEngine):
    """The cluster-wide face of a local table; rows are routed to shards by ``sharding_key``."""

    def __init__(self, local_table: str, sharding_key: str) -> None:
        self.local_table = local_table
        self.sharding_key = sharding_key

    def sql(self, target: DdlTarget, table: str) -> str:
        if not target.cluster:
            raise ValueError(f"Distributed table {table} needs a cluster")
        return (
            f"Distributed({target.cluster}, {target.database}, {self.local_table}, "
            f"{self.sharding_key})"
        )
