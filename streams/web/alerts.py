"""Spam alerts for the page: ``GET /api/alerts`` (stored alerts) and ``GET /api/alerts/stream``
(server-sent events: the latest alerts, then each new or updated one as it is stored).

Where live alerts come from: one ``AlertFeed`` per worker polls the ``spam_alerts`` table
(every 0.5 s, one cheap query whoever is watching, and only while someone is) and fans the
changes out to every open stream. Not a hook in the pipeline, because the table has the
alerts of every worker (a partition's alerts are raised by whichever worker owns it), survives
restarts, and is what ``/api/alerts`` and the reports read: the live list never shows an alert
the rest of the page cannot find. The price is a delay of one writer flush
(``worker.batch_seconds``) plus one poll. An alert whose evidence grows (a later
``last_seen``) is sent again with the same ``alert_id``; the page replaces it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, cast

import faust
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from streams.config import parse_duration
from streams.errors import ConfigError, RapportError
from streams.query import Querier

log = logging.getLogger(__name__)
COLUMNS = ("alert_id", "rule", "actor", "severity", "window_start", "window_end", "evidence",
           "first_seen", "last_seen")  # fmt: skip
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
QUEUE_SIZE = 1000  # a client this far behind is dropped (it reconnects and catches up)


def alert_rows(
    q: Querier, where: str = "", params: dict[str, Any] | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Stored alerts, newest ``last_seen`` first, evidence as JSON."""
    rows = q.query(
        f"SELECT {', '.join(COLUMNS)} FROM {q.database}.spam_alerts FINAL {where} "
        f"ORDER BY last_seen DESC, alert_id LIMIT {int(limit)}",
        params,
    )
    out = []
    for row in rows:
        alert = dict(zip(COLUMNS, row, strict=True))
        alert["evidence"] = json.loads(alert["evidence"])
        out.append(alert)
    return out


def filters(query: Any, database: str) -> tuple[str, dict[str, Any], int]:
    """``?since=&rule=&account=&limit=`` → WHERE clause, params, limit.

    ``since`` is an alert time in epoch ms, or a duration (``1h``) back from the newest alert
    (alerts carry event time, which a replayed data set places far from the wall clock).
    """
    conds, params = [], {}
    since = query.get("since")
    if since:
        if since.isdigit():
            conds.append("last_seen >= %(since)s")
            params["since"] = int(since)
        else:
            try:
                params["back"] = parse_duration(since)
            except ConfigError as exc:
                raise RapportError(f"since: {exc}") from None
            newest = f"(SELECT max(last_seen) FROM {database}.spam_alerts)"
            conds.append(f"last_seen >= {newest} - %(back)s")
    for key, column in (("rule", "rule"), ("account", "actor")):
        if query.get(key):
            conds.append(f"{column} = %({key})s")
            params[key] = query[key]
    try:
        limit = max(1, min(int(query.get("limit", 100)), 1000))
    except ValueError:
        raise RapportError("limit must be an integer") from None
    return ("WHERE " + " AND ".join(conds)) if conds else "", params, limit


class AlertFeed:
    """Polls ``spam_alerts`` while anyone listens; each listener gets every change once."""

    def __init__(self, q: Querier) -> None:
        self.q = q
        self.listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.known: dict[str, int] = {}  # alert_id -> last_seen already sent
        self.task: asyncio.Task[None] | None = None

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue of changes from now on; the caller sends what was stored before itself."""
        if self.task is None or self.task.done():
            self.known = self._versions()  # the baseline, taken before the caller's backlog
            self.task = asyncio.ensure_future(self._poll())
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        self.listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self.listeners.discard(queue)

    def close(self) -> None:
        """The web server is stopping: end every stream (a stream would hold it 60 s)."""
        for queue in list(self.listeners):
            self.listeners.discard(queue)
            if queue.full():
                queue.get_nowait()  # make room for the end
            queue.put_nowait(None)
        if self.task is not None:
            self.task.cancel()

    def _versions(self) -> dict[str, int]:
        return {
            str(a): int(v)
            for a, v in self.q.query(
                f"SELECT alert_id, max(last_seen) FROM {self.q.database}.spam_alerts "
                "GROUP BY alert_id"
            )
        }

    async def _poll(self) -> None:
        while self.listeners:
            await asyncio.sleep(POLL_SECONDS)
            try:
                self._publish(self._changes())
            except Exception as exc:  # ClickHouse away for a moment: the next poll retries
                log.warning("alert feed: %s: %s", type(exc).__name__, exc)

    def _changes(self) -> list[dict[str, Any]]:
        versions = self._versions()
        changed = [a for a, v in versions.items() if self.known.get(a) != v]
        if not changed:
            return []
        alerts = alert_rows(self.q, "WHERE has(%(ids)s, alert_id)", {"ids": changed},
                            limit=len(changed))  # fmt: skip
        self.known.update({a["alert_id"]: a["last_seen"] for a in alerts})
        return sorted(alerts, key=lambda a: (a["last_seen"], a["alert_id"]))

    def _publish(self, alerts: list[dict[str, Any]]) -> None:
        for queue in list(self.listeners):
            for alert in alerts:
                if queue.full():
                    self.listeners.discard(queue)
                    break
                queue.put_nowait(alert)


def event(alert: dict[str, Any]) -> bytes:
    """One alert as a server-sent event."""
    data = json.dumps(alert, separators=(",", ":"), default=str)
    return f"id: {alert['alert_id']}@{alert['last_seen']}\nevent: alert\ndata: {data}\n\n".encode()


def install(app: faust.App, q: Querier) -> None:
    feed = AlertFeed(q)

    async def close_feed(_: aiohttp_web.Application) -> None:
        feed.close()

    cast(AiohttpWeb, app.web).web_app.on_shutdown.append(close_feed)

    @app.page("/api/alerts")
    class AlertsView(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            try:
                where, params, limit = filters(request.query, q.database)
            except RapportError as exc:
                return self.error(400, str(exc))
            return self.json({"alerts": alert_rows(q, where, params, limit)})

    @app.page("/api/alerts/stream")
    class AlertStream(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            try:
                where, params, limit = filters(request.query, q.database)
            except RapportError as exc:
                return self.error(400, str(exc))
            response = aiohttp_web.StreamResponse(headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            })  # fmt: skip
            queue = feed.subscribe()
            try:
                backlog = alert_rows(q, where, params, limit)
                await response.prepare(cast(aiohttp_web.Request, request))
                for alert in reversed(backlog):
                    await response.write(event(alert))
                while queue in feed.listeners:
                    try:
                        alert = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        await response.write(b": keep-alive\n\n")
                        continue
                    if alert is None:
                        break
                    if _matches(alert, request.query):
                        await response.write(event(alert))
            except ConnectionError:
                pass  # the page went away
            finally:
                feed.unsubscribe(queue)
            return cast(Response, response)


def _matches(alert: dict[str, Any], query: Any) -> bool:
    """Live alerts get the stream's ``rule``/``account`` filters (``since`` is for the
    backlog: anything stored from now on is newer)."""
    return all(
        not query.get(key) or alert[field] == query[key]
        for key, field in (("rule", "rule"), ("account", "actor"))
    )
