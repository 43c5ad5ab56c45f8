"""``rapport analyze PATH --format F``: the one-shot job for a user with an export.

Brings up what it needs (local Kafka unless one is configured; the embedded chDB by default),
publishes the file into a fresh run (its own topic prefix and database), runs a worker until
everything is stored and committed, then prints the reports — and leaves the run's database
queryable. Progress goes to stderr, so ``--json`` output stays clean on stdout.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from sinks.url import with_database
from streams import stack
from streams.config import Settings
from streams.errors import RapportError
from streams.query import LocalQuerier
from streams.reports import Reports, Scope
from streams.stack.process import port_open
from streams.topics import delete_run_topics, ensure_topics
from streams.worker import WorkerProcess, consumer_lag


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_settings(settings: Settings, run: str) -> tuple[Settings, dict[str, str]]:
    """Settings of a fresh run (topic prefix and database ``run``), and the worker's env."""
    url = with_database(settings.clickhouse.url, run.replace("-", "_"))
    port = free_port()
    settings = dataclasses.replace(
        settings,
        kafka=dataclasses.replace(settings.kafka, topic_prefix=run),
        clickhouse=dataclasses.replace(settings.clickhouse, url=url),
        worker=dataclasses.replace(settings.worker, web_port=port),
    )
    env = {
        "RAPPORT_KAFKA": settings.kafka.bootstrap, "RAPPORT_CLICKHOUSE": url,
        "RAPPORT_KAFKA__TOPIC_PREFIX": run, "RAPPORT_WORKER__WEB_PORT": str(port),
        "RAPPORT_KAFKA__PARTITIONS": str(settings.kafka.partitions),
    }  # fmt: skip
    return settings, env


def drop_run(settings: Settings) -> None:
    """A finished run's topics and database (benchmarks, chaos runs)."""
    from sinks.backends import connect

    delete_run_topics(settings)
    backend = connect(settings.clickhouse_target)
    try:
        backend.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_target.database}")
    finally:
        backend.close()


def analyze(
    settings: Settings,
    paths: Sequence[Path],
    fmt: str,
    options: dict[str, Any],
    *,
    quiet: bool = False,
    repeat: int = 1,
    on_half: Callable[[WorkerProcess], WorkerProcess] | None = None,
) -> dict[str, Any]:
    """Publish ``paths`` (``repeat`` times) into a fresh run, process them, return figures.

    ``on_half`` (tests): called once, when half the input is published and acknowledged (the
    worker is mid-stream however fast it keeps up); returns the worker to keep waiting on
    (e.g. a new one after killing the first).
    """
    from streams.importers import read
    from streams.publish import ProgressBar, Publisher, estimate_items

    def say(text: str) -> None:
        if not quiet:
            click.secho(text, bold=True, err=True)

    settings, worker = start_run(settings, "analyze", say)
    started = time.monotonic()
    try:
        published = 0
        half = sum(estimate_items(path) or 0 for path in paths) // 2
        for _ in range(repeat):  # each repeat a separate producer session, as a user would
            with Publisher(settings) as publisher:
                for path in paths:
                    with ProgressBar(f"publish {path.name}", estimate_items(path),
                                     hidden=quiet) as bar:  # fmt: skip

                        def advance(n: int) -> None:
                            nonlocal half, on_half, worker
                            bar.advance(n)
                            half -= n
                            if on_half is not None and half <= 0:
                                publisher.flush()
                                worker, on_half = on_half(worker), None

                        publisher.run(read(fmt, path, **options), advance)
                publisher.end_of_input()
            published += publisher.summary.published
        summary = publisher.summary
        wait_processed(worker, quiet)
        seconds = time.monotonic() - started
    finally:
        worker.stop()
    if published == 0:
        raise RapportError(f"nothing to analyze: every record was rejected ({summary.rejected})")
    q = LocalQuerier(settings)
    try:
        reports = Reports(q, settings.engine_config())
        resp = reports.responsiveness(Scope())
        recip = reports.reciprocity(Scope())
        tiers = reports.tier_mixing(Scope())
        club = reports.rich_club(Scope(limit=0))
        ((stored,),) = q.query(f"SELECT uniqExact(event_id) FROM {q.database}.interactions")
    finally:
        q.close()
    s, r = resp.summary, recip.summary
    return {
        "run": settings.kafka.topic_prefix, "sink": settings.clickhouse_target.display(),
        "published": published, "rejected": summary.rejected, "stored_events": stored,
        "seconds": round(seconds, 1), "events_per_second": round(published / seconds),
        "inbound": s["inbound"], "answered": s["answered"], "pending": s["pending"],
        "unanswered": s["unanswered"], "response_rate": s["rate"],
        "latency_p50_s": s.get("p50_s"), "latency_p90_s": s.get("p90_s"),
        "latency_p99_s": s.get("p99_s"), "directed_pairs": r["directed_pairs"],
        "reciprocity_r": r["r"], "reciprocity_rho": r["rho"],
        "rich_club_rho": club.summary["rho_rc"],
        "reports": {x.title: x.as_json() for x in (resp, recip, tiers, club)},
    }  # fmt: skip


