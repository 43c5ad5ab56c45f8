"""Client-side query parameters, the same on every backend: ``%(name)s`` placeholders.

Values are rendered as ClickHouse literals (strings escaped, numbers as numbers, lists as
arrays), so user input never becomes SQL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from streams.errors import RapportError

_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
)


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot bind non-finite float {value!r}")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.translate(_ESCAPES) + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"cannot bind a {type(value).__name__} as a query parameter")


def bind(sql: str, params: Mapping[str, Any] | None) -> str:
    """Substitute ``%(name)s`` placeholders with literals (``%%`` is a literal percent)."""
    if not params:
        return sql
    return sql % {k: literal(v) for k, v in params.items()}


READ_ONLY_STARTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")


def check_read_only(sql: str) -> None:
    """Refuse anything but one read-only statement (``rapport sql`` is read-only by default)."""
    text = sql.strip().rstrip(";").strip()
    first = text.split(None, 1)[0].upper() if text else ""
    if first not in READ_ONLY_STARTS or ";" in text:
        raise RapportError(
            "rapport sql runs one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN); "
            "use clickhouse-client for changes"
        )
