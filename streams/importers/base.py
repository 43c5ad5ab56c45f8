"""What every importer yields and counts, so callers handle all formats the same way.

An import is a single pass over a source that yields valid records (plain dicts, already
normalised by ``schemas.validate``) and ``Rejected`` items for bad input, never raising for bad
data. ``Stats`` accounts for every row read: emitted (by kind), skipped on purpose (by reason,
e.g. a Stack Exchange post by a deleted user) or rejected (by reason code).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.validate import Rejection, dead_letter
from streams.errors import RapportError

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A source row that was refused: where it is, why, and its bytes (for the dead letter)."""

    source: str
    line: int | None
    reason_code: str
    reason: str
    raw: bytes

    def dead_letter(self, schema: str, now_ms: int) -> Record:
        """The dead-letter record for this row (schema ``dead-letter``)."""
        return dead_letter(
            self.source, self.line, Rejection(self.reason_code, self.reason), self.raw, schema,
            now_ms,
        )


Item = Record | Rejected


@dataclass(slots=True)
class Stats:
    """Counts of one import; ``rows == accounted()`` once it has been read to the end."""

    # source rows read: lines, XML rows, Avro records (not headers, blank or comment lines);
    # the unreadable rest of a damaged file counts as one rejected row
    rows: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # records yielded, by kind
    skipped: Counter[str] = field(default_factory=Counter)  # rows left out on purpose, by reason
    rejected: Counter[str] = field(default_factory=Counter)  # rows refused, by reason code
    truncated: int = 0  # records whose text was cut to the limit (still yielded)

    def accounted(self) -> int:
        return sum(self.kinds.values()) + sum(self.skipped.values()) + sum(self.rejected.values())

    def reject(self, source: str, line: int | None, code: str, reason: str, raw: bytes) -> Rejected:
        self.rejected[code] += 1
        return Rejected(source, line, code, reason, raw)

    def settle(
        self, result: Record | Rejection, source: str, line: int | None, raw: bytes,
        kind: str | None = None,
    ) -> Item:
        """The validated record counted under its kind (or ``kind``), or its Rejected."""
        if isinstance(result, dict):
            self.kinds[kind or result["kind"]] += 1
            return result
        self.rejected[result.reason_code] += 1
        return Rejected(source, line, result.reason_code, result.reason, raw)


class ImportRun:
    """One pass over a source: iterate it (once) for items; ``stats`` is final at the end."""

    __slots__ = ("source", "schema", "stats", "_items")

    def __init__(self, source: str, schema: str, stats: Stats, items: Iterator[Item]) -> None:
        self.source = source
        self.schema = schema  # what the records are: schemas.INTERACTION or schemas.SNAPSHOT
        self.stats = stats
        self._items = items

    def __iter__(self) -> Iterator[Item]:
        return self._items


@dataclass(frozen=True, slots=True)
class Edge:
    """One well-formed line of a whitespace edge list: ``ACTOR TARGET UNIXTS [more...]``."""

    line: int
    raw: bytes
    parts: list[bytes]
    actor: str
    target: str
    ts: int  # ms


def edge_lines(
    path: Path,
    layout: str,
    stats: Stats,
    check: Callable[[list[bytes]], tuple[str, str] | None] | None = None,
) -> Iterator[Edge | Rejected]:
    """The edges of a SNAP-style file, or a Rejected per bad line; blank and # lines skipped.

    ``layout`` names the fields (``"SRC DST UNIXTS"``); ``check(parts)`` may refuse a line with
    (reason_code, reason) before its accounts and time are read.
    """
    source = str(path)
    width = len(layout.split())
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            parts = raw.split()
            if not parts or parts[0].startswith(b"#"):
                continue
            stats.rows += 1
            if len(parts) != width:
                yield stats.reject(
                    source, n, "malformed_line",
                    f"expected {width} fields {layout}, found {len(parts)}", raw,
                )  # fmt: skip
                continue
            refused = check(parts) if check else None
            if refused is not None:
                yield stats.reject(source, n, refused[0], refused[1], raw)
                continue
            try:
                actor, target = parts[0].decode(), parts[1].decode()
            except UnicodeDecodeError:
                yield stats.reject(source, n, "invalid_utf8", "an account id is not UTF-8", raw)
                continue
            try:
                ts = int(parts[2]) * 1000
            except ValueError:
                yield stats.reject(
                    source, n, "wrong_type",
                    f"UNIXTS {shown(parts[2])} is not a whole number of seconds", raw,
                )  # fmt: skip
                continue
            yield Edge(n, raw, parts, actor, target, ts)


def shown(raw: bytes, limit: int = 40) -> str:
    """A field of a refused line, quoted for a reason sentence."""
    return repr(raw[:limit].decode("utf-8", "replace"))


def existing_file(path: str | Path) -> Path:
    """The path, or a RapportError saying it is not there (the one error importers raise)."""
    p = Path(path)
    if not p.is_file():
        raise RapportError(f"no such file: {p}")
    return p


def clock(now_ms: int | None) -> int:
    """The validation clock: the caller's ``now_ms`` (tests, replays) or the current time."""
    return time.time_ns() // 1_000_000 if now_ms is None else now_ms