def start_run(
    settings: Settings, kind: str, say: Callable[[str], None]
) -> tuple[Settings, WorkerProcess]:
    """Local Kafka if none is configured or running, a fresh run ``<kind>-<id>`` (its topics
    and database) and its worker."""
    host, _, port = settings.kafka.bootstrap.split(",")[0].rpartition(":")
    if settings.sources.get("kafka.bootstrap", "").startswith("default") and not port_open(
        int(port), host
    ):
        for name, what in stack.up(settings, ("kafka",)):
            say(f"    {name:<11} {what}")
    run = f"{kind}-{uuid.uuid4().hex[:10]}"
    settings, env = run_settings(settings, run)
    ensure_topics(settings)
    log = settings.var_path / "logs" / f"{run}.log"
    say(f"run {run}: sink {settings.clickhouse_target.display()}, worker log {log}")
    return settings, WorkerProcess(settings, env, log).start()


def wait_processed(worker: WorkerProcess, quiet: bool) -> None:
    """Until every published message is stored and committed, spam rules included."""
    s = worker.settings
    _wait(worker, [s.topic("interactions"), s.topic("snapshots")], quiet)
    # the spam rules' input is written while the above is processed, hence complete now
    _wait(worker, [s.topic("by-actor")], quiet, "spam rules")


def _wait(worker: WorkerProcess, topics: list[str], quiet: bool, label: str = "processing") -> None:
    """Until the worker has committed everything, with a progress line on stderr."""
    total = max(1, consumer_lag(worker.settings, topics))
    deadline = time.monotonic() + 1800
    while True:
        if not worker.alive():
            raise RapportError(f"the worker exited; see its log {worker.log}")
        lag = consumer_lag(worker.settings, topics)
        if not quiet:
            sys.stderr.write(f"\r  {label}: {total - lag:,}/{total:,} messages stored and "
                             "committed")  # fmt: skip
            sys.stderr.flush()
        if lag == 0:
            break
        if time.monotonic() > deadline:
            raise RapportError(f"the worker did not finish in 30 min; see its log {worker.log}")
        time.sleep(0.5)
    if not quiet:
        sys.stderr.write("\n")


def kill_and_restart(worker: WorkerProcess) -> WorkerProcess:
    """SIGKILL the worker (no clean shutdown) and start a new one on the same run."""
    assert worker.proc is not None
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()
    return WorkerProcess(worker.settings, worker.env, worker.log).start()


def print_figures(figures: dict[str, Any]) -> None:
    from streams.reports import Report, render

    lines = [
        f"{figures['published']:,} events published ({figures['rejected']:,} rejected), "
        f"{figures['stored_events']:,} stored; {figures['seconds']} s end to end "
        f"({figures['events_per_second']:,} events/s)",
    ]
    click.echo("\n".join(lines))
    for body in figures["reports"].values():
        report = Report(
            body["report"],
            body["summary"],
            {k: v for k, v in body.items() if k not in ("report", "summary")},
        )
        click.echo("\n" + render(report, "table"))
    db = figures["sink"]
    click.echo(
        f"\nThe run stays queryable (sink {db}):\n"
        f"    RAPPORT_CLICKHOUSE='{db}' rapport report responsiveness --window all\n"
        f"    RAPPORT_CLICKHOUSE='{db}' rapport sql \"SELECT count() FROM interactions\"\n"
    )
