"""Avro on the wire: schemaless fastavro records, one per message or many in a batch envelope.

The schema and version travel in Kafka headers (see ``schemas``), so values carry no schema
bytes. A message written with an older version is resolved into the current schema. Timestamps
stay integers (ms): the ``timestamp-millis`` annotation is for other readers, and converting
every ``ts`` to a datetime and back would only cost time. Anything wrong with a message raises
``DecodeError`` with a short ``reason_code``, never a bare fastavro exception.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from io import BytesIO
from typing import Any, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer

import schemas
from schemas import INTERACTION, INTERACTION_BATCH, SCHEMA_HEADER, VERSION_HEADER
from streams.errors import RapportError

# Kafka headers as clients hand them over: kafka-python and aiokafka give (str, bytes) pairs,
# Faust may give a mapping; None when the message has none.
Headers = Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None
Record = dict[str, Any]

_SCHEMA_KEYS = (SCHEMA_HEADER, SCHEMA_HEADER.encode())
_VERSION_KEYS = (VERSION_HEADER, VERSION_HEADER.encode())


class CodecError(RapportError):
    """A record that cannot be encoded or decoded; ``reason_code`` is the dead-letter code."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class DecodeError(CodecError):
    """Codes: empty_value, truncated, bad_avro, invalid_utf8, wrong_header, unknown_schema,
    unknown_schema_version."""


class EncodeError(CodecError):
    """Code: bad_record (a record that does not fit its schema; validate it first)."""


def _plain(node: Any) -> Any:
    """The schema without logical types, so timestamps are read and written as plain ints."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


@functools.cache
def _parsed(name: str, version: int) -> Any:
    return parse_schema(_plain(schemas.schema(name, version)))


@functools.cache
def _resolve(name: str, version: int) -> tuple[Any, Any]:
    """(writer schema, reader schema or None when no resolution is needed), parsed once."""
    if name not in schemas.CURRENT:
        raise DecodeError("unknown_schema", f"unknown schema {name!r}")
    current = schemas.CURRENT[name]
    if version not in schemas.versions(name):
        raise DecodeError(
            "unknown_schema_version",
            f"{name} version {version} is not published here (known: "
            f"{', '.join(map(str, schemas.versions(name)))}); a newer writer needs a newer reader",
        )
    return _parsed(name, version), None if version == current else _parsed(name, current)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def schema_of(headers: Headers) -> tuple[str, int]:
    """The (schema, version) named by a message's headers; DecodeError if absent or malformed."""
    name = version = None
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for key, value in pairs:
        if key in _SCHEMA_KEYS:
            name = _text(value)
        elif key in _VERSION_KEYS:
            version = _text(value)
    if name is None:
        raise DecodeError("wrong_header", f"no {SCHEMA_HEADER} header: not a Rapport message")
    if name not in schemas.CURRENT:
        raise DecodeError("unknown_schema", f"{SCHEMA_HEADER} names an unknown schema {name!r}")
    # ASCII digits only: str.isdigit() also takes '²' or '፩', which int() refuses, and
    # int() refuses thousands of digits; no schema will have a billion versions.
    if version is None or not (version.isascii() and version.isdigit()) or len(version) > 9:
        shown = repr(version if version is None else version[:20])
        raise DecodeError("wrong_header", f"{VERSION_HEADER} {shown} is not a version number")
    return name, int(version)


def _read(value: bytes | None, writer: Any, reader: Any, name: str) -> Record:
    if not value:
        raise DecodeError("empty_value", f"empty {name} message")
    fo = BytesIO(value)
    try:
        record: Any = schemaless_reader(fo, writer, reader)
    except UnicodeDecodeError:
        raise DecodeError("invalid_utf8", f"{name} record has a string that is not UTF-8") from None
    except Exception as exc:  # fastavro raises assorted types on bad bytes; classify by effect
        if isinstance(exc, EOFError) or fo.tell() >= len(value):
            raise DecodeError(
                "truncated", f"{name} record truncated: {len(value)} bytes end mid-record"
            ) from None
        raise DecodeError(
            "bad_avro", f"not a valid {name} record ({type(exc).__name__}: {exc})"
        ) from None
    if fo.tell() != len(value):
        raise DecodeError(
            "bad_avro",
            f"{len(value) - fo.tell()} bytes left after the {name} record: another schema or "
            "corrupt data",
        )
    return cast(Record, record)  # every Rapport schema is a record


def decode(value: bytes, name: str = INTERACTION, version: int | None = None) -> Record:
    """One record written with ``name`` at ``version`` (default current), in the current shape."""
    writer, reader = _resolve(name, schemas.CURRENT.get(name, 0) if version is None else version)
    return _read(value, writer, reader, name)


def decode_batch(value: bytes, version: int | None = None) -> list[Record]:
    """The events of an interaction-batch envelope."""
    events: list[Record] = decode(value, INTERACTION_BATCH, version)["events"]
    return events


def decode_message(value: bytes | None, headers: Headers) -> tuple[str, list[Record]]:
    """A Kafka message as (record schema, records); a batch envelope gives its interactions."""
    name, version = schema_of(headers)
    writer, reader = _resolve(name, version)
    record = _read(value, writer, reader, name)
    if name == INTERACTION_BATCH:
        return INTERACTION, record["events"]
    return name, [record]


def decode_messages(
    messages: Iterable[tuple[bytes | None, Headers]],
) -> list[tuple[str, list[Record]] | DecodeError]:
    """Decode many (value, headers) messages; a bad one gives its DecodeError in its place."""
    out: list[tuple[str, list[Record]] | DecodeError] = []
    append = out.append
    for value, headers in messages:
        try:
            append(decode_message(value, headers))
        except DecodeError as exc:
            append(exc)
    return out


def _write(record: Mapping[str, Any], name: str) -> bytes:
    fo = BytesIO()
    try:
        schemaless_writer(fo, _parsed(name, schemas.CURRENT[name]), record)
    except Exception as exc:  # fastavro's errors for a bad record vary by field type
        raise EncodeError(
            "bad_record", f"record does not fit {name} ({type(exc).__name__}: {exc})"
        ) from None
    return fo.getvalue()


def encode(record: Mapping[str, Any], name: str = INTERACTION) -> bytes:
    """One record with the current version of ``name``; send with ``kafka_headers(name)``."""
    return _write(record, name)


def encode_batch(events: Sequence[Mapping[str, Any]]) -> bytes:
    """Many interactions in one envelope; send with ``kafka_headers(INTERACTION_BATCH)``."""
    return _write({"events": events}, INTERACTION_BATCH)
