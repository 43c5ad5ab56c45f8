"""The worker's Prometheus metrics, served at ``/metrics`` by its web server.

One ``Metrics`` per Faust app, each in its own ``CollectorRegistry`` (never the global one), so
a process can run several apps (tests do) without their counters mixing. The pipeline counts
what flows through it; the writer reports its inserts and retries (``sinks.writer.Observer``);
consumer lag and late events are read from the live pipeline at scrape time.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import faust
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from streams.agents.pipeline import Pipeline

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
ROW_BUCKETS = (1, 10, 100, 1_000, 10_000, 50_000, 100_000, 500_000)


class Metrics:
    """Counters and histograms of one worker, and the scrape-time view of its pipeline."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.pipeline: Pipeline | None = None
        self.events_in = Counter(
            "rapport_events_in", "Valid events decoded from Kafka, by topic", ["topic"],
            registry=r,
        )  # fmt: skip
        self.events_out = Counter(
            "rapport_events_out", "Messages the worker produced, by topic", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "rapport_dead_letters", "Refused input or rows, by reason code", ["reason"],
            registry=r,
        )  # fmt: skip
        self.alerts = Counter(
            "rapport_alerts", "Spam alerts raised, by rule", ["rule", "severity"], registry=r
        )
        self.stored_latency = Histogram(
            "rapport_ingest_to_stored_seconds",
            "From a message's Kafka timestamp to its acknowledgement (rows and state stored)",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.checkpoint_seconds = Histogram(
            "rapport_checkpoint_seconds",
            "A checkpoint: event loop held (phase held: emit, store rows, fork) and until its "
            "state is durable (phase saved: pickled by the child, written, producer flushed)",
            ["phase"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.checkpoint_child_cpu = Histogram(
            "rapport_checkpoint_child_cpu_seconds",
            "A checkpoint's pickling: the forked child's CPU seconds (user and system; in "
            "process where fork was refused). While the child lives, every page the event loop "
            "writes is copied: the slow alerts of a loaded worker come in those seconds",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.checkpoint_child_faults = Counter(
            "rapport_checkpoint_child_page_faults",
            "Minor page faults of the checkpoints' pickling children: pages they copied",
            registry=r,
        )  # fmt: skip
        self.state_saved_bytes = Counter(
            "rapport_state_saved_bytes",
            "Bytes of engine state written to the changelog, by kind: whole, or changes (what "
            "changed since the engine's last save, the rest of it whole)",
            ["kind"], registry=r,
        )  # fmt: skip
        self.loop_lag = Histogram(
            "rapport_loop_lag_seconds",
            "How late the event loop ran a short timer: how long one piece of work (a batch, "
            "an insert, a fork) held it without yielding",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.lock_waited = Histogram(
            "rapport_lock_wait_seconds",
            "How long a turn on the pipeline (an agent's batch, a checkpoint) waited for the one "
            "before it, by holder: what a live alert waits behind",
            ["holder"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.lock_held = Histogram(
            "rapport_lock_held_seconds",
            "How long a turn on the pipeline held it, by holder (its awaits included)",
            ["holder"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.insert_seconds = Histogram(
            "rapport_clickhouse_insert_seconds",
            "ClickHouse insert of one batch (retries included), by table", ["table"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_rows = Histogram(
            "rapport_clickhouse_batch_rows", "Rows per ClickHouse insert, by table", ["table"],
            buckets=ROW_BUCKETS, registry=r,
        )  # fmt: skip
        self.rows_inserted = Counter(
            "rapport_clickhouse_rows_inserted", "Rows stored in ClickHouse, by table", ["table"],
            registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "rapport_clickhouse_retries", "ClickHouse calls retried while it was unavailable",
            registry=r,
        )  # fmt: skip
        r.register(_Live(self))

    # --- the pipeline's calls ---

    def dead_letter(self, topic: str, reason: str) -> None:
        self.dead_letters.labels(reason).inc()
        self.events_out.labels(topic).inc()

    def alert(self, topic: str, rule: str, severity: str) -> None:
        self.alerts.labels(rule, severity).inc()
        self.events_out.labels(topic).inc()

    def stored(self, kafka_timestamp: float | None) -> None:
        if kafka_timestamp:
            self.stored_latency.observe(max(0.0, time.time() - kafka_timestamp))

    # --- the writer's calls (sinks.writer.Observer) ---

    def inserted(self, table: str, rows: int, seconds: float) -> None:
        self.insert_seconds.labels(table).observe(seconds)
        self.batch_rows.labels(table).observe(rows)
        self.rows_inserted.labels(table).inc(rows)

    def retried(self) -> None:
        self.retries.inc()


class _Live:
    """Consumer lag and late events, read from the running pipeline when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "rapport_consumer_lag", "Input messages not yet committed by this worker",
            labels=["topic", "partition"],
        )  # fmt: skip
        late = CounterMetricFamily(
            "rapport_late_events", "Events that arrived after their window closed (end + grace)",
            labels=["partition", "window"],
        )  # fmt: skip
        pipeline = self.metrics.pipeline
        if pipeline is not None:
            for (topic, p), n in _lag(pipeline).items():
                lag.add_metric([topic, str(p)], n)
            for engine in sorted(pipeline.partition_engines(), key=lambda e: e.partition):
                p = engine.partition
                by_size: dict[int, int] = {}
                for (size, _), n in engine.late.items():
                    by_size[size] = by_size.get(size, 0) + n
                for size, n in sorted(by_size.items()):
                    late.add_metric([str(p), f"{size // 1000}s"], n)
        yield lag
        yield late


def _lag(pipeline: Pipeline) -> dict[tuple[str, int], int]:
    """High watermark minus committed offset per assigned input partition (Faust's view)."""
    consumer: Any = pipeline.app.consumer
    inputs = set(pipeline.streams)  # the topics the agents read (not the tables' changelogs)
    try:
        assigned = [tp for tp in consumer.assignment() if tp.topic in inputs]
    except Exception:  # not started yet, or stopping: no partitions to report
        return {}
    out = {}
    for tp in assigned:
        high = consumer.highwater(tp)
        if high is not None:
            out[(tp.topic, tp.partition)] = max(0, high - (consumer._committed_offset[tp] or 0))
    return out


_BY_APP: weakref.WeakKeyDictionary[faust.App, Metrics] = weakref.WeakKeyDictionary()


def of(app: faust.App) -> Metrics:
    """The app's metrics, created on first use."""
    found = _BY_APP.get(app)
    if found is None:
        found = _BY_APP[app] = Metrics()
    return found


def watch(pipeline: Pipeline) -> Metrics:
    """The metrics of the pipeline's app, reading lag and late events from this pipeline."""
    metrics = of(pipeline.app)
    metrics.pipeline = pipeline
    return metrics
