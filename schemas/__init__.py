"""Rapport's event contract: the Avro schemas, every version ever published, and the headers.

Every Kafka message carries two headers saying which schema and version wrote it, so a reader
can decode data written by any older version into the current shape (Avro schema resolution).

- ``<name>.avsc`` in this folder is the *current* schema; it may refer to a named type of
  another file (the batch envelope refers to ``rapport.Interaction``).
- ``history/<name>.v<N>.avsc`` is version N exactly as published, self-contained. Never edit
  one: publish a new version instead (bump ``CURRENT`` and write the next history file with
  ``python -c "import schemas; schemas.publish('<schema>')"``). ``tests/test_schemas.py``
  fails when the current schema differs from its published version or cannot read data written
  by an older one.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HISTORY = HERE / "history"

SCHEMA_HEADER = "rapport-schema"
VERSION_HEADER = "rapport-schema-version"

INTERACTION = "interaction"
INTERACTION_BATCH = "interaction-batch"
SNAPSHOT = "snapshot"
ALERT = "alert"
DEAD_LETTER = "dead-letter"

# schema name (the header value) -> current version
CURRENT: dict[str, int] = {
    INTERACTION: 1,
    INTERACTION_BATCH: 1,
    SNAPSHOT: 1,
    ALERT: 1,
    DEAD_LETTER: 1,
}

# named types a schema file uses but does not define: schema name -> the schemas defining them
_REFERENCES: dict[str, tuple[str, ...]] = {INTERACTION_BATCH: (INTERACTION,)}

_VERSION_FILE = re.compile(r"^(?P<stem>[a-z_]+)\.v(?P<version>[1-9][0-9]*)\.avsc$")


def _stem(name: str) -> str:
    if name not in CURRENT:
        raise KeyError(f"unknown schema {name!r}; known: {', '.join(CURRENT)}")
    return name.replace("-", "_")


def versions(name: str) -> tuple[int, ...]:
    """Every published version of a schema, oldest first (from the history files)."""
    stem = _stem(name)
    found = []
    for path in HISTORY.glob(f"{stem}.v*.avsc"):
        match = _VERSION_FILE.match(path.name)
        if match and match["stem"] == stem:
            found.append(int(match["version"]))
    return tuple(sorted(found))


def _full_name(schema: dict[str, Any]) -> str:
    name = str(schema["name"])
    return name if "." in name else f"{schema.get('namespace', '')}.{name}"


def _inline(node: Any, name: str, definition: dict[str, Any]) -> tuple[Any, bool]:
    """Replace the first reference to ``name`` by its definition (Avro needs it defined once)."""
    if node == name:
        return copy.deepcopy(definition), True
    if isinstance(node, list):
        out, done = [], False
        for item in node:
            if not done:
                item, done = _inline(item, name, definition)
            out.append(item)
        return out, done
    if isinstance(node, dict):
        result, done = {}, False
        for key, value in node.items():
            if not done and key in ("type", "items", "values", "fields"):
                value, done = _inline(value, name, definition)
            result[key] = value
        return result, done
    return node, False


def current_schema(name: str) -> dict[str, Any]:
    """The current schema of ``name`` as self-contained Avro JSON (references inlined)."""
    schema: dict[str, Any] = json.loads((HERE / f"{_stem(name)}.avsc").read_text("utf-8"))
    for ref in _REFERENCES.get(name, ()):
        definition = current_schema(ref)
        schema, _ = _inline(schema, _full_name(definition), definition)
    return schema


@functools.cache
def _published(name: str, version: int) -> str:
    path = HISTORY / f"{_stem(name)}.v{version}.avsc"
    if not path.exists():
        raise KeyError(f"schema {name!r} has no published version {version}")
    return path.read_text("utf-8")


def schema(name: str, version: int | None = None) -> dict[str, Any]:
    """Version ``version`` of schema ``name`` as published (default: the current version)."""
    published: dict[str, Any] = json.loads(
        _published(name, CURRENT[name] if version is None else version)
    )
    return published


def field_names(name: str) -> tuple[str, ...]:
    """The field names of the current version of record schema ``name``, in order."""
    return tuple(f["name"] for f in schema(name)["fields"])


def publish(name: str) -> Path:
    """Write the current schema of ``name`` as history version ``CURRENT[name]`` (new only)."""
    path = HISTORY / f"{_stem(name)}.v{CURRENT[name]}.avsc"
    if path.exists():
        raise FileExistsError(f"{path} is already published; bump CURRENT[{name!r}] first")
    path.write_text(json.dumps(current_schema(name), indent=2) + "\n", "utf-8")
    return path


def kafka_headers(name: str, version: int | None = None) -> list[tuple[str, bytes]]:
    """The headers to send with a message written with ``name`` (current version by default)."""
    v = CURRENT[name] if version is None else version
    return [(SCHEMA_HEADER, name.encode()), (VERSION_HEADER, str(v).encode())]


def all_versions() -> Iterator[tuple[str, int]]:
    """Every (schema, version) ever published."""
    for name in CURRENT:
        for v in versions(name):
            yield name, v
