"""Reports over the sink's tables, on chDB and on the ClickHouse server: spam-adjusted
responsiveness leaves out exactly the messages sent while their sender was under an alert,
whatever the engines knew when they folded them (it is computed at query time)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sinks.backends import Backend
from sinks.migrations import migrate
from sinks.tables import INTERACTIONS
from streams.agents.pipeline import interaction_row
from streams.core.engine import (
    REPLY_RECORD_COLUMNS,
    SPAM_ALERT_COLUMNS,
    WINDOW_AGGREGATE_COLUMNS,
    EngineConfig,
    PartitionEngine,
)
from streams.reports import Reports, Scope
from tests.core.helpers import HOUR, MIN, T0, ev

EVENTS = [
    ev("b1", "B", "A", T0),
    ev("s1", "S", "A", T0 + MIN),  # before S's alert: counts
    ev("a1", "A", "B", T0 + 10 * MIN),  # answers b1 in 10 min
    ev("a2", "A", "S", T0 + 20 * MIN),  # answers s1 in 19 min
    ev("s2", "S", "A", T0 + 2 * HOUR),  # under the alert; answers a2 in 100 min
    ev("x1", "S", "C", T0 + 2 * HOUR + MIN),  # under the alert, never answered
    ev("a3", "A", "S", T0 + 2 * HOUR + 30 * MIN),  # answers s2 in 30 min
    ev("s3", "S", "A", T0 + 3 * HOUR),  # under the alert, never answered; answers a3 in 30 min
]
# S is flagged from first_seen to window_end + the flag hold (1 day by default)
ALERT = ("R1:S:x", "R1", "S", "high", T0 + HOUR, T0 + 2 * HOUR, "{}", T0 + HOUR, T0 + 2 * HOUR)


class BackendQuerier:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.database = backend.target.database

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.backend.execute(sql, params)

    def close(self) -> None:
        pass


def test_spam_adjusted_figures_leave_out_messages_sent_under_an_alert(
    fresh_backend: Backend,
) -> None:
    migrate(fresh_backend)
    engine = PartitionEngine(EngineConfig(), "t", 0)
    out = engine.process([EVENTS, None])
    opened = engine.emit_open()
    fresh_backend.insert("interactions", INTERACTIONS.insert_columns,
                         [interaction_row(e, "t", 0, i) for i, e in enumerate(EVENTS)])  # fmt: skip
    fresh_backend.insert("reply_records", REPLY_RECORD_COLUMNS, out.reply_records)
    fresh_backend.insert("window_aggregates", WINDOW_AGGREGATE_COLUMNS,
                         out.window_aggregates + opened.window_aggregates)  # fmt: skip
    fresh_backend.insert("spam_alerts", SPAM_ALERT_COLUMNS, [ALERT])
    reports = Reports(BackendQuerier(fresh_backend), EngineConfig())

    s = reports.responsiveness(Scope()).summary
    # inbound: b1 s1 s2 s3 to A, a1 to B, a2 a3 to S, x1 to C; answered: b1 s1 a2 s2 a3
    assert (s["inbound"], s["answered"], s["rate"]) == (8, 5, 0.625)
    # s2, s3 and x1 were sent under the alert; left: 5 inbound, 4 answered (b1 10 min, s1 19 min,
    # a2 100 min, a3 30 min: A's messages to S count, A is not flagged)
    assert s["spam_inbound"] == 3
    assert (s["spam_adjusted_rate"], s["spam_adjusted_p50_s"], s["spam_adjusted_p90_s"]) == (
        0.8, 1140.0, 6000.0
    )
    latest_hour = reports.responsiveness(Scope(window="1h")).summary  # T0 + 3 h: s3 alone
    assert (latest_hour["inbound"], latest_hour["spam_inbound"]) == (1, 1)
    assert latest_hour["spam_adjusted_rate"] is None

