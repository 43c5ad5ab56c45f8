"""``POST /api/sql`` and ``GET /api/health``.

``/api/sql`` runs one read-only, parameterised query on the worker's own sink connection: with
the embedded chDB, the worker owns the data directory, so this is how ``rapport sql`` and
``rapport report`` reach it while the worker runs. ``/api/health`` says the worker is up.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from sinks.backends import Backend
from streams.errors import RapportError
from streams.query import run_sql


def install(app: faust.App, backend: Backend) -> None:
    @app.page("/api/sql")
    class SqlView(View):
        async def post(self, request: Request, **kwargs: Any) -> Response:
            try:
                body = await request.json()
                return self.json(run_sql(backend, body))
            except (RapportError, ValueError) as exc:
                return self.error(400, str(exc))
            except Exception as exc:  # a ClickHouse error: the caller's query, not the worker
                return self.error(400, f"{type(exc).__name__}: {exc}")

    @app.page("/api/health")
    class HealthView(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            return self.json({"ok": True, "database": backend.target.database})
