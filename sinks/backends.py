"""Two ways to talk to ClickHouse behind one small interface.

``NativeBackend`` speaks the native protocol to a server (clickhouse-driver, columnar inserts);
``ChdbBackend`` runs ClickHouse in-process (chDB). Queries use clickhouse-driver's
``%(name)s`` parameters on both, bound client-side (``sinks.sql``), so SQL written once runs
on either.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, Protocol

from sinks.background import BackgroundThreads
from sinks.sql import bind, literal
from sinks.url import ClickHouseTarget
from streams.errors import RapportError


class SinkUnavailable(RapportError):
    """ClickHouse cannot be reached (down, refused, timed out): retry later."""


class SinkLoginRefused(RapportError):
    """The server refused the user or password: retrying will not help, the settings will."""


class InsertRejected(RapportError):
    """ClickHouse refused the rows themselves (a type mismatch): retrying will not help."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


# Server error codes that say "not now" rather than "never": overload, timeouts, lost quorum.
TRANSIENT_CODES = frozenset({159, 202, 209, 210, 241, 242, 252, 319, 425, 999})
# Codes that blame the inserted data: parse failures, type mismatches, out-of-range values.
REJECTED_CODES = frozenset({6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 321, 349})
# Unknown user, wrong password, password required, authentication failed (newer servers).
AUTH_CODES = frozenset({192, 193, 194, 516})
_CODE = re.compile(r"Code: (\d+)")


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code carried by an exception (attribute or ``Code: N`` text)."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


class Backend(Protocol):
    """What the sink and reports need of ClickHouse."""

    target: ClickHouseTarget
    version: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; return the rows of a SELECT (empty for DDL)."""
        ...

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert rows (tuples in ``columns`` order) into ``database.table``.

        ``settings`` apply to this insert only (e.g. ``insert_deduplication_token``). Raises
        ``InsertRejected`` when the data itself is refused, ``SinkUnavailable`` when the
        server cannot take it now.
        """
        ...

    def close(self) -> None: ...


