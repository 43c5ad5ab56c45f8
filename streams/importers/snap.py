"""SNAP temporal edge lists (``SRC DST UNIXTS``, seconds), e.g. CollegeMsg: one event per line.

SNAP files say nothing about what an edge is, so the kind is the caller's choice (MESSAGE by
default: the communication networks are messages). Some, like email-Eu-core-temporal, count
seconds from the start of the data set rather than from 1970; ``offset_s`` moves them to real
time. Event ids are ``snap:<file name>:<line>``: the same file always gives the same ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from schemas import INTERACTION
from schemas.validate import KINDS, validate_event
from streams.errors import RapportError
from streams.importers.base import (
    ImportRun,
    Item,
    Rejected,
    Stats,
    clock,
    edge_lines,
    existing_file,
)  # fmt: skip


def read(
    path: str | Path,
    *,
    kind: str = "MESSAGE",
    offset_s: int = 0,
    platform: str = "",
    now_ms: int | None = None,
) -> ImportRun:
    """Import a SNAP temporal edge list; ``#`` comment lines and blank lines are not rows."""
    p = existing_file(path)
    if kind.upper() not in KINDS:
        raise RapportError(f"unknown kind {kind!r} for SNAP edges; use one of {sorted(KINDS)}")
    stats = Stats()
    items = _items(p, kind.upper(), offset_s * 1000, platform, clock(now_ms), stats)
    return ImportRun(str(p), INTERACTION, stats, items)


def _items(
    path: Path, kind: str, offset_ms: int, platform: str, now_ms: int, stats: Stats
) -> Iterator[Item]:
    source = str(path)
    prefix = f"snap:{path.name}:"
    for edge in edge_lines(path, "SRC DST UNIXTS", stats):
        if isinstance(edge, Rejected):
            yield edge
            continue
        event = {
            "event_id": f"{prefix}{edge.line}", "kind": kind, "actor": edge.actor,
            "target": edge.target, "ts": edge.ts + offset_ms, "platform": platform,
        }  # fmt: skip
        yield stats.settle(validate_event(event, now_ms), source, edge.line, edge.raw)
