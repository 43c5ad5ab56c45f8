"""Snapshots for every engine of this worker, whichever partitions it owns.

An engine needs every account's follower counts (tiers), but Faust's agents see only the
partitions assigned to this worker. So every worker also reads all partitions of the snapshots
topic itself, outside the consumer group, from the beginning at each start (a global table, as
Kafka Streams has). Before each batch of
interactions the pipeline calls ``sync``: the snapshots published before that moment are read
first, so a snapshot published before the events it concerns always counts for them, however
the two topics' fetches interleave, on one worker or many.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import schemas
from streams.config import Settings
from streams.decode import decode_records
from streams.errors import RapportError
from streams.kafka_clients import groupless_consumer

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0


class Broadcast:
    """A group-less reader of every snapshots partition; see the module docstring."""

    def __init__(
        self, settings: Settings, on_snapshots: Callable[[list[dict[str, Any]]], None]
    ) -> None:
        self.settings = settings
        self.snapshots_topic = settings.topic("snapshots")
        self.on_snapshots = on_snapshots
        self._consumer: Any = None
        # end offsets are asked on a connection of their own: the broker answers a connection's
        # requests in order, and the reader's keeps a fetch waiting there (up to 500 ms when
        # nothing is new) — a sync before every batch of single-event messages cost ~0.4 s
        self._offsets: Any = None
        self._snapshot_tps: list[Any] = []
        self._started = asyncio.Event()
        self._advanced = asyncio.Event()  # set after each poll: positions may have moved

    async def run(self) -> None:
        """Read forever (a worker task); a lost broker is retried, a refused login is fatal."""
        from aiokafka.errors import KafkaError

        while True:
            try:
                await self._read()
            except KafkaError as exc:
                log.warning("reading snapshots failed (%s); retry in %.0f s", exc,
                            RETRY_SECONDS)  # fmt: skip
                await self.close()
                await asyncio.sleep(RETRY_SECONDS)

    async def sync(self) -> None:
        """Return once every snapshot published before this call has been handed over."""
        await self._started.wait()
        consumer = self._consumer
        ends = await self._offsets.end_offsets(self._snapshot_tps)
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return
            self._advanced.clear()
            await self._advanced.wait()

    async def close(self) -> None:
        self._started.clear()
        for name in ("_consumer", "_offsets"):
            consumer = getattr(self, name)
            if consumer is not None:
                setattr(self, name, None)
                await consumer.stop()

    async def _read(self) -> None:
        from aiokafka import TopicPartition

        self._consumer = consumer = await groupless_consumer(self.settings.kafka)
        self._offsets = await groupless_consumer(self.settings.kafka)
        cluster = await consumer._client.fetch_all_metadata()  # as ``consumer.topics()``
        topic = self.snapshots_topic
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        if not tps:
            raise RapportError(f"topic {topic} is missing")
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._snapshot_tps = tps
        self._started.set()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            now_ms = time.time_ns() // 1_000_000
            for records in batch.values():
                self._snapshots(records, now_ms)
            self._advanced.set()

    def _snapshots(self, records: list[Any], now_ms: int) -> None:
        good: list[dict[str, Any]] = []
        for m in records:  # bad ones are dead-lettered by the snapshots agent, not here
            headers = list(m.headers or ())
            good.extend(decode_records(schemas.SNAPSHOT, m.topic, m.partition, m.offset,
                                       m.value, headers, now_ms)[0])  # fmt: skip
        if good:
            self.on_snapshots(good)
