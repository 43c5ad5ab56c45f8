"""The by-actor topic's messages: routed events with their source partition and watermark.

One place that writes and reads them, so the worker's two stages cannot disagree on the
format: an ``interaction-batch`` envelope plus three headers — route (``actor`` or ``link``),
source partition, and the source's watermark in event-time ms (see ``streams.core.actors``), on
the last message a partition gets of a batch only (``NO_NEWS`` on the one before).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import schemas
from schemas import codec
from streams.core.actors import NO_NEWS, Route, Routed, route

ROUTE, SOURCE, WATERMARK = "rapport-route", "rapport-source", "rapport-watermark"
ROUTES: tuple[Route, ...] = ("actor", "link")  # the order of one batch's messages
Headers = list[tuple[str, bytes]]


def encode(
    source: int, events: list[dict[str, Any]], watermark: int, partitions: int
) -> Iterator[tuple[int, bytes, Headers]]:
    """(partition, value, headers) of the messages that route ``events``, partition by
    partition, actor events before link events: every partition gets at least one, so each
    hears how far the source has got — from the last one it gets, once the batch's events are
    all there (the one before carries ``NO_NEWS``)."""
    groups = route(events, partitions)
    for q in range(partitions):
        kinds: list[Route] = [k for k in ROUTES if (q, k) in groups] or ["actor"]
        for i, kind in enumerate(kinds):
            mark = watermark if i == len(kinds) - 1 else NO_NEWS
            headers = [
                *schemas.kafka_headers(schemas.INTERACTION_BATCH),
                (ROUTE, kind.encode()),
                (SOURCE, str(source).encode()),
                (WATERMARK, str(mark).encode()),
            ]
            yield q, codec.encode_batch(groups.get((q, kind), [])), headers


def decode(value: bytes | None, headers: Headers) -> Routed:
    """One by-actor message as the ``ActorEngine`` takes it."""
    named = dict(headers)
    _, records = codec.decode_message(value, headers)
    kind: Route = "link" if named.get(ROUTE) == b"link" else "actor"
    return Routed(kind, int(named[SOURCE]), int(named[WATERMARK]), records)
