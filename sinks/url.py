"""One URL names the ClickHouse sink: ``chdb://PATH`` or ``clickhouse://[user:pass@]host:port/db``.

``clickhouses://`` is the same server over TLS. ``chdb://`` takes a relative or absolute path
(``chdb:///abs/path`` and ``chdb://var/chdb`` both work), resolved against the current
directory, and an optional ``?database=NAME`` (default ``rapport``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from streams.errors import ConfigError

EXAMPLES = "chdb://var/chdb or clickhouse://default:@127.0.0.1:9000/rapport"


@dataclass(frozen=True)
class ClickHouseTarget:
    """A parsed sink URL: either an embedded chDB directory or a server address."""

    kind: str  # "chdb" | "server"
    path: str = ""  # chdb only
    host: str = ""
    port: int = 9000
    user: str = "default"
    password: str = field(default="", repr=False)  # shown by display() as ***
    database: str = "rapport"
    secure: bool = False
    verify: bool = True
    ca_certs: str = ""  # CA bundle for TLS (empty: the system's)

    def display(self) -> str:
        """The URL with the password masked, safe to print and log."""
        if self.kind == "chdb":
            suffix = "" if self.database == "rapport" else f"?database={self.database}"
            return f"chdb://{self.path}{suffix}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        auth = f"{self.user}:***@" if self.password else f"{self.user}@"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.database}"


def parse_clickhouse_url(url: str) -> ClickHouseTarget:
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ConfigError(f"ClickHouse URL {url!r} has no scheme; use {EXAMPLES}")
    if scheme == "chdb":
        path, _, query_text = rest.partition("?")
        if not path:
            raise ConfigError(f"ClickHouse URL {url!r} has no path; use {EXAMPLES}")
        database = parse_qs(query_text).get("database", ["rapport"])[0]
        _check_database(database)
        return ClickHouseTarget(kind="chdb", path=str(Path(path).resolve()), database=database)
    if scheme not in ("clickhouse", "clickhouses"):
        raise ConfigError(f"ClickHouse URL {url!r} has unknown scheme {scheme!r}; use {EXAMPLES}")
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"ClickHouse URL {url!r} has an invalid port; use {EXAMPLES}") from None
    if not parts.hostname:
        raise ConfigError(f"ClickHouse URL {url!r} has no host; use {EXAMPLES}")
    secure = scheme == "clickhouses"
    database = parts.path.strip("/") or "rapport"
    _check_database(database)
    query = parse_qs(parts.query)
    verify = query.get("verify", ["true"])[0].lower() not in ("0", "false", "no")
    return ClickHouseTarget(
        kind="server",
        host=parts.hostname,
        port=port or (9440 if secure else 9000),
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        database=database,
        secure=secure,
        verify=verify,
    )


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database (same server or chDB directory)."""
    _check_database(database)
    target = parse_clickhouse_url(url)
    if target.kind == "chdb":
        return f"chdb://{target.path}?database={database}"
    parts = urlsplit(url.strip())
    return parts._replace(path=f"/{database}").geturl()


def _check_database(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"ClickHouse database name {name!r} must be letters, digits and _")
