"""Interaction events as JSON Lines: one object per line, field names as in METRICS.md.

``ts`` is epoch ms or an ISO-8601 string (no zone = UTC). Objects without an ``event_id`` get
``jsonl:<file name>:<line>``. Lines are decoded one by one, so a line that is not UTF-8 or not
JSON is one rejection, not the end of the import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

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
    """Import a JSON Lines file of events; ``platform`` fills events that have none."""
    p = existing_file(path)
    stats = Stats()
    items = _items(p, platform, max_text, clock(now_ms), stats)
    return ImportRun(str(p), INTERACTION, stats, items)


def _items(
    path: Path, platform: str | None, max_text: int, now_ms: int, stats: Stats
) -> Iterator[Item]:
    source = str(path)
    prefix = f"jsonl:{path.name}:"
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):  # byte order mark
                raw = raw[3:]
            if not raw.strip():
                continue
            stats.rows += 1
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield stats.reject(source, n, "invalid_utf8", "the line is not UTF-8", raw)
                continue
            except (ValueError, RecursionError) as exc:
                yield stats.reject(source, n, "malformed_line", f"not JSON: {exc}", raw)
                continue
            if type(obj) is not dict:
                yield stats.reject(
                    source, n, "malformed_line",
                    f"a JSON {type(obj).__name__} where an object was expected", raw,
                )
                continue
            event = with_defaults(obj, f"{prefix}{n}", platform)
            yield stats.settle(validate_event(event, now_ms, max_text), source, n, raw)
