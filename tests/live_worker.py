"""A real worker with its web server, for the tests of the page and ``/metrics``: start it,
wait until it answers HTTP, feed it real data and a spam burst."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from streams.config import Settings, load_settings
from streams.publish import Publisher
from streams.topics import ensure_topics
from streams.worker import WorkerProcess
from tests.core.helpers import ev
from tests.test_analyze import DATA as COLLEGE_MSG
from tests.test_spine import worker_env

SPAM_URL = "https://deals.example/offer?utm_source=burst"


def start_worker(
    kafka: str, run_id: str, tmp: Path, extra_env: dict[str, str] | None = None
) -> tuple[Settings, WorkerProcess, str]:
    """A worker on embedded chDB under ``tmp``; (settings, process, base URL) once it serves."""
    env = {**worker_env(kafka, f"chdb://{tmp / 'chdb'}", run_id, tmp / "var"), **(extra_env or {})}
    settings = load_settings(env=env, cwd=tmp)
    ensure_topics(settings)
    worker = WorkerProcess(settings, env, tmp / "worker.log").start()
    base = f"http://127.0.0.1:{settings.worker.web_port}"
    deadline = time.monotonic() + 90
    while True:
        assert worker.alive(), (tmp / "worker.log").read_text()[-3000:]
        try:
            get_json(f"{base}/api/health")
            return settings, worker, base
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "the worker's web server never answered"
            time.sleep(0.3)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def publish_college_msg(settings: Settings, lines: int) -> None:
    """The first ``lines`` messages of SNAP's CollegeMsg: real conversations for the charts."""
    with Publisher(settings) as publisher:
        for n, line in enumerate(COLLEGE_MSG.read_text().splitlines()[:lines], 1):
            src, dst, ts = line.split()
            publisher.event(ev(f"c{n}", src, dst, int(ts) * 1000, platform="snap"))
        publisher.end_of_input()


def spam_burst(actor: str, targets: int = 60) -> list[dict[str, Any]]:
    """One actor sending the same link to ``targets`` strangers within two minutes: rule R1
    (≥ 10 distinct new targets of one URL within an hour, METRICS.md)."""
    start = int(time.time() * 1000) - 10 * 60_000
    return [
        ev(f"{actor}-{i}", actor, f"{actor}-stranger-{i}", start + i * 2000,
           text=f"hi stranger {i}, great deals at {SPAM_URL}", urls=[SPAM_URL])
        for i in range(targets)
    ]  # fmt: skip


def publish_events(settings: Settings, events: list[dict[str, Any]]) -> None:
    with Publisher(settings) as publisher:
        for event in events:
            publisher.event(event)
        publisher.end_of_input()
