"""Which Kafka deliveries the pipeline takes: every offset of a partition once, in order.

Why check what Faust delivers: around a rebalance faust-streaming resumes the stream partitions
before it seeks them to their committed offsets, so a message fetched in between can reach the
stream twice, or not at all; and its gap bookkeeping then counts the offsets no agent saw as
processed, so a commit skips them and after the next crash their rows are lost (seen in
tests/test_crash.py: one message of 500 events lost per partition). Seeking Faust's consumer
back is no cure (its fetcher runs in another thread and crashes on the change). So the pipeline
keeps, per partition, the next offset it expects: a message below it was taken already; one
above it means messages went missing, and ``Refill`` reads them straight from Kafka.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from streams.config import Settings
from streams.errors import RapportError
from streams.kafka_clients import groupless_consumer

TopicPartition = tuple[str, int]


class Record(Protocol):
    """What the pipeline reads of a message: a Faust ``Message`` or an aiokafka record."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: Any


class Delivery(enum.Enum):
    NEXT = "next"  # the expected offset: take it
    AGAIN = "again"  # taken before (its rows are with the writer): skip it, ack like the first
    MISSING = "missing"  # offsets before it never came: read them first, then take it


class DeliveryCheck:
    """Per partition, the next offset expected."""

    def __init__(self) -> None:
        self._next: dict[TopicPartition, int] = {}

    def start(self, tp: TopicPartition, committed: int | None) -> None:
        """Expect ``committed`` (Kafka's next offset to read) first, unless already tracking."""
        if tp not in self._next and committed is not None:
            self._next[tp] = committed

    def expected(self, tp: TopicPartition) -> int | None:
        return self._next.get(tp)

    def classify(self, tp: TopicPartition, offset: int) -> Delivery:
        """The verdict on a delivered offset; ``NEXT`` and ``MISSING`` move the expectation
        past it (the caller takes the missing offsets before this one)."""
        expected = self._next.get(tp)
        if expected is not None and offset < expected:
            return Delivery.AGAIN
        self._next[tp] = offset + 1
        return Delivery.MISSING if expected is not None and offset > expected else Delivery.NEXT

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions no longer assigned: whoever gets them back starts from their commit."""
        for tp in tps:
            self._next.pop(tp, None)


class Refill:
    """Reads a range of offsets straight from Kafka, outside Faust's consumer (no group)."""

    def __init__(self, settings: Settings, timeout_seconds: float = 30.0) -> None:
        self.settings = settings
        self.timeout_seconds = timeout_seconds
        self._consumer: Any = None

    async def first_offset(self, topic: str, partition: int) -> int:
        """The partition's earliest offset, asked with this reader's own consumer (Faust's
        runs in its own thread, which waits for the agents during a rebalance)."""
        from aiokafka import TopicPartition

        tp = TopicPartition(topic, partition)
        consumer = await self._started()
        offsets = await asyncio.wait_for(consumer.beginning_offsets([tp]), self.timeout_seconds)
        return int(offsets[tp])

    async def read(self, topic: str, partition: int, first: int, end: int) -> list[Record]:
        """Messages with offsets in ``[first, end)`` (offsets that do not exist, such as
        transaction markers, are simply not there)."""
        from aiokafka import TopicPartition

        consumer = await self._started()
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, first)
        out: list[Record] = []
        deadline = time.monotonic() + self.timeout_seconds
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise RapportError(
                    f"{topic}:{partition}: could not read offsets {first}-{end - 1} within "
                    f"{self.timeout_seconds:.0f} s; the worker stops rather than skip them"
                )
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=end - first)
            out.extend(r for r in batch.get(tp, ()) if first <= r.offset < end)
        return out

    async def _started(self) -> Any:
        from aiokafka.errors import KafkaConnectionError

        if self._consumer is None:
            try:
                self._consumer = await groupless_consumer(self.settings.kafka)
            except KafkaConnectionError as exc:
                raise RapportError(
                    f"no Kafka broker answers at {self.settings.kafka.bootstrap} ({exc})"
                ) from None
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


# --- Faust's side: it commits past "gaps" it records itself; the check above decides instead.


def take_over_gaps(consumer: Any) -> None:
    """Stop the consumer from marking offsets as processed that it never delivered: it records
    a gap whenever a fetched offset is above its read offset, which after its own seek to the
    committed offsets includes messages that were dropped (faust-streaming 0.15)."""

    async def ignore(tp: Any, offset_from: int, offset_to: int) -> None:
        return None

    consumer._add_gap = ignore


def shorten_fetch_wait(consumer: Any, wait_ms: int) -> None:
    """Make the consumer's long-poll ``wait_ms`` instead of Faust's fixed 1,500 ms.

    The consumer keeps one fetch in flight per broker, and leaves out of it the partitions
    whose fetched records are not consumed yet; when only quiet partitions are left in, the
    broker holds that fetch the whole wait, and the busy partitions are fetched again only
    after it. Live at ~550 events/s, messages waited up to 1.6 s before an agent took them
    (event → alert p50 2.3 s)."""
    thread = consumer._thread
    create = thread._create_worker_consumer

    def created(transport: Any) -> Any:
        aiokafka_consumer = create(transport)
        aiokafka_consumer._fetch_max_wait_ms = wait_ms  # read when it starts its fetcher
        return aiokafka_consumer

    thread._create_worker_consumer = created


def settle_before_waiting(consumer: Any, settle: Callable[[], Awaitable[None]]) -> None:
    """Let ``settle`` acknowledge what it can before the consumer waits for acknowledgements.

    Faust's stop and its rebalances wait (``wait_empty``) until every message delivered to an
    agent is acknowledged. The pipeline acknowledges at checkpoints, whose timer has stopped
    once the app stops: a stop waited for ``worker.stop_timeout_seconds`` and the next start
    replayed the unacknowledged tail."""
    wait = consumer.wait_empty

    async def wait_empty() -> None:
        await settle()
        await wait()

    consumer.wait_empty = wait_empty


def let_commits_pass(consumer: Any, tp: Any, first: int, end: int) -> None:
    """Offsets ``[first, end)`` the pipeline read itself (no Faust event to ack) and stored:
    commits may now pass them, as they pass acked events."""
    consumer._gap[tp].addi(first, end)
