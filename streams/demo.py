"""`make demo`: the whole spine on the local stack, narrated.

Starts the stack, a worker in a fresh run (its own topic prefix), publishes real messages
(CollegeMsg from ``../shared``), waits until the worker has stored and committed them all,
stops it and shows what landed in ClickHouse.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

import click

from streams import stack
from streams.config import Settings
from streams.errors import RapportError
from streams.topics import ensure_topics
from streams.worker import WorkerProcess

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "CollegeMsg" / "CollegeMsg.txt"


def run_demo(settings: Settings) -> None:
    from sinks.backends import connect
    from streams.importers import read
    from streams.publish import ProgressBar, Publisher, estimate_items, print_summary

    if not SAMPLE.exists():
        raise RapportError(f"the demo data set is missing: {SAMPLE} (../shared next to the repo)")
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
        click.secho(f"3/4 publishing {SAMPLE.name} (SNAP, real messages) to {topic}", bold=True)
        with (
            Publisher(settings) as publisher,
            ProgressBar("    publish", estimate_items(SAMPLE)) as bar,
        ):
            publisher.run(read("snap", SAMPLE), bar.advance)
        print_summary(publisher.summary, settings)
        started = time.monotonic()
        worker.wait_drained([topic], timeout=300)
        click.echo(
            f"    worker stored and committed everything {time.monotonic() - started:.1f} s later"
        )
    finally:
        worker.stop()

    click.secho("4/4 what landed in ClickHouse", bold=True)
    backend = connect(settings.clickhouse_target)
    db = backend.target.database
    try:
        ((stored, accounts, first, last),) = backend.execute(
            "SELECT count(), uniqExact(actor), toString(min(event_time)), "
            f"toString(max(event_time)) FROM {db}.interactions FINAL WHERE kafka_topic = %(t)s",
            {"t": topic},
        )
    finally:
        backend.close()
    click.echo(f"    {stored:,} interactions from {accounts:,} accounts, {first} .. {last}")
    click.echo(
        "\nQuery them (stop workers first when the sink is the embedded chDB):\n"
        f'    rapport sql "SELECT kind, count() FROM {db}.interactions FINAL GROUP BY kind"\n'
        "Stop the stack:  rapport stack down"
    )
    if stored != publisher.summary.published:
        raise RapportError(
            f"expected {publisher.summary.published} rows, found {stored}; see {log}"
        )
