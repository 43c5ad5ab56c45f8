"""Read a whole topic back (for tests): every message up to the end offsets at call time."""

from __future__ import annotations

from typing import Any

from streams import kafka_clients
from streams.config import Settings
from streams.publish import END_OF_INPUT


def read_topic(settings: Settings, topic: str) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    from kafka import TopicPartition

    consumer = kafka_clients.consumer(settings, enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends: dict[Any, int] = consumer.end_offsets(parts)
        out = []
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            batch = consumer.poll(timeout_ms=2000)
            if not batch and all(consumer.position(tp) >= ends[tp] for tp in remaining):
                break
            for tp, records in batch.items():
                for r in records:
                    headers = list(r.headers or [])
                    if r.offset < ends[tp] and END_OF_INPUT not in headers:  # data, not control
                        out.append((r.value, headers))
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return out
    finally:
        consumer.close()
