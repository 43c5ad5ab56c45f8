"""The spine end to end: kafka-python produces, the Faust worker consumes, rows land in
ClickHouse — on the embedded chDB and on a real server — and only then are offsets committed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sinks.backends import connect
from streams import kafka_clients
from streams.config import Settings, load_settings
from streams.topics import ensure_topics
from streams.worker import WorkerProcess, consumer_lag
from tests.conftest import free_port

N = 2_000


def worker_env(kafka: str, sink_url: str, run_id: str, var: Path) -> dict[str, str]:
    return {
        "RAPPORT_KAFKA": kafka,
        "RAPPORT_CLICKHOUSE": sink_url,
        "RAPPORT_KAFKA__TOPIC_PREFIX": run_id,
        "RAPPORT_WORKER__WEB_PORT": str(free_port()),
        "RAPPORT_WORKER__BATCH_SIZE": "500",
        "RAPPORT_VAR": str(var),
    }


def publish(settings: Settings, n: int) -> list[bytes]:
    values = [f"{i} {i % 7} {1082040961 + i}".encode() for i in range(n)]
    producer = kafka_clients.producer(settings, acks="all", linger_ms=5)
    for i, value in enumerate(values):
        producer.send(settings.topic("interactions"), key=str(i).encode(), value=value)
    producer.flush()
    producer.close()
    return values


def chdb_rows(url: str, sql: str) -> list[list[object]]:
    """Read a chDB directory from a fresh process: one process owns a chDB directory."""
    code = (
        "import json,sys\n"
        "from sinks.backends import connect\nfrom sinks.url import parse_clickhouse_url\n"
        f"b = connect(parse_clickhouse_url({url!r}))\n"
        f"print(json.dumps([list(r) for r in b.execute({sql!r})]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("sink", ["chdb", "server"])
def test_message_reaches_clickhouse_then_offset_commits(
    sink: str, kafka_bootstrap: str, clickhouse_server_url: str, run_id: str, tmp_path: Path
) -> None:
    if sink == "chdb":
        url = f"chdb://{tmp_path / 'chdb'}"
    else:
        url = clickhouse_server_url.rsplit("/", 1)[0] + f"/{run_id}"
    env = worker_env(kafka_bootstrap, url, run_id, tmp_path / "var")
    settings = load_settings(env=env, cwd=tmp_path)
    ensure_topics(settings)
    topic = settings.topic("interactions")
    sent = publish(settings, N)
    assert consumer_lag(settings, [topic]) == N  # nothing committed before the worker runs

    worker = WorkerProcess(settings, env, tmp_path / "worker.log").start()
    try:
        worker.wait_drained([topic], timeout=120)
    finally:
        assert worker.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]

    sql = (
        f"SELECT value FROM {run_id if sink == 'server' else 'rapport'}.raw_messages FINAL "
        f"WHERE topic = '{topic}' ORDER BY partition, offset"
    )
    if sink == "chdb":
        stored = [str(r[0]) for r in chdb_rows(url, sql)]
    else:
        backend = connect(settings.clickhouse_target)
        stored = [str(r[0]) for r in backend.execute(sql)]
        backend.execute(f"DROP DATABASE {run_id}")
        backend.close()
    assert len(stored) == N
    assert sorted(stored) == sorted(v.decode() for v in sent)