class NativeBackend:
    """A ClickHouse server over the native protocol: user and password, and TLS (``secure``,
    ``verify``, ``ca_certs``) from the target (URL and ``[clickhouse]`` settings)."""

    def __init__(self, target: ClickHouseTarget, connect_timeout: float = 5.0) -> None:
        from clickhouse_driver import Client
        from clickhouse_driver.errors import (
            NetworkError,
            ServerException,
            SocketTimeoutError,
            TypeMismatchError,
        )

        self.target = target
        self._network_errors = (NetworkError, SocketTimeoutError, OSError, EOFError)
        self._server_error = ServerException
        # clickhouse-driver encodes columns client-side; a value of the wrong type fails there.
        self._encode_errors = (
            TypeMismatchError, AttributeError, TypeError, ValueError, OverflowError, struct.error,
        )
        self._client = Client(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            secure=target.secure,
            verify=target.verify,
            ca_certs=target.ca_certs or None,  # None: the system's CAs
            connect_timeout=connect_timeout,
            send_receive_timeout=300,
            settings={"strings_as_bytes": False},
        )
        rows = self._run("SELECT version()")
        self.version = str(rows[0][0])
        self._run(f"CREATE DATABASE IF NOT EXISTS {target.database}")
        # unqualified names in users' queries mean the sink's database (from reconnect on)
        self._client.connection.database = target.database
        self._client.disconnect()

    def _run(
        self, sql: str, data: Any = None, settings: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        try:
            if data is None:
                return list(self._client.execute(sql))
            self._client.execute(sql, data, columnar=True, settings=settings)
            return []
        except self._network_errors as exc:
            self._client.disconnect()
            raise SinkUnavailable(
                f"ClickHouse at {self.target.display()} is unreachable: {exc}"
            ) from exc
        except self._server_error as exc:
            if exc.code in AUTH_CODES:
                raise SinkLoginRefused(
                    f"ClickHouse at {self.target.display()} refused user {self.target.user!r} "
                    "(wrong user or password): check the URL's user, clickhouse.user and "
                    "RAPPORT_CLICKHOUSE__PASSWORD"
                ) from None
            if exc.code in TRANSIENT_CODES:
                raise SinkUnavailable(
                    f"ClickHouse at {self.target.display()} is busy: {_first_line(exc)}"
                ) from exc
            if data is not None and exc.code in REJECTED_CODES:
                raise InsertRejected(_first_line(exc), exc.code) from exc
            raise

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._run(bind(sql, params))

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if not rows:
            return
        by_column = [list(col) for col in zip(*rows, strict=True)]
        sql = f"INSERT INTO {self.target.database}.{table} ({', '.join(columns)}) VALUES"
        try:
            self._run(sql, by_column, settings)
        except self._encode_errors as exc:
            raise InsertRejected(f"{table}: {_first_line(exc)}", error_code(exc)) from exc

    def close(self) -> None:
        self._client.disconnect()


class ChdbLocked(RapportError):
    """Another process (a running worker) owns the chDB data directory."""


class ChdbBackend:
    """ClickHouse embedded in this process (chDB); one process owns a data directory.

    There is no network, so no user, password or TLS: file permissions on the directory are
    the only access control.

    Inserts go in as Arrow record batches typed from the table's own columns: about three
    times the throughput of JSONEachRow text, and a wrong value fails in Python, per column.
    ClickHouse's background threads (merges) are kept behind the caller's (``background``).
    """

    def __init__(self, target: ClickHouseTarget) -> None:
        from chdb import session

        self.target = target
        if target.path not in _CHDB_OPEN and _owned_elsewhere(target.path):
            raise ChdbLocked(
                f"chDB at {target.path} is open in another process (a running worker?): query "
                "through the worker that owns it (its web port), or stop it"
            )
        try:
            self._session = session.Session(target.path)
            _CHDB_OPEN.add(target.path)
        except RuntimeError as exc:
            raise ChdbLocked(
                f"cannot open chDB at {target.path}: {exc}. chDB allows one process per data "
                "directory: query through the worker that owns it (its web port), or stop it"
            ) from exc
        self.version = str(self._query("SELECT version() AS v")[0][0])
        self._query(f"CREATE DATABASE IF NOT EXISTS {target.database}")
        self._query(f"USE {target.database}")  # unqualified names mean the sink's database
        self._column_types: dict[str, dict[str, str]] = {}
        self._background = BackgroundThreads()

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            table = self._session.query(sql, "ArrowTable")
        except Exception as exc:
            _reraise_chdb(exc, insert=False)
        if table is None or table.num_columns == 0:
            return []
        return list(zip(*(col.to_pylist() for col in table.columns), strict=True))

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._query(bind(sql, params))

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if not rows:
            return
        import pyarrow as pa

        types = self._types_of(table, columns)
        arrays = []
        for name, values in zip(columns, zip(*rows, strict=True), strict=True):
            try:
                arrays.append(_arrow_array(values, _arrow_type(types[name])))
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                raise InsertRejected(f"{table}.{name} ({types[name]}): {exc}") from exc
        batch = pa.RecordBatch.from_arrays(arrays, names=list(columns))
        stream = io.BytesIO()
        with pa.ipc.new_stream(stream, batch.schema) as writer:
            writer.write_batch(batch)
        sql = f"INSERT INTO {self.target.database}.{table} ({', '.join(columns)})"
        if settings:
            sql += " SETTINGS " + ", ".join(f"{k} = {literal(v)}" for k, v in settings.items())
        try:
            with self._session.send_insert(sql, "ArrowStream") as inserter:
                inserter.append(stream.getvalue())
                inserter.finish()
        except Exception as exc:
            _reraise_chdb(exc, insert=True)
        self._background.tend()  # merges start after inserts

    def _types_of(self, table: str, columns: Sequence[str]) -> dict[str, str]:
        """Column name → ClickHouse type, cached; re-read when a column is new (migrations)."""
        known = self._column_types.get(table, {})
        if not all(name in known for name in columns):
            rows = self._query(
                bind(
                    "SELECT name, type FROM system.columns "
                    "WHERE database = %(database)s AND table = %(table)s",
                    {"database": self.target.database, "table": table},
                )
            )
            known = self._column_types[table] = {str(n): str(t) for n, t in rows}
            missing = [name for name in columns if name not in known]
            if missing:
                raise RapportError(
                    f"table {self.target.database}.{table} has no column(s) {', '.join(missing)}"
                    " (run rapport db migrate)"
                )
        return known

    def close(self) -> None:
        self._session.close()
        _CHDB_OPEN.discard(self.target.path)


_CHDB_OPEN: set[str] = set()  # data directories this process has a chDB session on


def _owned_elsewhere(path: str) -> bool:
    """Whether another process holds the directory's lock (ClickHouse ``flock``s ``status``).
    Asking first spares the user the error chDB would print to stderr before raising."""
    try:
        fd = os.open(os.path.join(path, "status"), os.O_RDONLY)
    except OSError:
        return False  # no such directory or file yet: nobody owns it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _reraise_chdb(exc: Exception, insert: bool) -> NoReturn:
    """chDB raises plain RuntimeErrors; sort them by the ClickHouse code they quote."""
    code = error_code(exc)
    if code in TRANSIENT_CODES:
        raise SinkUnavailable(f"chDB is busy: {_first_line(exc)}") from exc
    if insert and code in REJECTED_CODES:
        raise InsertRejected(_first_line(exc), code) from exc
    raise exc


def _arrow_type(clickhouse_type: str) -> Any:
    """The Arrow type that ClickHouse reads back as ``clickhouse_type``; None lets Arrow infer."""
    import pyarrow as pa

    inner = re.fullmatch(r"(Nullable|LowCardinality|Array)\((.*)\)", clickhouse_type)
    if inner:
        element = _arrow_type(inner.group(2))
        if inner.group(1) != "Array":
            return element
        return pa.list_(element) if element is not None else None
    simple = {
        "String": pa.string(),
        "Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(),
        "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(), "UInt64": pa.uint64(),
        "Float32": pa.float32(), "Float64": pa.float64(),
    }
    return simple.get(clickhouse_type)


def _arrow_array(values: Sequence[Any], arrow_type: Any) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values, type=arrow_type)
    except pa.ArrowTypeError:
        # Flags arrive as bools; Arrow will not put a bool into an integer column by itself.
        if not any(isinstance(v, bool) for v in values):
            raise
        return pa.array([int(v) if isinstance(v, bool) else v for v in values], type=arrow_type)


def connect(target: ClickHouseTarget) -> Backend:
    """Open the backend a sink URL names; create its database if needed."""
    if target.kind == "chdb":
        return ChdbBackend(target)
    return NativeBackend(target)
