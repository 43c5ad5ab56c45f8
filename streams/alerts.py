"""``rapport alerts``: spam alerts from the alerts topic, as they happen, with their evidence.

Reads the topic directly (every partition), so it works next to any number of workers and
needs no database. ``--since`` seeks by the time alerts were published; ``--follow`` keeps
watching. A worker that restarts may publish an alert again: repeats (same ``alert_id``) are
shown once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

import schemas
from schemas import codec
from streams import kafka_clients
from streams.config import Settings, parse_duration

SEVERITY_COLOURS = {"HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan"}


def watch(
    settings: Settings,
    *,
    follow: bool,
    rule: str | None,
    since: str | None,
    poll_seconds: float = 0.5,
) -> Iterator[dict[str, Any]]:
    """Alerts (Avro records as dicts), oldest first; with ``follow``, forever."""
    from kafka import TopicPartition

    topic = settings.topic("alerts")
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False)
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not parts:
            return
        consumer.assign(parts)
        if since:
            start = int(time.time() * 1000) - parse_duration(since)
            found = consumer.offsets_for_times({tp: start for tp in parts})
            ends = consumer.end_offsets(parts)
            for tp in parts:
                hit = found.get(tp)
                consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        else:
            consumer.seek_to_beginning(*parts)
        seen: set[str] = set()
        while True:
            ends = consumer.end_offsets(parts)
            batch = consumer.poll(timeout_ms=int(poll_seconds * 1000))
            records = sorted((m for ms in batch.values() for m in ms), key=lambda m: m.timestamp)
            for m in records:
                alert = codec.decode(m.value, schemas.ALERT)
                if alert["alert_id"] in seen or (rule and alert["rule"] != rule):
                    continue
                seen.add(alert["alert_id"])
                yield alert
            if not follow and not batch and all(consumer.position(tp) >= ends[tp] for tp in parts):
                return
    finally:
        consumer.close()


def describe(alert: dict[str, Any]) -> str:
    """One alert as two or three terminal lines: what, who, when, and the evidence."""
    ev = alert["evidence"]
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(alert["window_start"] / 1000))
    head = click.style(f"{alert['rule']} {alert['severity']:<6}",
                       fg=SEVERITY_COLOURS.get(alert["severity"]), bold=True)  # fmt: skip
    counts = ", ".join(f"{k} {v}" for k, v in sorted(ev["counts"].items()))
    lines = [f"{head} {alert['actor']}  window {when} UTC  ({counts})", f"    {ev['detail']}"]
    sample = ev.get("url") or ev.get("text_sample")
    if sample:
        lines.append(f"    sample: {sample[:120]}")
    if ev["sample_event_ids"]:
        lines.append(f"    events: {', '.join(ev['sample_event_ids'][:5])}")
    return "\n".join(lines)


def show(alerts: Iterator[dict[str, Any]], as_json: bool,
         echo: Callable[[str], None] = click.echo) -> int:  # fmt: skip
    n = 0
    for alert in alerts:
        echo(json.dumps(alert, sort_keys=True) if as_json else describe(alert))
        n += 1
    return n
