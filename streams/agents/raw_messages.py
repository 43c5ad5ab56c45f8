"""Store every message of the interactions topic verbatim, acknowledged only once stored.

The spine of the pipeline: Kafka → Faust → ClickHouse. Rows are keyed by (topic, partition,
offset) in a ReplacingMergeTree, so a batch replayed after a crash collapses instead of
doubling.
"""

from __future__ import annotations

from typing import cast

import faust

from sinks.backends import Backend
from streams.config import Settings

TABLE = "raw_messages"
COLUMNS = ("topic", "partition", "offset", "kafka_ts", "key", "value")


def create_table(backend: Backend) -> None:
    backend.execute(
        f"""CREATE TABLE IF NOT EXISTS {backend.target.database}.{TABLE} (
            topic String, partition UInt32, offset UInt64, kafka_ts Int64,
            key String, value String, stored_at DateTime DEFAULT now()
        ) ENGINE = ReplacingMergeTree ORDER BY (topic, partition, offset)"""
    )


def install(app: faust.App, settings: Settings, backend: Backend) -> faust.types.AgentT:
    create_table(backend)
    topic = app.topic(
        settings.topic("interactions"),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(topic, name="raw-messages")
    async def raw_messages(stream: faust.StreamT) -> None:
        # noack_take: acks are ours to give, after the insert (take would ack even on failure)
        async for events in cast(faust.Stream, stream).noack_take(
            settings.worker.batch_size, settings.worker.batch_seconds
        ):
            rows = [
                (
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    int(e.message.timestamp * 1000),
                    (e.message.key or b"").decode("utf-8", "replace"),
                    (e.message.value or b"").decode("utf-8", "replace"),
                )
                for e in events
            ]
            backend.insert(TABLE, COLUMNS, rows)
            for e in events:
                await stream.ack(e)

    return raw_messages
