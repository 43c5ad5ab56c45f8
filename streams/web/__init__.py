"""The worker's web server (Faust's, on ``worker.web_host:web_port``, loopback unless
configured otherwise): a read-only page, its JSON API, ``/metrics`` and ``/api/sql``.

| route | module |
|---|---|
| ``/``, ``/accounts/<name>``, ``/static/...`` | ``pages`` |
| ``/api/reports/<name>``, ``/api/accounts?q=``, ``/api/latency?account=`` | ``api`` |
| ``/api/alerts``, ``/api/alerts/stream`` (server-sent events) | ``alerts`` |
| ``/metrics`` | ``scrape`` |
| ``/api/sql``, ``/api/health`` | ``sql`` |
"""

from __future__ import annotations

import faust

from sinks.backends import Backend
from streams.config import Settings
from streams.web import alerts, api, pages, scrape, sql
from streams.web.querier import BackendQuerier


def install(app: faust.App, settings: Settings, backend: Backend) -> None:
    q = BackendQuerier(backend)
    pages.install(app)  # first: its "/" must win over Faust's index
    api.install(app, q, settings.engine_config())
    alerts.install(app, q)
    scrape.install(app)
    sql.install(app, backend)
