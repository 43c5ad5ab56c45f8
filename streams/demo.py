"""`make demo`: the whole spine on the local stack, narrated.

Starts the stack, a worker in a fresh run (its own topic prefix), publishes real messages
(CollegeMsg when ``../shared`` is there, synthetic otherwise), waits until the worker has
committed them all, stops it and shows what landed in ClickHouse.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import click

from streams import kafka_clients, stack
from streams.config import Settings
from streams.topics import ensure_topics
from streams.worker import WorkerProcess

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "CollegeMsg" / "CollegeMsg.txt"


def sample_lines(n: int) -> Iterator[bytes]:
    if SAMPLE.exists():
        with SAMPLE.open("rb") as fh:
            for i, line in enumerate(fh):
                if i >= n:
                    return
                yield line.rstrip(b"\n")
    else:
        for i in range(n):
            yield f"{i % 97} {i % 89} {1082040961 + i * 60}".encode()


def run_demo(settings: Settings, events: int) -> None:
    from sinks.backends import connect

    click.secho("1/4 local stack", bold=True)
    for name, what in stack.up(settings, ("kafka",)):
        click.echo(f"    {name:<11} {what}")
    run = f"demo-{uuid.uuid4().hex[:8]}"
    settings = dataclasses.replace(
        settings, kafka=dataclasses.replace(settings.kafka, topic_prefix=run)
    )
    topic = settings.topic("interactions")
    ensure_topics(settings)

    click.secho(f"2/4 worker (run {run}, sink {settings.clickhouse_target.display()})", bold=True)
    log = settings.var_path / "logs" / f"{run}.log"
    worker = WorkerProcess(
        settings,
        {
            "RAPPORT_KAFKA": settings.kafka.bootstrap,
            "RAPPORT_CLICKHOUSE": settings.clickhouse.url,
            "RAPPORT_KAFKA__TOPIC_PREFIX": run,
        },
        log,
    ).start()
    try:
        click.secho(f"3/4 publishing {events} messages to {topic}", bold=True)
        producer = kafka_clients.producer(settings, linger_ms=20, acks="all")
        started = time.monotonic()
        with click.progressbar(sample_lines(events), length=events, label="    publish") as bar:
            for i, line in enumerate(bar):
                producer.send(topic, key=str(i).encode(), value=line)
        producer.flush()
        producer.close()
        worker.wait_drained([topic], timeout=180)
        elapsed = time.monotonic() - started
        click.echo(f"    all {events} committed by the worker in {elapsed:.1f} s")
    finally:
        worker.stop()

    click.secho("4/4 what landed in ClickHouse", bold=True)
    backend = connect(settings.clickhouse_target)
    try:
        rows = backend.execute(
            f"SELECT partition, count(), min(offset), max(offset) FROM "
            f"{backend.target.database}.raw_messages FINAL WHERE topic = %(t)s "
            "GROUP BY partition ORDER BY partition",
            {"t": topic},
        )
    finally:
        backend.close()
    total = sum(r[1] for r in rows)
    for p, n, lo, hi in rows:
        click.echo(f"    partition {p}: {n} rows (offsets {lo}..{hi})")
    click.echo(f"    total {total} rows for {events} messages published")
    click.echo(
        "\nQuery them:  rapport sql (coming) or, with the worker stopped, chDB at "
        f"{settings.clickhouse_target.display()}\nStop the stack:  rapport stack down"
    )
    if total != events:
        raise click.ClickException(f"expected {events} rows, found {total}; see {log}")
