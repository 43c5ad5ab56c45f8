"""``GET /metrics``: the worker's Prometheus metrics (``streams.metrics``) in text format."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import metrics


def install(app: faust.App) -> None:
    registry = metrics.of(app).registry

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            body = generate_latest(registry)
            return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})
