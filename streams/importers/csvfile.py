"""Interaction events from a CSV file with a header row; columns renamed with ``mapping``.

Columns named like event fields (METRICS.md) need no mapping; others are renamed with
``mapping`` (``--map column=field``) or ignored. Cells are text: ``ts`` may be epoch ms or
ISO-8601, counts are integers, ``urls`` is space separated, empty cells are absent. Rows
without an ``event_id`` get ``csv:<file name>:<line>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from schemas import INTERACTION, field_names
from schemas.validate import MAX_TEXT, validate_event
from streams.errors import RapportError
from streams.importers.base import ImportRun, Item, Rejected, Stats, clock, existing_file
from streams.importers.coerce import event_from_cells, with_defaults
from streams.importers.csvrows import rows


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["from=actor", "when=ts"]`` (the CLI's ``--map`` values) as {column: field}."""
    mapping = {}
    for pair in pairs:
        column, sep, field = pair.partition("=")
        if not sep or not column.strip() or not field.strip():
            raise RapportError(f"--map wants column=field, not {pair!r}")
        mapping[column.strip()] = field.strip()
    return mapping


def check_mapping(mapping: dict[str, str], fields: tuple[str, ...]) -> dict[str, str]:
    """The mapping, or a RapportError naming a target that is not a field."""
    for column, field in mapping.items():
        if field not in fields:
            raise RapportError(
                f"--map {column}={field}: {field!r} is not a field; fields: {', '.join(fields)}"
            )
    return mapping


def read(
    path: str | Path,
    *,
    mapping: dict[str, str] | None = None,
    delimiter: str = ",",
    platform: str | None = None,
    max_text: int = MAX_TEXT,
    now_ms: int | None = None,
) -> ImportRun:
    """Import a CSV of interaction events; ``platform`` fills rows that have none."""
    p = existing_file(path)
    checked = check_mapping(mapping or {}, field_names(INTERACTION))
    stats = Stats()
    items = _items(p, checked, delimiter, platform, max_text, clock(now_ms), stats)
    return ImportRun(str(p), INTERACTION, stats, items)


def _items(
    path: Path, mapping: dict[str, str], delimiter: str, platform: str | None, max_text: int,
    now_ms: int, stats: Stats,
) -> Iterator[Item]:
    source = str(path)
    prefix = f"csv:{path.name}:"
    for row in rows(path, mapping, stats, delimiter):
        if isinstance(row, Rejected):
            yield row
            continue
        line, cells, raw = row
        event = with_defaults(event_from_cells(cells), f"{prefix}{line}", platform)
        yield stats.settle(validate_event(event, now_ms, max_text), source, line, raw)
