"""Two ways to talk to ClickHouse behind one small interface.

``NativeBackend`` speaks the native protocol to a server (clickhouse-driver, columnar inserts);
``ChdbBackend`` runs ClickHouse in-process (chDB). Queries use clickhouse-driver's
``%(name)s`` parameters on both, bound client-side (``sinks.sql``), so SQL written once runs
on either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sinks.sql import bind
from sinks.url import ClickHouseTarget
from streams.errors import RapportError


class SinkUnavailable(RapportError):
    """ClickHouse cannot be reached (down, refused, timed out): retry later."""


class Backend(Protocol):
    """What the sink and reports need of ClickHouse."""

    target: ClickHouseTarget
    version: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; return the rows of a SELECT (empty for DDL)."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows (tuples in ``columns`` order) into ``database.table``."""
        ...

    def close(self) -> None: ...


class NativeBackend:
    """A ClickHouse server over the native protocol."""

    def __init__(self, target: ClickHouseTarget, connect_timeout: float = 5.0) -> None:
        from clickhouse_driver import Client
        from clickhouse_driver.errors import NetworkError, SocketTimeoutError

        self.target = target
        self._network_errors = (NetworkError, SocketTimeoutError, OSError, EOFError)
        self._client = Client(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            secure=target.secure,
            verify=target.verify,
            connect_timeout=connect_timeout,
            send_receive_timeout=300,
            settings={"strings_as_bytes": False},
        )
        rows = self._run("SELECT version()")
        self.version = str(rows[0][0])
        self._run(f"CREATE DATABASE IF NOT EXISTS {target.database}")

    def _run(self, sql: str, data: Any = None, columnar: bool = False) -> list[tuple[Any, ...]]:
        try:
            if data is None:
                return list(self._client.execute(sql))
            self._client.execute(sql, data, columnar=columnar)
            return []
        except self._network_errors as exc:
            self._client.disconnect()
            raise SinkUnavailable(
                f"ClickHouse at {self.target.display()} is unreachable: {exc}"
            ) from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._run(bind(sql, params))

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        by_column = [list(col) for col in zip(*rows, strict=True)]
        sql = f"INSERT INTO {self.target.database}.{table} ({', '.join(columns)}) VALUES"
        self._run(sql, by_column, columnar=True)

    def close(self) -> None:
        self._client.disconnect()


class ChdbBackend:
    """ClickHouse embedded in this process (chDB); one process owns a data directory."""

    def __init__(self, target: ClickHouseTarget) -> None:
        from chdb import session

        self.target = target
        try:
            self._session = session.Session(target.path)
        except RuntimeError as exc:
            raise RapportError(
                f"cannot open chDB at {target.path}: {exc}. chDB allows one process per data "
                "directory: while a worker owns it, query through the worker "
                "(rapport sql / rapport report use its HTTP API)"
            ) from exc
        self.version = str(self._query("SELECT version() AS v")[0][0])
        self._query(f"CREATE DATABASE IF NOT EXISTS {target.database}")

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        table = self._session.query(sql, "ArrowTable")
        if table is None or table.num_columns == 0:
            return []
        return list(zip(*(col.to_pylist() for col in table.columns), strict=True))

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._query(bind(sql, params))

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        lines = "\n".join(json.dumps(dict(zip(columns, row, strict=True))) for row in rows)
        self._session.query(
            f"INSERT INTO {self.target.database}.{table} ({', '.join(columns)}) "
            f"FORMAT JSONEachRow\n{lines}"
        )

    def close(self) -> None:
        self._session.close()


def connect(target: ClickHouseTarget) -> Backend:
    """Open the backend a sink URL names; create its database if needed."""
    if target.kind == "chdb":
        return ChdbBackend(target)
    return NativeBackend(target)
