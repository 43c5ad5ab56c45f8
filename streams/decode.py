"""One Kafka message of the interactions topic → validated events and dead letters.

Bad input already in Kafka gets the same treatment as bad rows at publish time: a dead letter
with where it was (topic/partition/offset, and the event's index in an envelope) and why.
Plain Python, no Kafka, so it is unit-tested on bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import schemas
from schemas import codec
from schemas.validate import Rejection, dead_letter, validate_event

Record = dict[str, Any]
Headers = Sequence[tuple[str, bytes]]


def decode_interactions(
    topic: str, partition: int, offset: int, value: bytes | None, headers: Headers, now_ms: int
) -> tuple[list[Record], list[Record]]:
    """(valid events, dead letters) of one message; never raises for bad input."""
    source = f"{topic}/{partition}/{offset}"
    try:
        name, records = codec.decode_message(value, headers)
    except codec.DecodeError as exc:
        rejection = Rejection(exc.reason_code, str(exc))
        return [], [dead_letter(source, 0, rejection, value or b"", schemas.INTERACTION, now_ms)]
    if name != schemas.INTERACTION:
        rejection = Rejection("wrong_header", f"a {name!r} message on the interactions topic")
        return [], [dead_letter(source, 0, rejection, value or b"", name, now_ms)]
    events: list[Record] = []
    letters: list[Record] = []
    for index, record in enumerate(records):
        result = validate_event(record, now_ms)
        if isinstance(result, Rejection):
            raw = repr(record).encode("utf-8", "replace")
            letters.append(dead_letter(source, index, result, raw, schemas.INTERACTION, now_ms))
        else:
            events.append(result)
    return events, letters
