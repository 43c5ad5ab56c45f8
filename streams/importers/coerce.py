"""Text formats to schema types: times to epoch ms, CSV cells to ints and lists.

Anything that does not convert is passed through unchanged, so validation reports it as a wrong
type with the offending value instead of each importer inventing its own message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_TWITTER_TIME = "%a %b %d %H:%M:%S %z %Y"  # Fri Apr 06 10:58:22 +0000 2007


def datetime_ms(dt: datetime) -> int:
    """Exact epoch ms (float ``timestamp()`` can be 1 ms off); naive times are UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _MS


def iso_ms(text: str) -> int | None:
    """ISO-8601 time (date only, naive = UTC, ``Z`` or an offset) to ms; None if it is not one."""
    try:
        return datetime_ms(datetime.fromisoformat(text))
    except ValueError:
        return None


def twitter_ms(text: str) -> int | None:
    """Twitter API time (``Fri Apr 06 10:58:22 +0000 2007``) to ms; None if it is not one."""
    try:
        return datetime_ms(datetime.strptime(text, _TWITTER_TIME))
    except ValueError:
        return None


def _is_int(text: str) -> bool:
    return text.isdigit() or (text[:1] == "-" and text[1:].isdigit())


def time_value(value: Any) -> Any:
    """A time as ms: int as is, digit string, ISO-8601 string, datetime; else unchanged."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        text = value.strip()
        if _is_int(text):
            return int(text)
        ms = iso_ms(text)
        if ms is None:
            ms = twitter_ms(text)
        return value if ms is None else ms
    if isinstance(value, datetime):
        return datetime_ms(value)
    return value


def int_cell(text: str) -> int | str | None:
    """A CSV count: empty is None, digits an int; anything else stays text (a wrong type)."""
    text = text.strip()
    if not text:
        return None
    return int(text) if _is_int(text) else text


def event_from_cells(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row (all text) as event field types: empty cells are absent, urls split on spaces."""
    out: dict[str, Any] = {}
    for field, cell in row.items():
        if field in ("followers", "following", "posts"):
            out[field] = int_cell(cell)
        elif field == "urls":
            out[field] = cell.split()
        elif field == "ts":
            out[field] = time_value(cell) if cell else None
        elif cell:
            out[field] = cell
    return out


def with_defaults(
    record: dict[str, Any], default_id: str, platform: str | None
) -> dict[str, Any]:
    """A loosely typed record made ready for validation: a deterministic event_id where it
    has none, the caller's platform where it has none, ``ts`` converted to ms."""
    if record.get("event_id") is None:
        record["event_id"] = default_id
    if platform is not None and not record.get("platform"):
        record["platform"] = platform
    if "ts" in record:
        record["ts"] = time_value(record["ts"])
    return record
