"""The JSON behind the page's charts: ``rapport report`` as ``GET /api/reports/<name>``, plus
the two figures no report has (account search, latency histogram).

Reports are ``streams.reports.Reports`` over the worker's own connection, so the page, the CLI
and ``rapport report --format json`` give the same numbers.
"""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.web import Request, Response, View

from streams.core.engine import EngineConfig
from streams.errors import RapportError
from streams.query import Querier
from streams.reports import REPORTS, Reports, Scope

# Latency histogram bin edges in seconds: the METRICS.md bands (15 min, 1 h, 24 h) and finer
# steps in between; the last bin holds everything up to the horizon.
LATENCY_EDGES_S = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400)
LATENCY_LABELS = ("<1m", "1-5m", "5-15m", "15m-1h", "1-3h", "3-6h", "6-12h", "12-24h", "1-2d",
                  "≥2d")  # fmt: skip
MAX_LIMIT = 1000


class CachedReports:
    """One ``Reports`` for a few seconds: a page load asks for several reports at once, and
    each would otherwise recompute every account's tier (three scans of the data)."""

    def __init__(self, q: Querier, config: EngineConfig, ttl_seconds: float = 5.0) -> None:
        self.q = q
        self.config = config
        self.ttl = ttl_seconds
        self._reports: Reports | None = None
        self._made = 0.0

    def get(self) -> Reports:
        now = time.monotonic()
        if self._reports is None or now - self._made > self.ttl:
            self._reports, self._made = Reports(self.q, self.config), now
        return self._reports


def scope(query: Any) -> Scope:
    """``?window=&tier=&account=&limit=`` → the report's scope (400 on nonsense)."""
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise RapportError("limit must be an integer") from None
    if not 0 <= limit <= MAX_LIMIT:
        raise RapportError(f"limit must be between 0 and {MAX_LIMIT}")
    return Scope(
        window=query.get("window") or "all", tier=query.get("tier") or None,
        account=query.get("account") or None, limit=limit,
    )  # fmt: skip


def search_accounts(q: Querier, text: str, limit: int = 20) -> list[dict[str, Any]]:
    """Accounts whose name contains ``text`` (any case), most active first."""
    pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    seen: dict[str, int] = {}
    for column in ("actor", "target"):
        for account, n in q.query(
            f"SELECT {column}, count() FROM {q.database}.interactions "
            f"WHERE {column} IS NOT NULL AND lower({column}) LIKE %(p)s GROUP BY {column}",
            {"p": pattern},
        ):
            seen[str(account)] = seen.get(str(account), 0) + int(n)
    ranked = sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"account": a, "interactions": n} for a, n in ranked]


def latency_histogram(q: Querier, account: str | None) -> dict[str, Any]:
    """Answered messages per latency bin, for one responder or everyone (all windows)."""
    bins = ", ".join(f"latency_ms < {edge * 1000}, {i}" for i, edge in enumerate(LATENCY_EDGES_S))
    where, params = ("WHERE responder = %(a)s", {"a": account}) if account else ("", {})
    counts: dict[int, int] = dict(
        q.query(
            f"SELECT multiIf({bins}, {len(LATENCY_EDGES_S)}) AS bin, count() "
            f"FROM {q.database}.reply_records FINAL {where} GROUP BY bin",
            params,
        )
    )
    return {
        "account": account,
        "bins": [{"label": label, "answered": int(counts.get(i, 0))}
                 for i, label in enumerate(LATENCY_LABELS)],
    }  # fmt: skip


def install(app: faust.App, q: Querier, config: EngineConfig) -> None:
    reports = CachedReports(q, config)

    @app.page("/api/reports/{name}")
    class ReportView(View):
        async def get(self, request: Request, name: str) -> Response:
            build = REPORTS.get(name)
            if build is None:
                return self.error(404, f"no report {name!r}; one of {', '.join(REPORTS)}")
            try:
                return self.json(build(reports.get(), scope(request.query)).as_json())
            except RapportError as exc:
                return self.error(400, str(exc))

    @app.page("/api/accounts")
    class AccountSearch(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            text = request.query.get("q", "").strip()
            if not text:
                return self.error(400, "search needs ?q=part-of-a-name")
            return self.json({"accounts": search_accounts(q, text)})

    @app.page("/api/latency")
    class LatencyView(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            return self.json(latency_histogram(q, request.query.get("account") or None))
