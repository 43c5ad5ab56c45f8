"""Importers: real data files as streams of validated events (or snapshots) and rejections.

Every format has a ``read(path, **options) -> ImportRun``; iterate the run once for items —
a valid record (a dict in the shape of ``run.schema``) or a ``Rejected`` (source, line,
reason_code, reason, raw bytes) — and read ``run.stats`` at the end. Bad input never raises;
only a missing file or folder (or a bad option) raises ``RapportError``. Ids are deterministic,
so importing a file twice gives the same ids and the pipeline drops the repeats.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import INTERACTION, SNAPSHOT
from streams.errors import RapportError
from streams.importers import avrofile, csvfile, higgs, jsonl, snap, snapshots, stackexchange
from streams.importers.base import ImportRun, Item, Rejected, Stats

__all__ = ["FORMATS", "Format", "ImportRun", "Item", "Rejected", "Stats", "read"]


@dataclass(frozen=True)
class Format:
    """An input format: its name, what its records are and the function that reads it."""

    name: str
    schema: str  # schemas.INTERACTION or schemas.SNAPSHOT
    read: Callable[..., ImportRun]
    summary: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("jsonl", INTERACTION, jsonl.read, "JSON Lines, one event per line"),
        Format("csv", INTERACTION, csvfile.read, "CSV events with a header row (mapping=)"),
        Format("avro", INTERACTION, avrofile.read, "Avro object container file of events"),
        Format("snap", INTERACTION, snap.read, "SNAP temporal edges SRC DST UNIXTS (kind=)"),
        Format("higgs", INTERACTION, higgs.read, "SNAP Higgs Twitter activity A B UNIXTS RT|MT|RE"),
        Format("stackexchange", INTERACTION, stackexchange.read,
               "Stack Exchange dump folder (Posts.xml, Comments.xml, Users.xml)"),
        Format("snapshots", SNAPSHOT, snapshots.read,
               "account snapshots from CSV (Twitter columns)"),
    )
}


def read(fmt: str, path: str | Path, **options: Any) -> ImportRun:
    """Start importing ``path`` as format ``fmt``; RapportError for an unknown format or option."""
    if fmt not in FORMATS:
        raise RapportError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    reader = FORMATS[fmt].read
    try:
        inspect.signature(reader).bind(path, **options)
    except TypeError as exc:
        raise RapportError(f"format {fmt}: {exc}") from None
    return reader(path, **options)
