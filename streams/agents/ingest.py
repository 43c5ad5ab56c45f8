"""Ingest: every message of the interactions topic decoded, validated and stored in
``interactions``; bad input to the dead-letter topic and table with its reason.

Acks follow the sink: an event is acked only once the writer reports its offset stored (rows
of every table), so Faust commits nothing that ClickHouse does not have. While ClickHouse is
down the agent stops taking messages (bounded memory) and retries until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import faust

import schemas
from schemas import codec
from sinks.backends import Backend
from sinks.tables import DEAD_LETTERS, INTERACTIONS
from sinks.writer import BackpressureError, DeadLetter, SinkDown, Writer
from streams.config import Settings
from streams.decode import decode_interactions

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0


def interaction_row(event: dict[str, Any], topic: str, partition: int, offset: int) -> tuple:
    return (
        event["event_id"], event["kind"], event["actor"], event["target"], event["ts"],
        event["in_reply_to"], event["conversation_id"], event["text"] or "", event["urls"],
        event["platform"], event["followers"], event["following"], event["posts"],
        topic, partition, offset,
    )  # fmt: skip


def dead_letter_row(letter: dict[str, Any]) -> tuple:
    raw = letter["raw"].decode("utf-8", "replace")
    return (letter["source"], letter["line"] or 0, letter["reason_code"], letter["reason"],
            raw, letter["ts"])  # fmt: skip


def install(app: faust.App, settings: Settings, backend: Backend) -> faust.types.AgentT:
    source = app.topic(
        settings.topic("interactions"), key_type=bytes, value_type=bytes,
        key_serializer="raw", value_serializer="raw",
    )  # fmt: skip
    dead_letters = app.topic(
        settings.topic("dead-letters"), key_type=bytes, value_type=bytes,
        key_serializer="raw", value_serializer="raw",
    )  # fmt: skip
    unacked: list[faust.types.EventT] = []
    refused: list[DeadLetter] = []  # rows ClickHouse itself refused (the writer isolates them)
    streams: list[faust.StreamT] = []

    def on_refused(letter: DeadLetter) -> None:
        log.error("ClickHouse refused a %s row: %s", letter.table, letter.reason)
        refused.append(letter)

    writer = Writer(
        backend, on_refused,
        batch_rows=settings.worker.batch_size, batch_seconds=settings.worker.batch_seconds,
    )  # fmt: skip

    async def ack_stored() -> None:
        stored = writer.stored_offsets()
        keep = []
        for event in unacked:
            message = event.message
            if message.offset <= stored.get((message.topic, message.partition), -1):
                await streams[0].ack(event)
            else:
                keep.append(event)
        unacked[:] = keep
        while refused:
            letter = refused.pop()
            await dead_letters.send(
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

    async def flush(force: bool) -> None:
        """Flush until it works: consumption pauses meanwhile, nothing is dropped."""
        while True:
            try:
                writer.flush() if force else writer.flush_due()
                break
            except SinkDown as exc:
                log.warning(
                    "ClickHouse unavailable (%s); pausing, retry in %.0f s", exc, RETRY_SECONDS
                )
                await asyncio.sleep(RETRY_SECONDS)
        await ack_stored()

    async def add(table: Any, rows: list, offsets: dict) -> None:
        while True:
            try:
                writer.add(table, rows, offsets)
                return
            except BackpressureError:
                await flush(force=True)

    @app.agent(source, name="ingest")
    async def ingest(stream: faust.StreamT) -> None:
        streams[:] = [stream]
        # noack_take: acks are ours to give, after the insert (take would ack even on failure)
        batches = cast(faust.Stream, stream).noack_take(
            settings.worker.take_messages, settings.worker.batch_seconds
        )
        async for events in batches:
            now_ms = time.time_ns() // 1_000_000
            for event in events:
                m = event.message
                good, letters = decode_interactions(
                    m.topic, m.partition, m.offset, m.value, list(m.headers or []), now_ms
                )
                offsets = {(m.topic, m.partition): m.offset}
                for letter in letters:
                    await dead_letters.send(
                        key=letter["source"].encode(),
                        value=codec.encode(letter, schemas.DEAD_LETTER),
                        headers=schemas.kafka_headers(schemas.DEAD_LETTER),
                    )
                await add(DEAD_LETTERS, [dead_letter_row(x) for x in letters], offsets)
                await add(
                    INTERACTIONS,
                    [interaction_row(e, m.topic, m.partition, m.offset) for e in good],
                    offsets,
                )
            unacked.extend(events)
            await flush(force=False)

    @app.timer(settings.worker.batch_seconds)
    async def flush_on_time() -> None:
        if streams and (writer.buffered_rows or unacked):
            await flush(force=False)

    return ingest
