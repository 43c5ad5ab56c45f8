"""The page: ``/`` (live alerts, responsiveness, tier mixing, rich club) and
``/accounts/<name>`` (one account), one HTML file whose script draws everything from the JSON
API; its scripts, styles and the vendored Chart.js are under ``/static/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
from faust.web import Request, Response, View

STATIC = Path(__file__).resolve().parent.parent / "webui" / "static"


def install(app: faust.App) -> None:
    index = (STATIC / "index.html").read_text(encoding="utf-8")

    # Registered before Faust's own blueprints (applied when the server starts), so this "/"
    # is the one aiohttp resolves, not Faust's {"status": "OK"} index.
    @app.page("/")
    class IndexPage(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            return self.html(index)

    @app.page("/accounts/{account:.+}")
    class AccountPage(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            return self.html(index)

    app.web.add_static("/static/", STATIC)
