"""``rapport analyze`` on CollegeMsg (SNAP, 59,835 real messages) through the real pipeline:
Kafka broker, Faust worker, ClickHouse (chDB and the server), reports.

Expected figures come from an independent event-by-event reference over the raw file (see
tests/core/test_collegemsg.py) and KONECT's published reciprocity. The same figures must come
out after shuffling events by up to a minute, after publishing the file twice, and after the
worker is SIGKILLed half-way and restarted from its checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from streams import kafka_clients
from streams.analyze import analyze, kill_and_restart, run_settings
from streams.config import Settings, load_settings
from streams.publish import Publisher
from streams.query import LocalQuerier
from streams.reports import Reports, Scope
from streams.topics import ensure_topics
from streams.worker import WorkerProcess, consumer_lag
from tests.core.helpers import ev
from tests.test_spine import worker_env

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "CollegeMsg" / "CollegeMsg.txt"
EXPECTED = {
    "inbound": 59_835, "answered": 35_102, "pending": 92, "unanswered": 24_641,
    "directed_pairs": 20_296, "stored_events": 59_835,
}  # fmt: skip
P50_S, P90_S = 2_667, 166_607


def settings_for(kafka: str, url: str, tmp: Path) -> Any:
    return load_settings(env=worker_env(kafka, url, "unused", tmp / "var"), cwd=tmp)


def check(figures: dict[str, Any]) -> None:
    got = {k: figures[k] for k in EXPECTED}
    assert got == EXPECTED
    assert abs(figures["latency_p50_s"] - P50_S) <= 0.01 * P50_S
    assert abs(figures["latency_p90_s"] - P90_S) <= 0.01 * P90_S
    assert round(figures["reciprocity_r"], 4) == 0.6364


@pytest.mark.parametrize("sink", ["chdb", "server"])
def test_analyze_collegemsg_reports_the_published_figures(
    sink: str, kafka_bootstrap: str, clickhouse_server_url: str, tmp_path: Path
) -> None:
    url = f"chdb://{tmp_path / 'chdb'}" if sink == "chdb" else clickhouse_server_url
    figures = analyze(settings_for(kafka_bootstrap, url, tmp_path), [DATA], "snap", {},
                      quiet=True)  # fmt: skip
    print(json.dumps({k: v for k, v in figures.items() if k != "reports"}))
    check(figures)


def test_analyze_same_figures_shuffled_by_up_to_a_minute(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(11)
    lines = DATA.read_text().splitlines()
    shuffled = sorted(lines, key=lambda line: int(line.split()[2]) + rng.uniform(0, 60))
    assert shuffled != lines
    path = tmp_path / "CollegeMsg-shuffled.txt"
    path.write_text("\n".join(shuffled) + "\n")
    url = f"chdb://{tmp_path / 'chdb'}"
    check(analyze(settings_for(kafka_bootstrap, url, tmp_path), [path], "snap", {}, quiet=True))


def test_analyze_same_figures_when_the_file_is_published_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    url = f"chdb://{tmp_path / 'chdb'}"
    figures = analyze(settings_for(kafka_bootstrap, url, tmp_path), [DATA], "snap", {},
                      quiet=True, repeat=2)  # fmt: skip
    assert figures["published"] == 2 * 59_835
    check(figures)


def test_analyze_same_figures_after_the_worker_is_killed_half_way(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    killed: list[int] = []

    def kill(worker: WorkerProcess) -> WorkerProcess:
        """Once the worker has committed part of the first half (so it dies mid-stream, with
        work done and work undone behind its last checkpoint), SIGKILL it and start another."""
        topics = [worker.settings.topic("interactions")]
        published = messages_on(worker.settings, topics[0])
        deadline = time.monotonic() + 300
        while consumer_lag(worker.settings, topics) == published:
            assert time.monotonic() < deadline, "the worker committed nothing in 300 s"
            time.sleep(0.2)
        assert worker.proc is not None
        killed.append(worker.proc.pid)
        return kill_and_restart(worker)

    url = f"chdb://{tmp_path / 'chdb'}"
    env = {"RAPPORT_WORKER__TAKE_MESSAGES": "4", "RAPPORT_WORKER__CHECKPOINT_SECONDS": "0.5"}
    settings = load_settings(
        env={**worker_env(kafka_bootstrap, url, "unused", tmp_path / "var"), **env}, cwd=tmp_path
    )
    figures = analyze(settings, [DATA], "snap", {}, quiet=True, on_half=kill)
    assert killed, "the worker was never killed"
    check(figures)


def messages_on(settings: Settings, topic: str) -> int:
    from kafka import TopicPartition

    consumer = kafka_clients.consumer(settings)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def test_report_and_sql_work_through_the_running_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """chDB allows one process per directory: while the worker owns it, ``rapport report``
    and ``rapport sql`` go through its HTTP API and give what they give once it stopped."""
    base = settings_for(kafka_bootstrap, f"chdb://{tmp_path / 'chdb'}", tmp_path)
    settings, env = run_settings(base, f"live{os.getpid()}")
    ensure_topics(settings)
    worker = WorkerProcess(settings, env, tmp_path / "worker.log").start()
    cli_env = {**os.environ, **env, "RAPPORT_VAR": str(tmp_path / "var")}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "streams.cli", *args], env=cli_env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        with Publisher(settings) as publisher:
            for n, line in enumerate(DATA.read_text().splitlines()[:5000], 1):
                src, dst, ts = line.split()
                publisher.event(ev(f"c{n}", src, dst, int(ts) * 1000, platform="snap"))
            publisher.end_of_input()
        worker.wait_drained([settings.topic("interactions")], timeout=120)
        live = json.loads(cli("report", "responsiveness", "--format", "json"))
        live_sql = cli("sql", "SELECT count() FROM interactions WHERE actor = %(a)s", "-p", "a=1")
    finally:
        assert worker.stop() == 0
    q = LocalQuerier(settings)
    try:
        after = Reports(q).responsiveness(Scope()).as_json()
        ((count,),) = q.query("SELECT count() FROM interactions WHERE actor = '1'")
    finally:
        q.close()
    assert live["summary"]["inbound"] > 0
    assert live == json.loads(json.dumps(after))
    assert live_sql.strip() == str(count)
