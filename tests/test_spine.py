"""The spine end to end: kafka-python produces, the Faust worker consumes, rows land in
ClickHouse — on the embedded chDB and on a real server — and only then are offsets committed.
Bad messages already in Kafka end in the dead-letter topic and table with their reason — on the
input topic and on the internal by-actor topic alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import schemas
from schemas import codec
from sinks.backends import connect
from streams import kafka_clients
from streams.config import Settings, load_settings
from streams.publish import Publisher
from streams.topics import ensure_topics
from streams.worker import WorkerProcess, consumer_lag
from tests.conftest import free_port
from tests.kafka_read import read_topic

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


def publish(settings: Settings, n: int) -> tuple[list[str], int]:
    """n valid events in envelopes, plus messages the worker must refuse; (good ids, messages)."""
    events: list[dict[str, Any]] = [
        {"event_id": f"spine-{i}", "kind": "MESSAGE", "actor": f"u{i % 13}", "target": f"u{i % 7}",
         "ts": 1_600_000_000_000 + i * 1000, "in_reply_to": None, "conversation_id": None,
         "text": None, "urls": [], "platform": "test", "followers": None, "following": None,
         "posts": None}
        for i in range(n)
    ]  # fmt: skip
    with Publisher(settings, envelope_size=100) as publisher:
        for event in events:
            publisher.event(event)
    producer = kafka_clients.producer(settings, acks="all")
    topic = settings.topic("interactions")
    for value, headers in BAD_MESSAGES:
        producer.send(topic, value=value, headers=headers, partition=0)
    producer.flush()
    producer.close()
    send_foreign_by_actor(settings, 0)
    return [e["event_id"] for e in events], publisher.summary.messages + len(BAD_MESSAGES)


def send_foreign_by_actor(settings: Settings, partition: int) -> None:
    """A message on the internal by-actor topic that no worker wrote."""
    producer = kafka_clients.producer(settings, acks="all")
    producer.send(settings.topic("by-actor"), value=b"\xc1 not msgpack", partition=partition,
                  headers=[("rapport-schema", b"by-actor-msgpack"), ("rapport-source", b"0"),
                           ("rapport-watermark", b"0")])  # fmt: skip
    producer.flush()
    producer.close()


BAD_MESSAGES = [
    (b"\x00garbage", schemas.kafka_headers(schemas.INTERACTION)),  # truncated Avro
    (b"plain text", []),  # no schema header
    (b"x", schemas.kafka_headers(schemas.INTERACTION, version=99)),  # unknown version
]


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
    sent, messages = publish(settings, N)
    assert consumer_lag(settings, [topic]) == messages  # nothing committed before the worker

    worker = WorkerProcess(settings, env, tmp_path / "worker.log").start()
    try:
        worker.wait_drained([topic, settings.topic("by-actor")], timeout=120)
        send_foreign_by_actor(settings, 1)  # the last message of its partition: acked all the same
        worker.wait_drained([settings.topic("by-actor")], timeout=60)
    finally:
        assert worker.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]

    database = run_id if sink == "server" else "rapport"
    queries = {
        "ids": f"SELECT event_id FROM {database}.interactions FINAL ORDER BY event_id",
        "letters": f"SELECT reason_code FROM {database}.dead_letters FINAL ORDER BY reason_code",
    }
    if sink == "chdb":
        found = {k: [str(r[0]) for r in chdb_rows(url, q)] for k, q in queries.items()}
    else:
        backend = connect(settings.clickhouse_target)
        found = {k: [str(r[0]) for r in backend.execute(q)] for k, q in queries.items()}
        backend.execute(f"DROP DATABASE {run_id}")
        backend.close()
    assert found["ids"] == sorted(sent)
    assert found["letters"] == ["bad_avro", "bad_internal", "bad_internal",
                                "unknown_schema_version", "wrong_header"]
    letters = [codec.decode(v, schemas.DEAD_LETTER) for v, _ in
               read_topic(settings, settings.topic("dead-letters"))]  # fmt: skip
    assert sorted(d["reason_code"] for d in letters) == found["letters"]
    assert sorted(d["source"].rsplit("/", 1)[0] for d in letters) == sorted(
        [f"{topic}/0"] * 3 + [f"{settings.topic('by-actor')}/{p}" for p in (0, 1)])
