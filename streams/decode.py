"""One Kafka message of an input topic → validated records and dead letters.

Bad input already in Kafka gets the same treatment as bad rows at publish time: a dead letter
with where it was (topic/partition/offset, and the event's index in an envelope) and why.
Plain Python, no Kafka, so it is unit-tested on bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import schemas
from schemas import codec
from schemas.validate import Rejection, dead_letter, validate_event, validate_snapshot

Record = dict[str, Any]
Headers = Sequence[tuple[str, bytes]]


VALIDATORS: dict[str, Callable[[Any, int], Any]] = {
    schemas.INTERACTION: validate_event,
    schemas.SNAPSHOT: validate_snapshot,
}


def decode_interactions(
    topic: str, partition: int, offset: int, value: bytes | None, headers: Headers, now_ms: int
) -> tuple[list[Record], list[Record]]:
    """(valid events, dead letters) of one interactions message; never raises for bad input."""
    return decode_records(schemas.INTERACTION, topic, partition, offset, value, headers, now_ms)


def undecodable(
    topic: str, partition: int, offset: int, value: bytes | None, error: codec.DecodeError,
    schema: str, now_ms: int,
) -> Record:
    """The dead letter of a whole message that could not be decoded."""
    rejection = Rejection(error.reason_code, str(error))
    return dead_letter(f"{topic}/{partition}/{offset}", 0, rejection, value or b"", schema, now_ms)


def decode_records(
    expected: str,
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    headers: Headers,
    now_ms: int,
) -> tuple[list[Record], list[Record]]:
    """(valid records of schema ``expected``, dead letters) of one message."""
    source = f"{topic}/{partition}/{offset}"
    try:
        name, records = codec.decode_message(value, headers)
    except codec.DecodeError as exc:
        return [], [undecodable(topic, partition, offset, value, exc, expected, now_ms)]
    if name != expected:
        rejection = Rejection("wrong_header", f"a {name!r} message on the {topic} topic")
        return [], [dead_letter(source, 0, rejection, value or b"", name, now_ms)]
    validate = VALIDATORS[expected]
    good: list[Record] = []
    letters: list[Record] = []
    for index, record in enumerate(records):
        result = validate(record, now_ms)
        if isinstance(result, Rejection):
            raw = repr(record).encode("utf-8", "replace")
            letters.append(dead_letter(source, index, result, raw, expected, now_ms))
        else:
            good.append(result)
    return good, letters
