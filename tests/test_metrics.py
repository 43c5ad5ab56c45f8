"""``/metrics`` of a real worker on a real broker: scraped before and after events flow, parsed
with prometheus_client's own parser; the counters must move by exactly what was sent. The same
run checks the JSON log format (every line an object with the run in it)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import faust
from prometheus_client.parser import text_string_to_metric_families

from streams import kafka_clients, metrics
from tests.core.helpers import ev
from tests.live_worker import publish_events, spam_burst, start_worker
from tests.test_spine import BAD_MESSAGES

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
N = 400


def scrape(base: str) -> Samples:
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def until(base: str, done: Callable[[Samples], bool], timeout: float = 60) -> Samples:
    """Scrapes until ``done`` (at most ``timeout`` seconds); the last scrape."""
    deadline = time.monotonic() + timeout
    now = scrape(base)
    while not done(now) and time.monotonic() < deadline:
        time.sleep(0.5)
        now = scrape(base)
    return now


def test_metrics_move_with_the_events(kafka_bootstrap: str, run_id: str, tmp_path: Path) -> None:
    settings, worker, base = start_worker(
        kafka_bootstrap, run_id, tmp_path, {"RAPPORT_WORKER__LOG_FORMAT": "json"}
    )
    topic = settings.topic("interactions")
    try:
        before = scrape(base)
        start = int(time.time() * 1000) - 3_600_000
        chat = [ev(f"{run_id}-{i}", f"u{i % 17}", f"u{i % 11}", start + i * 1000) for i in range(N)]
        # in two parts, the second once the first is saved: later saves of an engine hold only
        # its changes
        publish_events(settings, chat[: N // 2])
        worker.wait_drained([topic], timeout=120)
        until(base, lambda now: total(now, "rapport_state_saved_bytes_total", kind="whole")
              > total(before, "rapport_state_saved_bytes_total", kind="whole"))  # fmt: skip
        publish_events(settings, chat[N // 2 :] + spam_burst(f"{run_id}-spammer"))
        producer = kafka_clients.producer(settings, acks="all")
        for value, headers in BAD_MESSAGES:
            producer.send(topic, value=value, headers=headers, partition=0)
        producer.flush()
        producer.close()
        worker.wait_drained([topic], timeout=120)
        after = until(base, lambda now: total(now, "rapport_alerts_total", rule="R1") >= 1
                      and total(now, "rapport_state_saved_bytes_total", kind="changes") > 0)
    finally:
        assert worker.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    sent = N + 60
    assert moved("rapport_events_in_total", topic=topic) == sent
    assert moved("rapport_clickhouse_rows_inserted_total", table="interactions") == sent
    assert moved("rapport_clickhouse_batch_rows_sum", table="interactions") == sent
    assert moved("rapport_clickhouse_insert_seconds_count", table="interactions") >= 1
    assert moved("rapport_loop_lag_seconds_count") >= 1
    assert moved("rapport_clickhouse_rows_inserted_total", table="spam_alerts") >= 1
    assert moved("rapport_alerts_total", rule="R1", severity="high") >= 1
    assert moved("rapport_events_out_total", topic=settings.topic("alerts")) >= 1
    for reason in ("bad_avro", "wrong_header", "unknown_schema_version"):
        assert moved("rapport_dead_letters_total", reason=reason) == 1, reason
    assert moved("rapport_events_out_total", topic=settings.topic("dead-letters")) == 3
    assert moved("rapport_ingest_to_stored_seconds_count") >= 1
    checkpoints = moved("rapport_checkpoint_seconds_count", phase="saved")
    assert checkpoints >= 1 and moved("rapport_checkpoint_child_cpu_seconds_count") == checkpoints
    assert moved("rapport_checkpoint_child_cpu_seconds_sum") > 0
    assert moved("rapport_checkpoint_child_page_faults_total") > 0
    # the first save of each engine is whole; the by-actor engines' later ones, their changes
    assert moved("rapport_state_saved_bytes_total", kind="whole") > 0
    assert moved("rapport_state_saved_bytes_total", kind="changes") > 0
    assert total(after, "rapport_clickhouse_retries_total") == 0
    lags = {lab: v for (n, lab), v in after.items() if n == "rapport_consumer_lag"}
    assert any(("topic", topic) in lab for lab in lags), lags
    assert sum(v for lab, v in lags.items() if ("topic", topic) in lab) == 0

    lines = [x for x in (tmp_path / "worker.log").read_text().splitlines() if x.strip()]
    records = [json.loads(x) for x in lines]  # every line: one JSON object
    assert records and all(r["run"] == run_id and "partition" in r for r in records)
    assert {"ts", "level", "logger", "message"} <= set(records[0])


def test_each_app_has_its_own_registry() -> None:
    """Several apps in one process (as in tests) count separately."""
    one, two = faust.App("metrics-one"), faust.App("metrics-two")
    metrics.of(one).alert("t.alerts", "R1", "high")
    assert metrics.of(one) is metrics.of(one) and metrics.of(one) is not metrics.of(two)
    labels = {"rule": "R1", "severity": "high"}
    assert metrics.of(one).registry.get_sample_value("rapport_alerts_total", labels) == 1
    assert metrics.of(two).registry.get_sample_value("rapport_alerts_total", labels) is None
