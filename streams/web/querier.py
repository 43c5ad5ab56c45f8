"""The worker's own sink connection as a read-only ``Querier``, for ``Reports`` and the views.

Queries run on the worker's event loop, one at a time, like its inserts: the connection (chDB
or the native client) is not safe to share between threads, and a view waiting a few
milliseconds is better than a second connection that chDB would refuse anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sinks.backends import Backend
from sinks.sql import check_read_only
from streams.query import Rows


class BackendQuerier:
    """Read-only queries on a backend this process already holds."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.database = backend.target.database

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Rows:
        check_read_only(sql)
        return self.backend.execute(sql, params)

    def close(self) -> None:
        """The backend belongs to the worker, which closes it."""
