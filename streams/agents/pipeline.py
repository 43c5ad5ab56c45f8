"""The worker's state and its one rule: nothing is acknowledged before it is safe.

Interactions are decoded (bad input → dead-letter topic and table), stored raw, and folded
into their partition's ``PartitionEngine``; snapshots are stored as profiles and feed every
engine's tiers. Rows go through one ``Writer``. A **checkpoint** (every
``worker.checkpoint_seconds``, and as soon as input pauses) stores every buffered row, emits
the figures of open windows, saves each changed engine to the changelog-backed table and
flushes the producer; only then are the messages it covers acknowledged, so Faust commits
nothing that ClickHouse and the saved state do not both have. After a crash or rebalance an
engine restarts from its checkpoint and skips the messages it already covers; replayed rows
collapse in ClickHouse (see ``sinks.writer`` and the versions in ``streams.core.engine``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import faust

import schemas
from schemas import codec
from sinks.backends import Backend
from sinks.tables import (
    ACCOUNT_PROFILES,
    DEAD_LETTERS,
    INTERACTIONS,
    LATE_EVENTS,
    PAIR_COUNTS,
    REPLY_RECORDS,
    SPAM_ALERTS,
    TIER_MIXING,
    WINDOW_AGGREGATES,
    Table,
)
from sinks.writer import BackpressureError, DeadLetter, SinkDown, Writer
from streams.agents.checkpoints import EngineStore
from streams.agents.deliveries import Delivery, DeliveryCheck, Record, Refill, let_commits_pass
from streams.config import Settings
from streams.core.engine import Output, PartitionEngine
from streams.core.spam import SpamDetector
from streams.core.tiers import follower_tier
from streams.decode import decode_records
from streams.publish import END_OF_INPUT

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0
DERIVED: dict[str, Table] = {
    t.name: t
    for t in (REPLY_RECORDS, WINDOW_AGGREGATES, PAIR_COUNTS, TIER_MIXING, LATE_EVENTS, SPAM_ALERTS)
}
Row = tuple[Any, ...]
Offsets = dict[tuple[str, int], int]


def interaction_row(event: dict[str, Any], topic: str, partition: int, offset: int) -> Row:
    return (
        event["event_id"], event["kind"], event["actor"], event["target"], event["ts"],
        event["in_reply_to"], event["conversation_id"], event["text"] or "", event["urls"],
        event["platform"], event["followers"], event["following"], event["posts"],
        topic, partition, offset,
    )  # fmt: skip


def profile_row(snap: dict[str, Any], bounds: tuple[int, ...]) -> Row:
    return (snap["account"], snap["ts"], snap["followers"], snap["following"], snap["posts"],
            snap["created_at"], follower_tier(snap["followers"], bounds))  # fmt: skip


def dead_letter_row(letter: dict[str, Any]) -> Row:
    raw = letter["raw"].decode("utf-8", "replace")
    return (letter["source"], letter["line"] or 0, letter["reason_code"], letter["reason"],
            raw, letter["ts"])  # fmt: skip


class Pipeline:
    """Engines per input partition, the writer, and the acknowledgement bookkeeping."""

    def __init__(self, app: faust.App, settings: Settings, backend: Backend) -> None:
        self.app = app
        self.settings = settings
        self.config = settings.engine_config()
        self.interactions_topic = settings.topic("interactions")
        self.dead_letters = app.topic(
            settings.topic("dead-letters"), key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw",
        )  # fmt: skip
        self.alerts = app.topic(
            settings.topic("alerts"), key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw",
        )  # fmt: skip
        # profile alerts (R8) from snapshots, once per worker rather than in every engine
        self.profile_rule = SpamDetector(replace(self.config.spam, enabled=("R8",)))
        self.store = EngineStore(app, settings)
        self.engines: dict[int, PartitionEngine] = {}
        self.checkpointed: dict[int, int] = {}  # partition -> offset covered by saved state
        self.changed: set[int] = set()  # engines with input since their last save
        self.any_event: dict[int, faust.types.EventT] = {}  # per partition, for table context
        self.profiles: dict[str, dict[str, Any]] = {}  # latest snapshot per account
        self.unacked: list[faust.types.EventT] = []
        self.deliveries = DeliveryCheck()
        self.refill = Refill(settings)
        self.refilled: list[tuple[faust.types.TP, int, int]] = []  # read ourselves: [first, end)
        self.refused: list[DeadLetter] = []
        self.streams: dict[str, faust.StreamT] = {}
        self.lock = asyncio.Lock()
        self.last_input = time.monotonic()
        self.last_checkpoint = time.monotonic()
        self.writer = Writer(
            backend, self.refused.append,
            batch_rows=settings.worker.batch_size, batch_seconds=settings.worker.batch_seconds,
        )  # fmt: skip

    # --- input ---

    async def interactions(self, events: Sequence[faust.types.EventT]) -> None:
        """Decode, store raw and fold into the engines one batch of interaction messages."""
        async with self.lock:
            self.last_input = time.monotonic()
            now_ms = time.time_ns() // 1_000_000
            for p, part in _by_partition(events).items():
                engine = self._engine(p, part[0])
                messages: list[list[dict[str, Any]] | None] = []
                folded = engine.offset
                for event in part:
                    for m in await self._in_order(event.message):
                        headers = _headers(m)
                        at = {(m.topic, m.partition): m.offset}
                        # Raw rows always go to the writer, whose journal drops what is stored;
                        # only folding is skipped for what the engine's checkpoint holds.
                        fold = m.offset > engine.offset
                        folded = max(folded, m.offset) if fold else folded
                        if END_OF_INPUT in headers:
                            await self._add(INTERACTIONS, [], at)  # its position, to be acked
                            if fold:
                                messages.append(None)  # release what waits for reordering
                            continue
                        good, letters = decode_records(
                            schemas.INTERACTION, m.topic, m.partition, m.offset, m.value,
                            headers, now_ms,
                        )  # fmt: skip
                        await self._letters(letters, at)
                        rows = [interaction_row(e, m.topic, p, m.offset) for e in good]
                        await self._add(INTERACTIONS, rows, at)
                        if fold:
                            messages.append(good)
                if messages:
                    out = engine.process(messages)
                    engine.offset = folded
                    self.changed.add(p)
                    await self._output(out)
                self.any_event[p] = part[-1]
            self.unacked.extend(events)
            await self._flush(force=False)
        await self.maybe_checkpoint()

    async def snapshots(self, events: Sequence[faust.types.EventT]) -> None:
        """Store account snapshots as profiles; their follower counts feed every engine."""
        async with self.lock:
            now_ms = time.time_ns() // 1_000_000
            bounds = self.config.tier_bounds
            for event in events:
                for m in await self._in_order(event.message):
                    good, letters = decode_records(
                        schemas.SNAPSHOT, m.topic, m.partition, m.offset, m.value,
                        _headers(m), now_ms,
                    )  # fmt: skip
                    at = {(m.topic, m.partition): m.offset}
                    await self._letters(letters, at)
                    await self._add(ACCOUNT_PROFILES, [profile_row(s, bounds) for s in good], at)
                    self._observe_snapshots(good)
                    if "R8" in self.config.spam.enabled:
                        alerts = self.profile_rule.observe_snapshots(good)
                        await self._output(Output(alerts=alerts))
            self.unacked.extend(events)
            await self._flush(force=False)

    def _observe_snapshots(self, snaps: list[dict[str, Any]]) -> None:
        for snap in snaps:
            seen = self.profiles.get(snap["account"])
            if seen is None or snap["ts"] >= seen["ts"]:
                self.profiles[snap["account"]] = snap
        for p, engine in self.engines.items():
            engine.observe_snapshots(snaps)
            self.changed.add(p)

    async def _in_order(self, m: faust.types.Message) -> list[Record]:
        """The messages to take for a delivered one, in offset order (see ``deliveries``):
        none if it was taken before; the ones Faust skipped, read from Kafka, then it."""
        tp = (m.topic, m.partition)
        self.deliveries.start(tp, cast(Any, self.app.consumer)._committed_offset.get(m.tp))
        expected = self.deliveries.expected(tp)
        verdict = self.deliveries.classify(tp, m.offset)
        if verdict is Delivery.AGAIN:
            return []
        if verdict is Delivery.NEXT or expected is None:
            return [m]
        log.warning("%s:%d: offset %d delivered while %d was expected; reading %d-%d from Kafka",
                    m.topic, m.partition, m.offset, expected, expected, m.offset - 1)  # fmt: skip
        skipped = await self.refill.read(m.topic, m.partition, expected, m.offset)
        self.refilled.append((m.tp, expected, m.offset))
        return [*skipped, m]

    def _engine(self, partition: int, event: faust.types.EventT) -> PartitionEngine:
        engine = self.engines.get(partition)
        if engine is None:
            engine = self.store.load(partition, event)
            if engine is None:
                engine = PartitionEngine(self.config, self.interactions_topic, partition)
            engine.observe_snapshots(list(self.profiles.values()))
            self.engines[partition] = engine
            self.checkpointed[partition] = engine.offset
        return engine

    # --- output ---

    async def _letters(self, letters: list[dict[str, Any]], at: Offsets) -> None:
        for letter in letters:
            await self.dead_letters.send(
                key=letter["source"].encode(),
                value=codec.encode(letter, schemas.DEAD_LETTER),
                headers=schemas.kafka_headers(schemas.DEAD_LETTER),
            )
        await self._add(DEAD_LETTERS, [dead_letter_row(x) for x in letters], at)

    async def _output(self, out: Output) -> None:
        """Alerts to the alerts topic at once (watchers see them live; a replay after a crash
        may repeat one, same ``alert_id``); derived rows to the writer: versioned by content,
        so they need no offsets to be replay-safe."""
        for alert in out.alerts:
            await self.alerts.send(
                key=alert.actor.encode(), value=codec.encode(alert.to_record(), schemas.ALERT),
                headers=schemas.kafka_headers(schemas.ALERT),
            )  # fmt: skip
        for name, rows in out.tables().items():
            if rows:
                await self._add(DERIVED[name], rows, {})

    async def _add(self, table: Table, rows: list[Row], offsets: Offsets) -> None:
        while True:
            try:
                self.writer.add(table, rows, offsets)
                return
            except BackpressureError:
                await self._flush(force=True)

    async def _flush(self, force: bool) -> None:
        """Flush until it works: consumption pauses meanwhile (bounded memory), nothing is
        dropped; rows ClickHouse refused go to the dead-letter topic."""
        while True:
            try:
                self.writer.flush() if force else self.writer.flush_due()
                break
            except SinkDown as exc:
                log.warning("ClickHouse unavailable (%s); pausing, retry in %.0f s", exc,
                            RETRY_SECONDS)  # fmt: skip
                await asyncio.sleep(RETRY_SECONDS)
        while self.refused:
            letter = self.refused.pop()
            log.error("ClickHouse refused a %s row: %s", letter.table, letter.reason)
            await self.dead_letters.send(
                key=letter.table.encode(),
                value=codec.encode(
                    {"source": f"clickhouse:{letter.table}", "line": None,
                     "reason_code": "clickhouse_refused", "reason": letter.reason,
                     "raw": repr(letter.row).encode()[:65536], "raw_size": len(repr(letter.row)),
                     "schema": "row", "ts": time.time_ns() // 1_000_000},
                    schemas.DEAD_LETTER,
                ),
                headers=schemas.kafka_headers(schemas.DEAD_LETTER),
            )  # fmt: skip

    # --- checkpoints ---

    async def maybe_checkpoint(self) -> None:
        """Checkpoint when one is due, or when input paused with anything unacknowledged."""
        now = time.monotonic()
        interval = self.settings.worker.checkpoint_seconds
        paused = now - self.last_input >= self.settings.worker.batch_seconds
        if self.unacked and (now - self.last_checkpoint >= interval or paused):
            await self.checkpoint()

    async def checkpoint(self) -> None:
        async with self.lock:
            for p in sorted(self.changed):
                await self._output(self.engines[p].emit_open())
            await self._flush(force=True)
            for p in sorted(self.changed):
                engine = self.engines[p]
                self.store.save(engine, self.any_event[p])
                self.checkpointed[p] = engine.offset
            self.changed.clear()
            await self.app.producer.flush()
            await self._ack()
            self.last_checkpoint = time.monotonic()

    async def _ack(self) -> None:
        stored = self.writer.stored_offsets()

        def safe(topic: str, partition: int) -> int:
            offset = stored.get((topic, partition), -1)
            if topic == self.interactions_topic:
                offset = min(offset, self.checkpointed.get(partition, -1))
            return offset

        keep = []
        for event in self.unacked:
            m = event.message
            if m.offset <= safe(m.topic, m.partition):
                await self.streams[m.topic].ack(event)
            else:
                keep.append(event)
        self.unacked[:] = keep
        for refilled in list(self.refilled):
            tp, first, end = refilled
            if end - 1 <= safe(tp.topic, tp.partition):
                let_commits_pass(self.app.consumer, tp, first, end)
                self.refilled.remove(refilled)

    def revoked(self, partitions: Iterable[faust.types.TP]) -> None:
        """Partitions another worker now owns: forget their engines and buffered raw rows; the
        new owner restores the engines from the changelog and replays the rest."""
        gone = [(tp.topic, tp.partition) for tp in partitions]
        self.writer.discard(gone)
        self.deliveries.forget(gone)
        self.unacked[:] = [
            e for e in self.unacked if (e.message.topic, e.message.partition) not in gone
        ]
        self.refilled[:] = [r for r in self.refilled if (r[0].topic, r[0].partition) not in gone]
        for topic, p in gone:
            if topic == self.interactions_topic and p in self.engines:
                del self.engines[p]
                self.changed.discard(p)
                self.checkpointed.pop(p, None)


def _by_partition(events: Sequence[faust.types.EventT]) -> dict[int, list[faust.types.EventT]]:
    out: dict[int, list[faust.types.EventT]] = {}
    for e in events:
        out.setdefault(e.message.partition, []).append(e)
    return out


def _headers(m: Record) -> list[tuple[str, bytes]]:
    h = m.headers or []
    return list(h.items()) if isinstance(h, Mapping) else list(h)
