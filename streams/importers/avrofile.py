"""Interaction events from an Avro object container file (fastavro reader).

The file's own schema is used to read it and records are then validated by field name, so
files written by other tools with their own record names import as long as the field names
match. Records without an ``event_id`` get ``avro:<file name>:<record number>``. A corrupt
file cannot be resynchronised: the damage is one rejection and the import stops there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import fastavro

from schemas import INTERACTION
from schemas.validate import MAX_TEXT, validate_event
from streams.importers.base import ImportRun, Item, Stats, clock, existing_file
from streams.importers.coerce import with_defaults


def read(
    path: str | Path,
    *,
    platform: str | None = None,
    max_text: int = MAX_TEXT,
    now_ms: int | None = None,
) -> ImportRun:
    """Import an Avro container file of events; ``line`` in rejections is the record number."""
    p = existing_file(path)
    stats = Stats()
    items = _items(p, platform, max_text, clock(now_ms), stats)
    return ImportRun(str(p), INTERACTION, stats, items)


def _raw(record: Any) -> bytes:
    return json.dumps(record, default=str, ensure_ascii=False).encode("utf-8", "replace")


def _items(
    path: Path, platform: str | None, max_text: int, now_ms: int, stats: Stats
) -> Iterator[Item]:
    source = str(path)
    prefix = f"avro:{path.name}:"
    n = 0
    with path.open("rb") as fh:
        for record in _records(fh):
            n += 1
            stats.rows += 1
            if isinstance(record, Exception):
                yield stats.reject(
                    source, n, "bad_avro",
                    f"unreadable Avro from record {n} on ({type(record).__name__}: {record})",
                    b"",
                )
            elif type(record) is not dict:
                yield stats.reject(
                    source, n, "wrong_type",
                    f"a {type(record).__name__} where a record was expected", _raw(record),
                )
            else:
                event = with_defaults(record, f"{prefix}{n}", platform)
                result = validate_event(event, now_ms, max_text)
                raw = b"" if isinstance(result, dict) else _raw(record)
                yield stats.settle(result, source, n, raw)


def _records(fh: BinaryIO) -> Iterator[Any]:
    """The file's records; a damaged file ends with the exception that stopped the reader
    (fastavro reports damage with assorted exception types)."""
    try:
        yield from fastavro.reader(fh)
    except Exception as exc:
        yield exc
