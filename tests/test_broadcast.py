"""The broadcast reader on the real broker: every snapshot of every partition reaches every
worker, and ``sync`` returns only once the snapshots published before it are handed over."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from streams import kafka_clients
from streams.agents.broadcast import Broadcast
from streams.config import Settings, load_settings
from streams.publish import Publisher
from streams.topics import ensure_topics
from tests.test_schemas import NOW, SNAPSHOT
from tests.test_spine import worker_env


def snapshot(i: int, followers: int) -> dict[str, Any]:
    return {**SNAPSHOT, "snapshot_id": f"s{i}", "account": f"a{i % 40}", "ts": NOW + i,
            "followers": followers}  # fmt: skip


def test_every_partition_is_read_and_sync_waits_for_what_was_published(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    env = {**worker_env(kafka_bootstrap, f"chdb://{tmp_path}", run_id, tmp_path),
           "RAPPORT_KAFKA__PARTITIONS": "4"}  # fmt: skip
    settings = load_settings(env=env, cwd=tmp_path)
    ensure_topics(settings)
    first = [snapshot(i, 10 * i) for i in range(200)]
    with Publisher(settings) as publisher:
        for s in first:
            publisher.snapshot(s)
    seen: list[dict[str, Any]] = []

    async def scenario() -> tuple[int, int]:
        broadcast = Broadcast(settings, seen.extend)
        task = asyncio.create_task(broadcast.run())
        try:
            await asyncio.wait_for(broadcast.sync(), 60)
            after_first = len(seen)
            with Publisher(settings) as publisher:  # published now: the next sync waits for it
                for i in range(200, 260):
                    publisher.snapshot(snapshot(i, 7))
            await asyncio.wait_for(broadcast.sync(), 60)
            # caught up, the reader long-polls (500 ms when nothing is new): a sync must not
            # queue behind that fetch (20 syncs took ~5 s that way, the worker idle)
            loop = asyncio.get_running_loop()
            started = loop.time()
            for _ in range(20):
                await broadcast.sync()
            assert loop.time() - started < 2.5
            return after_first, len(seen)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await broadcast.close()

    after_first, after_second = asyncio.run(scenario())
    assert after_first == 200 and after_second == 260
    assert sorted(s["snapshot_id"] for s in seen) == sorted(f"s{i}" for i in range(260))
    assert spread(settings, settings.topic("snapshots")) == 4  # so every partition was read


def spread(settings: Settings, topic: str) -> int:
    """How many partitions of ``topic`` hold messages."""
    from kafka import TopicPartition

    consumer = kafka_clients.consumer(settings)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(1 for end in consumer.end_offsets(parts).values() if end > 0)
    finally:
        consumer.close()
