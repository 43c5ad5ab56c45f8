"""Snapshots and alerts for every engine of this worker, whichever partitions it owns.

An engine needs every account's follower counts (tiers) and every spam alert (spam-adjusted
figures), but Faust's agents see only the partitions assigned to this worker, and alerts are
raised on whichever worker owns the actor's by-actor partition. So every worker also reads all
partitions of the snapshots and alerts topics itself, outside the consumer group, from the
beginning at each start (a global table, as Kafka Streams has). Before each batch of
interactions the pipeline calls ``sync``: the snapshots published before that moment are read
first, so a snapshot published before the events it concerns always counts for them, however
the two topics' fetches interleave, on one worker or many.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import schemas
from schemas import codec
from streams.config import Settings
from streams.decode import decode_records
from streams.errors import RapportError
from streams.kafka_security import LoginWatch, client_options

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0


class AlertSpan(NamedTuple):
    """What the engines' spam flags need of an alert read back from the alerts topic."""

    actor: str
    first_seen: int
    window_end: int


class Broadcast:
    """A group-less reader of every snapshots and alerts partition; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        on_snapshots: Callable[[list[dict[str, Any]]], None],
        on_alerts: Callable[[list[AlertSpan]], None],
    ) -> None:
        self.settings = settings
        self.snapshots_topic = settings.topic("snapshots")
        self.alerts_topic = settings.topic("alerts")
        self.on_snapshots = on_snapshots
        self.on_alerts = on_alerts
        self._consumer: Any = None
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
                log.warning("reading snapshots and alerts failed (%s); retry in %.0f s", exc,
                            RETRY_SECONDS)  # fmt: skip
                await self.close()
                await asyncio.sleep(RETRY_SECONDS)

    async def sync(self) -> None:
        """Return once every snapshot published before this call has been handed over."""
        await self._started.wait()
        consumer = self._consumer
        ends = await consumer.end_offsets(self._snapshot_tps)
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return
            self._advanced.clear()
            await self._advanced.wait()

    async def close(self) -> None:
        self._started.clear()
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def _read(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        kafka = self.settings.kafka
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", **client_options(kafka),
        )  # fmt: skip
        with LoginWatch(kafka) as watch:
            try:
                await consumer.start()
            except Exception:
                await consumer.stop()
                error = watch.error()
                if error is not None:
                    raise error from None
                raise
        self._consumer = consumer
        cluster = await consumer._client.fetch_all_metadata()  # as ``consumer.topics()``
        tps = [TopicPartition(t, p) for t in (self.snapshots_topic, self.alerts_topic)
               for p in sorted(cluster.partitions_for_topic(t) or ())]  # fmt: skip
        if not tps:
            raise RapportError(f"topics {self.snapshots_topic} and {self.alerts_topic} are missing")
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._snapshot_tps = [tp for tp in tps if tp.topic == self.snapshots_topic]
        self._started.set()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            now_ms = time.time_ns() // 1_000_000
            for tp, records in batch.items():
                if tp.topic == self.snapshots_topic:
                    self._snapshots(records, now_ms)
                else:
                    self._alerts(records)
            self._advanced.set()

    def _snapshots(self, records: list[Any], now_ms: int) -> None:
        good: list[dict[str, Any]] = []
        for m in records:  # bad ones are dead-lettered by the snapshots agent, not here
            headers = list(m.headers or ())
            good.extend(decode_records(schemas.SNAPSHOT, m.topic, m.partition, m.offset,
                                       m.value, headers, now_ms)[0])  # fmt: skip
        if good:
            self.on_snapshots(good)

    def _alerts(self, records: list[Any]) -> None:
        spans = []
        for m in records:
            try:
                a = codec.decode(m.value, schemas.ALERT)
                spans.append(AlertSpan(a["actor"], a["first_seen"], a["window_end"]))
            except (codec.DecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("%s:%d:%d: not an alert (%s); ignored for spam flags", m.topic,
                            m.partition, m.offset, exc)  # fmt: skip
        if spans:
            self.on_alerts(spans)
