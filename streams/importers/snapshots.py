"""Account snapshots (profile counts at a time) from a CSV, e.g. a Twitter user export.

Twitter's column names work without a mapping (``TWITTER_COLUMNS``); ``mapping`` renames
others. ``created_at`` may be a Twitter time (``Fri Apr 06 10:58:22 +0000 2007``), ISO-8601 or
epoch ms. The snapshot time is the row's ``ts`` (Twitter exports: ``updated``) when there is
one, else the caller's ``now_ms``: an undated export is read as a picture of now. Snapshot ids
are ``snapshot:<file name>:<line>`` whatever that time, so importing a file twice gives the same
ids. Labelled data sets keep their label column for evaluation: ``labels_from_csv``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from schemas import SNAPSHOT, field_names
from schemas.validate import validate_snapshot
from streams.errors import RapportError
from streams.importers.base import ImportRun, Item, Rejected, Stats, clock, existing_file
from streams.importers.coerce import int_cell, time_value
from streams.importers.csvfile import check_mapping
from streams.importers.csvrows import rows

TWITTER_COLUMNS = {
    "id": "account",
    "followers_count": "followers",
    "friends_count": "following",
    "statuses_count": "posts",
    "updated": "ts",
}
# Cresci et al. 2015 ("Fame for sale") ``dataset`` values
FAKE_LABELS = frozenset({"INT", "FSF", "TWT"})
HUMAN_LABELS = frozenset({"E13", "TFP"})


def read(
    path: str | Path,
    *,
    mapping: dict[str, str] | None = None,
    delimiter: str = ",",
    platform: str = "",
    now_ms: int | None = None,
) -> ImportRun:
    """Import account snapshots; ``platform`` fills rows without a platform column."""
    p = existing_file(path)
    columns = check_mapping({**TWITTER_COLUMNS, **(mapping or {})}, field_names(SNAPSHOT))
    stats = Stats()
    items = _items(p, columns, delimiter, platform, clock(now_ms), stats)
    return ImportRun(str(p), SNAPSHOT, stats, items)


def _items(
    path: Path, mapping: dict[str, str], delimiter: str, platform: str, now_ms: int,
    stats: Stats,
) -> Iterator[Item]:
    source = str(path)
    prefix = f"snapshot:{path.name}:"
    for row in rows(path, mapping, stats, delimiter):
        if isinstance(row, Rejected):
            yield row
            continue
        line, cells, raw = row
        get = cells.get
        ts, created_at = get("ts", "").strip(), get("created_at", "").strip()
        snapshot = {
            "snapshot_id": get("snapshot_id") or f"{prefix}{line}",
            "account": get("account") or None,
            "ts": time_value(ts) if ts else now_ms,
            "followers": int_cell(get("followers", "")),
            "following": int_cell(get("following", "")),
            "posts": int_cell(get("posts", "")),
            "created_at": time_value(created_at) if created_at else None,
            "platform": get("platform") or platform,
        }
        result = validate_snapshot(snapshot, now_ms)
        yield stats.settle(result, source, line, raw, kind="SNAPSHOT")


def labels_from_csv(
    path: str | Path, *, account_column: str = "id", label_column: str = "dataset",
    delimiter: str = ",",
) -> dict[str, str]:
    """{account: label} from a labelled account file (rows missing either cell are left out)."""
    p = existing_file(path)
    labels: dict[str, str] = {}
    for row in rows(p, {}, Stats(), delimiter):
        if isinstance(row, Rejected):
            continue
        cells = row[1]
        if account_column not in cells or label_column not in cells:
            raise RapportError(f"{p} has no {account_column!r} or no {label_column!r} column")
        account, label = cells[account_column].strip(), cells[label_column].strip()
        if account and label:
            labels[account] = label
    return labels


def is_fake(label: str) -> bool | None:
    """Whether a Cresci label marks a bought fake follower (None for a label it does not know)."""
    if label in FAKE_LABELS:
        return True
    return False if label in HUMAN_LABELS else None
