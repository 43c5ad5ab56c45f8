"""Read-only queries against the sink, whether or not a worker owns it.

chDB allows one process per data directory. When a running worker owns it, queries go to the
worker's HTTP API (``POST /api/sql``), which runs them on its own connection; otherwise they run
on a connection of this process. Either way the same rows come back, so ``rapport sql`` and
``rapport report`` behave the same with or without a worker.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from sinks.backends import ChdbLocked, connect
from sinks.sql import check_read_only
from streams.config import Settings
from streams.errors import RapportError

Rows = list[tuple[Any, ...]]


class Querier(Protocol):
    database: str

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Rows: ...

    def close(self) -> None: ...


class LocalQuerier:
    """Queries on this process's own connection (chDB or server)."""

    def __init__(self, settings: Settings) -> None:
        self.backend = connect(settings.clickhouse_target)
        self.database = self.backend.target.database

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Rows:
        check_read_only(sql)
        return self.backend.execute(sql, params)

    def close(self) -> None:
        self.backend.close()


class WorkerQuerier:
    """Queries through a running worker's HTTP API."""

    def __init__(self, settings: Settings) -> None:
        w = settings.worker
        self.url = f"http://{w.web_host}:{w.web_port}/api/sql"
        self.database = settings.clickhouse_target.database

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Rows:
        check_read_only(sql)
        body = json.dumps({"query": sql, "params": dict(params or {})}).encode()
        request = urllib.request.Request(
            self.url, body, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise RapportError(f"the worker refused the query: {detail}") from exc
        except OSError as exc:
            raise RapportError(
                f"the sink is owned by another process and its worker API at {self.url} does "
                f"not answer ({exc}); stop that process or start its worker"
            ) from exc
        return [tuple(row) for row in answer["rows"]]

    def close(self) -> None:
        pass


def open_querier(settings: Settings) -> Querier:
    """A local connection, or the worker's API when a worker owns the embedded sink."""
    try:
        return LocalQuerier(settings)
    except ChdbLocked:
        return WorkerQuerier(settings)


def run_sql(backend: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    """The worker side of ``/api/sql``: one read-only, parameterised query → JSON-able rows."""
    sql = body.get("query")
    params = body.get("params") or {}
    if not isinstance(sql, str) or not isinstance(params, dict):
        raise RapportError('expected {"query": "SELECT ...", "params": {...}}')
    check_read_only(sql)
    rows = backend.execute(sql, params)
    return {"rows": [[_plain(v) for v in row] for row in rows]}


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)
