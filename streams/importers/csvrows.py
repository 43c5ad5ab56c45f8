"""CSV rows with their line numbers and raw bytes, surviving bad bytes and broken rows.

The file is read in binary and decoded line by line, so one line that is not UTF-8 costs that
row only (it comes back as a rejection) instead of ending the import. Quoted cells may span
lines; a row's raw bytes are all the lines it took.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from streams.importers.base import Rejected, Stats


class _Lines:
    """Feeds csv.reader decoded lines and remembers the bytes and validity of each row's."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.raw: list[bytes] = []
        self.invalid_utf8 = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._fh.readline()
        if not line:
            raise StopIteration
        self.raw.append(line)
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_utf8 = True
            return line.decode("utf-8", "surrogateescape")

    def take(self) -> tuple[bytes, bool]:
        """The bytes of the row just parsed and whether they were UTF-8; starts the next row."""
        raw, invalid = b"".join(self.raw), self.invalid_utf8
        self.raw, self.invalid_utf8 = [], False
        return raw, not invalid


def rows(
    path: Path, mapping: dict[str, str], stats: Stats, delimiter: str = ","
) -> Iterator[tuple[int, dict[str, str], bytes] | Rejected]:
    """(first line number, {field: cell}, raw bytes) per data row, header columns renamed by
    ``mapping``; rejected rows come back as Rejected (and are counted in ``stats``)."""
    source = str(path)
    with path.open("rb") as fh:
        if fh.read(3) != b"\xef\xbb\xbf":  # a UTF-8 byte order mark is not part of the header
            fh.seek(0)
        lines = _Lines(fh)
        reader = csv.reader(lines, delimiter=delimiter)
        header: list[str] | None = None
        last_line = 0
        while True:
            try:
                cells = next(reader)
                error = None
            except StopIteration:
                return
            except csv.Error as exc:
                cells, error = [], str(exc)
            first, last_line = last_line + 1, reader.line_num
            raw, utf8 = lines.take()
            if header is None:
                header = [mapping.get(name.strip(), name.strip()) for name in cells]
                continue
            if not cells and error is None:
                continue  # blank line
            stats.rows += 1
            if error is not None:
                yield stats.reject(source, first, "malformed_line", f"bad CSV row: {error}", raw)
            elif not utf8:
                yield stats.reject(source, first, "invalid_utf8", "the row is not UTF-8", raw)
            elif len(cells) != len(header):
                yield stats.reject(
                    source, first, "malformed_line",
                    f"{len(cells)} cells where the header has {len(header)}", raw,
                )
            else:
                yield first, dict(zip(header, cells, strict=True)), raw
