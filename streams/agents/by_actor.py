"""The by-actor topic's messages: routed events with their source partition and watermark.

One place that writes and reads them, so the worker's two stages cannot disagree on the
format: the batch's validated events as MessagePack (an internal hop: events already checked
on the way in, so nothing to resolve; 0.5 + 1.5 µs an event to write and read, where the Avro
envelope cost 10 + 9 µs) plus four headers — the format, route (``actor`` or ``link``), source
partition, and the source's watermark in event-time ms (see ``streams.core.actors``), on the
last message a partition gets of a batch only (``NO_NEWS`` on the one before). Messages written
by an older worker (Avro ``interaction-batch`` envelopes) are still read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from schemas import SCHEMA_HEADER, codec
from streams.core.actors import NO_NEWS, Route, Routed, route
from streams.core.windows import pack_events, unpack_events

ROUTE, SOURCE, WATERMARK = "rapport-route", "rapport-source", "rapport-watermark"
FORMAT = b"by-actor-msgpack"  # the schema header's value on these messages
ROUTES: tuple[Route, ...] = ("actor", "link")  # the order of one batch's messages
MAX_BYTES = 512 * 1024  # a message's events, at most (Kafka refuses messages over 1 MB)
Headers = list[tuple[str, bytes]]


def encode(
    source: int, events: list[dict[str, Any]], watermark: int, partitions: int
) -> Iterator[tuple[int, bytes, Headers]]:
    """(partition, value, headers) of the messages that route ``events``, partition by
    partition, actor events before link events, each message at most ``MAX_BYTES`` of events
    (a batch of 100 envelopes sent 1.3 MB to one partition, and the broker refused it): every
    partition gets at least one, so each hears how far the source has got — from the last one
    it gets, once the batch's events are all there (the ones before carry ``NO_NEWS``)."""
    groups = route(events, partitions)
    for q in range(partitions):
        kinds: list[Route] = [k for k in ROUTES if (q, k) in groups] or ["actor"]
        parts = [(kind, value) for kind in kinds for value in _values(groups.get((q, kind), []))]
        for i, (kind, value) in enumerate(parts):
            mark = watermark if i == len(parts) - 1 else NO_NEWS
            headers = [
                (SCHEMA_HEADER, FORMAT),
                (ROUTE, kind.encode()),
                (SOURCE, str(source).encode()),
                (WATERMARK, str(mark).encode()),
            ]
            yield q, value, headers


def _values(events: list[dict[str, Any]]) -> list[bytes]:
    """``events`` encoded, in order, in as many values as it takes to keep each within
    ``MAX_BYTES``: cut in equal slices by the size of the whole, cut again while one is over
    (an event alone is bounded by the input's checks)."""
    value = pack_events(events)
    if len(value) <= MAX_BYTES or len(events) <= 1:
        return [value]
    n = min(len(events), -(-len(value) // MAX_BYTES) + 1)
    step = -(-len(events) // n)
    return [v for i in range(0, len(events), step) for v in _values(events[i : i + step])]


def decode(value: bytes | None, headers: Headers) -> Routed:
    """One by-actor message as the ``ActorEngine`` takes it; ``codec.DecodeError`` (reason
    code ``bad_internal`` unless the Avro decoder names one) for anything else."""
    named = dict(headers)
    try:
        source, watermark = int(named[SOURCE]), int(named[WATERMARK])
    except (KeyError, ValueError):
        raise codec.DecodeError(
            "bad_internal", f"by-actor message without a valid {SOURCE}/{WATERMARK} header"
        ) from None
    if named.get(SCHEMA_HEADER) == FORMAT:
        try:
            records = unpack_events(value or b"")
        except msgspec.DecodeError as exc:
            raise codec.DecodeError("bad_internal", f"not a by-actor message: {exc}") from None
    else:  # written by a worker from before the MessagePack format
        _, records = codec.decode_message(value, headers)
    kind: Route = "link" if named.get(ROUTE) == b"link" else "actor"
    return Routed(kind, source, watermark, records)
