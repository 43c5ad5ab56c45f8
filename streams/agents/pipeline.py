"""The worker's state and its one rule: nothing is acknowledged before it is safe.

Interactions are decoded (bad input → dead-letter topic and table), stored raw, folded into their
partition's ``PartitionEngine`` and re-keyed into the by-actor topic, whose partitions'
``ActorEngine``s run the spam rules; snapshots are stored as profiles. Every worker also reads all
snapshots (``broadcast``): they feed every engine's tiers. Every delivered offset is checked
(``deliveries``). Rows go through one ``Writer``. A **checkpoint** emits the figures of open
windows, saves the engines due (each every ``worker.checkpoint_seconds``; all as soon as input
pauses; pickled by a forked child, off the event loop) to the changelog-backed table once every
row they emitted is stored, and flushes the producer; only then are the messages they cover
acknowledged, so Faust commits nothing that ClickHouse and the saved state do not both have.
After a crash or rebalance an engine restarts from its checkpoint and skips the messages it
already covers; replayed rows collapse in ClickHouse (see ``sinks.writer`` and the versions in
``streams.core.engine``).
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
from streams import logs, metrics
from streams.agents import by_actor
from streams.agents.broadcast import Broadcast
from streams.agents.checkpoints import EngineStore, Save, State, dump_save
from streams.agents.deliveries import Delivery, DeliveryCheck, Record, Refill, let_commits_pass
from streams.agents.forked import ForkedPickles
from streams.agents.heap import FrozenHeap
from streams.agents.turns import Turns
from streams.config import Settings
from streams.core.actors import END, ActorEngine, Routed
from streams.core.engine import Output, PartitionEngine
from streams.core.spam import SpamDetector
from streams.core.tiers import follower_tier
from streams.decode import decode_records, undecodable
from streams.publish import END_OF_INPUT

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0
KEEP_FOLLOWER_COUNTS = 8  # per account, for engines created later
STALL_SECONDS = 30.0  # nothing delivered this long, yet more to read: partitions sought back
DERIVED: dict[str, Table] = {
    t.name: t
    for t in (REPLY_RECORDS, WINDOW_AGGREGATES, PAIR_COUNTS, TIER_MIXING, LATE_EVENTS, SPAM_ALERTS)
}
Row = tuple[Any, ...]
TopicPartition = tuple[str, int]
Offsets = dict[TopicPartition, int]


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
        self.by_actor_topic = settings.topic("by-actor")
        self.by_actor = app.topic(
            self.by_actor_topic, key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw",
        )  # fmt: skip
        self.store = EngineStore(app, settings)
        self.states: dict[TopicPartition, State] = {}  # engines of both input topics
        self.checkpointed: dict[TopicPartition, int] = {}  # offset covered by saved state
        self.changed: set[TopicPartition] = set()  # states with input since their last save
        self.saved_at: dict[TopicPartition, float] = {}  # monotonic time of each state's save
        self.save_seconds: dict[TopicPartition, float] = {}  # how long its last save took
        self.any_event: dict[TopicPartition, faust.types.EventT] = {}  # for table context
        # one checkpoint at a time (the timer's, a settle's): a save of changes is written
        # after the save it follows
        self.one_save = asyncio.Lock()
        # follower counts by account, (ts, followers) oldest first, the newest few: what an
        # engine created later must be told (the broadcast hands each snapshot over once)
        self.follower_counts: dict[str, list[tuple[int, int]]] = {}
        self.broadcast = Broadcast(settings, self._observe_snapshots)
        self.unacked: list[faust.types.EventT] = []
        self.deliveries = DeliveryCheck()
        self.last_delivery = time.monotonic()  # of any message to any agent
        self.refill = Refill(settings)
        self.refilled: list[tuple[faust.types.TP, int, int]] = []  # read ourselves: [first, end)
        self.refused: list[DeadLetter] = []
        self.streams: dict[str, faust.StreamT] = {}
        self.last_input = time.monotonic()  # when an agent last finished a batch of input
        # why the worker is crashing (a part failed): nothing more is taken, saved or acked
        self.failed: str | None = None
        self.heap = FrozenHeap(settings.worker.gc_full_seconds)
        self.metrics = metrics.watch(self)
        self.lock = Turns(self.metrics.lock_waited, self.metrics.lock_held)
        self.writer = Writer(
            backend, self.refused.append,
            batch_rows=settings.worker.batch_size, batch_seconds=settings.worker.batch_seconds,
            flush_due_seconds=settings.worker.flush_due_seconds, observer=self.metrics,
        )  # fmt: skip

    # --- input ---

    async def interactions(self, events: Sequence[faust.types.EventT]) -> None:
        """Decode, store raw and fold into the engines one batch of interaction messages."""
        if self.failed:
            return
        await self.broadcast.sync()  # snapshots published before these events count for them
        async with self.lock("interactions"):
            now_ms = time.time_ns() // 1_000_000
            for p, part in _by_partition(events).items():
                logs.partition.set(p)
                engine = self._state(self.interactions_topic, p, part[0])
                assert isinstance(engine, PartitionEngine)
                messages: list[list[dict[str, Any]] | None] = []
                routed: list[dict[str, Any]] = []  # for the spam rules, one send per batch
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
                            await self._route(p, routed)
                            await self._route(p, [], END)
                            routed = []
                            if fold:
                                messages.append(None)  # release what waits for reordering
                            continue
                        good, letters = decode_records(
                            schemas.INTERACTION, m.topic, m.partition, m.offset, m.value,
                            headers, now_ms,
                        )  # fmt: skip
                        self.metrics.events_in.labels(m.topic).inc(len(good))
                        await self._letters(letters, at)
                        rows = [interaction_row(e, m.topic, p, m.offset) for e in good]
                        await self._add(INTERACTIONS, rows, at)
                        routed.extend(good)
                        if fold:
                            messages.append(good)
                await self._route(p, routed)
                if messages:
                    out = engine.process(messages)
                    engine.offset = folded
                    self.changed.add((self.interactions_topic, p))
                    await self._output(out)
                self.any_event[(self.interactions_topic, p)] = part[-1]
            logs.partition.set(None)
            self.unacked.extend(events)
            await self._flush(force=False)
            self.last_input = time.monotonic()
            self.heap.batch_done()

    async def snapshots(self, events: Sequence[faust.types.EventT]) -> None:
        """Store account snapshots as profiles and raise profile alerts (R8); the engines get
        their follower counts from the broadcast."""
        if self.failed:
            return
        async with self.lock("snapshots"):
            now_ms = time.time_ns() // 1_000_000
            bounds = self.config.tier_bounds
            for event in events:
                for m in await self._in_order(event.message):
                    good, letters = decode_records(
                        schemas.SNAPSHOT, m.topic, m.partition, m.offset, m.value,
                        _headers(m), now_ms,
                    )  # fmt: skip
                    self.metrics.events_in.labels(m.topic).inc(len(good))
                    at = {(m.topic, m.partition): m.offset}
                    await self._letters(letters, at)
                    await self._add(ACCOUNT_PROFILES, [profile_row(s, bounds) for s in good], at)
                    if "R8" in self.config.spam.enabled:
                        alerts = self.profile_rule.observe_snapshots(good)
                        await self._output(Output(alerts=alerts))
            self.unacked.extend(events)
            await self._flush(force=False)

    async def actors(self, events: Sequence[faust.types.EventT]) -> None:
        """Run the spam rules over one batch of the by-actor topic (see ``core.actors``)."""
        if self.failed:
            return
        async with self.lock("actors"):
            for p, part in _by_partition(events).items():
                state = self._state(self.by_actor_topic, p, part[0])
                assert isinstance(state, ActorEngine)
                messages: list[Routed] = []
                folded = state.offset
                for event in part:
                    for m in await self._in_order(event.message):
                        at = {(m.topic, m.partition): m.offset}
                        await self._add(SPAM_ALERTS, [], at)
                        if m.offset <= state.offset:
                            continue
                        folded = m.offset
                        try:
                            messages.append(by_actor.decode(m.value, _headers(m)))
                        except codec.DecodeError as exc:  # not from a worker: kept, not fatal
                            letter = undecodable(m.topic, m.partition, m.offset, m.value, exc,
                                                 "by-actor", time.time_ns() // 1_000_000)
                            await self._letters([letter], at)
                if folded > state.offset:  # also past a dead letter alone: it gets acked
                    alerts = state.process(messages)
                    state.offset = folded
                    self.changed.add((self.by_actor_topic, p))
                    await self._output(Output(alerts=alerts))
                self.any_event[(self.by_actor_topic, p)] = part[-1]
            self.unacked.extend(events)
            await self._flush(force=False)
            self.last_input = time.monotonic()
            self.heap.batch_done()

    async def _route(
        self, source: int, events: list[dict[str, Any]], watermark: int | None = None
    ) -> None:
        """Re-key events for the spam rules: to the by-actor topic (see ``core.actors``); every
        partition of it hears the source's watermark (default: its newest event time), with
        events or without."""
        if watermark is None:
            if not events:
                return
            watermark = max(e["ts"] for e in events)
        partitions = self.settings.kafka.partitions
        for q, value, headers in by_actor.encode(source, events, watermark, partitions):
            await self.by_actor.send(value=value, partition=q, headers=headers)

    def partition_engines(self) -> list[PartitionEngine]:
        return [s for s in self.states.values() if isinstance(s, PartitionEngine)]

    def _observe_snapshots(self, snaps: list[dict[str, Any]]) -> None:
        """Every snapshot of every partition (the broadcast), for every engine's tiers."""
        for snap in snaps:
            if snap["followers"] is not None:
                counts = self.follower_counts.setdefault(snap["account"], [])
                counts.append((snap["ts"], snap["followers"]))
                counts.sort()
                del counts[:-KEEP_FOLLOWER_COUNTS]
        for engine in self.partition_engines():
            engine.observe_snapshots(snaps)
            self.changed.add((engine.topic, engine.partition))

    async def _next_offset(self, tp: faust.types.TP) -> int:
        """The offset to take next: after the last one taken, else the committed one, else
        (nothing committed: Faust did not seek, and a rebalance can drop what its fetcher had
        read) the partition's first offset."""
        key = (tp.topic, tp.partition)
        if self.deliveries.expected(key) is None:
            committed = cast(Any, self.app.consumer)._committed_offset.get(tp)
            if committed is None:
                committed = await self.refill.first_offset(tp.topic, tp.partition)
            self.deliveries.start(key, committed)
        return cast(int, self.deliveries.expected(key))

    async def rewind_stalled(self) -> None:
        """When the worker is stuck, seek Faust's consumer back to what each partition takes
        next: nothing delivered on any partition for ``STALL_SECONDS`` while the broker holds
        more than was taken. (Faust drops the records of a fetch cut by a rebalance; a later
        message reveals such a gap, but at the end of the input none comes.) Only then: a
        seek while Faust's fetcher is busy can crash it."""
        now = time.monotonic()
        if self.lock.locked() or now - self.last_delivery < STALL_SECONDS:
            return
        consumer = cast(Any, self.app.consumer)
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if tp.topic not in self.streams or high is None:
                continue
            taken = await self._next_offset(tp)
            if taken < high:
                log.warning("%s:%d: nothing delivered for %.0f s while offsets %d-%d wait; "
                            "seeking back to %d", tp.topic, tp.partition,
                            now - self.last_delivery, taken, high - 1, taken)  # fmt: skip
                await consumer.seek(tp, taken)
        self.last_delivery = now

    async def _in_order(self, m: faust.types.Message) -> list[Record]:
        """The messages to take for a delivered one, in offset order (see ``deliveries``):
        none if it was taken before; the ones Faust skipped, read from Kafka, then it."""
        tp = (m.topic, m.partition)
        self.last_delivery = time.monotonic()
        expected = await self._next_offset(m.tp)
        verdict = self.deliveries.classify(tp, m.offset)
        if verdict is Delivery.AGAIN:
            return []
        if verdict is Delivery.NEXT:
            return [m]
        log.warning("%s:%d: offset %d delivered while %d was expected; reading %d-%d from Kafka",
                    m.topic, m.partition, m.offset, expected, expected, m.offset - 1)  # fmt: skip
        skipped = await self.refill.read(m.topic, m.partition, expected, m.offset)
        self.refilled.append((m.tp, expected, m.offset))
        return [*skipped, m]

    def _state(self, topic: str, partition: int, event: faust.types.EventT) -> State:
        """The partition's engine: restored from its checkpoint, else new."""
        tp = (topic, partition)
        state = self.states.get(tp)
        if state is None:
            state = self.store.load(topic, partition, event)
            if state is None:
                if topic == self.interactions_topic:
                    state = PartitionEngine(self.config, topic, partition)
                else:
                    state = ActorEngine(self.config, topic, partition,
                                        sources=self.settings.kafka.partitions)  # fmt: skip
            if isinstance(state, PartitionEngine):  # a restored one holds each snapshot once
                state.observe_snapshots([
                    {"account": a, "ts": ts, "followers": f}
                    for a, counts in self.follower_counts.items() for ts, f in counts
                ])  # fmt: skip
            self.states[tp] = state
            self.checkpointed[tp] = state.offset
            self.saved_at[tp] = time.monotonic()
        return state

    # --- output ---

    async def _letters(self, letters: list[dict[str, Any]], at: Offsets) -> None:
        for letter in letters:
            await self.dead_letters.send(
                key=letter["source"].encode(),
                value=codec.encode(letter, schemas.DEAD_LETTER),
                headers=schemas.kafka_headers(schemas.DEAD_LETTER),
            )
            self.metrics.dead_letter(self.settings.topic("dead-letters"), letter["reason_code"])
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
            self.metrics.alert(self.settings.topic("alerts"), alert.rule, alert.severity)
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
            self.metrics.dead_letter(self.settings.topic("dead-letters"), "clickhouse_refused")
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
        """Checkpoint when a state is due, or everything when input paused (the timer's call)."""
        if self.unacked and not self.failed and (self._paused() or self._due()):
            await self.checkpoint()

    async def settle(self) -> None:
        """Save every changed state and acknowledge all that is taken, while agents finish the
        batches they had taken (up to half of ``worker.stop_timeout_seconds``): before Faust's
        stop or a rebalance waits for every message to be acknowledged (``deliveries``)."""
        w = self.settings.worker
        deadline = time.monotonic() + w.stop_timeout_seconds / 2
        while not self.failed and time.monotonic() < deadline:
            if self.unacked:
                await self.checkpoint(everything=True)
            if not self.unacked and time.monotonic() - self.last_delivery > 2 * w.take_seconds:
                return
            await asyncio.sleep(w.take_seconds / 2)

    async def checkpoint(self, everything: bool = False) -> None:
        """Save the states due (all of them when input paused, or with ``everything``), then
        acknowledge what is safe.

        Each engine due emits its open windows' figures in a turn of its own (300k rows from 8
        engines held the loop for a second). Then, in one turn, the derived rows buffered are
        sealed and a child process forks to pickle the states as they were (``forked``) while
        the agents go on. A saved engine counts the rows it emitted as written, so before the
        pickles are written to the changelog every sealed row is stored, by the agents' own
        flushes or by turns of the checkpoint's (``flush_due``: 50 ms each; storing them all in
        the fork's turn held it for 1.3 s; storing only the rows due lost pair counts after a
        kill, the restored engine never writing them again). The producer is flushed, and only
        then are the offsets the states cover acknowledged. Large states are saved less often,
        so that saving takes at most ``checkpoint_budget`` of the time (``_due``). A by-actor
        engine's save holds only its keys changed since its last save when the store takes them
        (``EngineStore.kinds``).
        """
        async with self.one_save:
            await self._checkpoint(everything)

    async def _checkpoint(self, everything: bool) -> None:
        async with self.lock("checkpoint"):
            if self.failed:
                return
            everything = everything or self._paused()
            due = sorted(self.changed) if everything else self._due()
        for tp in due:
            async with self.lock("checkpoint emit"):
                if self.failed:
                    return
                state = self.states.get(tp)
                if isinstance(state, PartitionEngine):
                    await self._output(state.emit_open())
        async with self.lock("checkpoint"):
            if self.failed:
                return
            held_from = time.monotonic()
            due = [tp for tp in due if tp in self.states]  # not revoked meanwhile
            self.writer.seal_unsourced()
            started = time.monotonic()
            kinds = self.store.kinds([self.states[tp] for tp in due])
            saving = [(tp, Save(self.states[tp], changes), self.states[tp].offset,
                       self.any_event[tp])
                      for tp, changes in zip(due, kinds, strict=True)]  # fmt: skip
            pickles = ForkedPickles([save for _, save, _, _ in saving], dump_save)
            for _, save, _, _ in saving:
                save.state.track()  # the child has the keys changed until now
            self.changed.difference_update(due)  # what changes from now on is the next save's
            for tp in due:
                self.saved_at[tp] = started
            self.metrics.checkpoint_seconds.labels("held").observe(time.monotonic() - held_from)
        blobs = await pickles.result()
        self.metrics.checkpoint_child_cpu.observe(pickles.cpu_seconds)
        self.metrics.checkpoint_child_faults.inc(pickles.faults)
        while True:  # input paused (``everything``): store all, the acks need the raw rows too
            async with self.lock("checkpoint flush"):
                if self.failed:
                    return
                await self._flush(force=everything)
            if not self.writer.unsourced_sealed():
                break
        async with self.lock("checkpoint write"):
            if self.failed:  # an engine may be half-updated since: write nothing, ack nothing
                return
            for (tp, save, offset, event), blob in zip(saving, blobs, strict=True):
                if self.states.get(tp) is save.state:  # else revoked meanwhile: not ours to write
                    self.store.write(save, offset, blob, event)
                    kind = "changes" if save.changes else "whole"
                    self.metrics.state_saved_bytes.labels(kind).inc(len(blob))
        await self.app.producer.flush()
        # a save's cost: pickling and sending, shared among the states saved by their size
        spent = time.monotonic() - started
        self.metrics.checkpoint_seconds.labels("saved").observe(spent)
        async with self.lock("checkpoint ack"):
            if self.failed:
                return
            total = max(1, sum(map(len, blobs)))
            for (tp, save, offset, _), blob in zip(saving, blobs, strict=True):
                if self.states.get(tp) is save.state:
                    self.save_seconds[tp] = spent * len(blob) / total
                    self.checkpointed[tp] = offset
            await self._ack()

    def _paused(self) -> bool:
        return time.monotonic() - self.last_input >= self.settings.worker.batch_seconds

    def _due(self) -> list[TopicPartition]:
        """Changed states not saved for their interval, least recently saved first.

        A state's interval is ``checkpoint_seconds``, or longer for a state whose save takes
        long: its last save time (pickling and sending) × states / ``checkpoint_budget``, so
        all saves together take at most that share of the time (whole-state pickles grow with
        the state)."""
        w = self.settings.worker
        now, n = time.monotonic(), len(self.states)

        def interval(tp: TopicPartition) -> float:
            cost = self.save_seconds.get(tp, 0.0)
            return max(w.checkpoint_seconds, cost * n / w.checkpoint_budget)

        return sorted((tp for tp in self.changed
                       if self.saved_at.get(tp, 0.0) <= now - interval(tp)),
                      key=lambda tp: self.saved_at.get(tp, 0.0))  # fmt: skip

    async def _ack(self) -> None:
        stored = self.writer.stored_offsets()

        def safe(topic: str, partition: int) -> int:
            offset = stored.get((topic, partition), -1)
            if topic in (self.interactions_topic, self.by_actor_topic):
                offset = min(offset, self.checkpointed.get((topic, partition), -1))
            return offset

        keep = []
        for event in self.unacked:
            m = event.message
            if m.offset <= safe(m.topic, m.partition):
                await self.streams[m.topic].ack(event)
                self.metrics.stored(m.timestamp)
            else:
                keep.append(event)
        self.unacked[:] = keep
        for refilled in list(self.refilled):
            tp, first, end = refilled
            if end - 1 <= safe(tp.topic, tp.partition):
                let_commits_pass(self.app.consumer, tp, first, end)
                self.refilled.remove(refilled)

    async def close(self) -> None:
        """Stop the readers of our own (the broadcast, the refill)."""
        await self.broadcast.close()
        await self.refill.close()

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
        for tp in gone:
            if self.states.pop(tp, None) is not None:
                self.changed.discard(tp)
                self.checkpointed.pop(tp, None)
                self.saved_at.pop(tp, None)
                self.save_seconds.pop(tp, None)


def _by_partition(events: Sequence[faust.types.EventT]) -> dict[int, list[faust.types.EventT]]:
    out: dict[int, list[faust.types.EventT]] = {}
    for e in events:
        out.setdefault(e.message.partition, []).append(e)
    return out


def _headers(m: Record) -> list[tuple[str, bytes]]:
    h = m.headers or []
    return list(h.items()) if isinstance(h, Mapping) else list(h)
