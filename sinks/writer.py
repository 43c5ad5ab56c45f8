"""The one way rows reach ClickHouse: batched per table and Kafka source, offsets riding along.

``add`` only buffers; ``flush_due``/``flush`` insert and return, per Kafka partition, the
highest offset whose rows are all stored, so the caller acknowledges only what is safe.
``flush_due`` inserts for ``flush_due_seconds`` at most (at least one batch, or one piece of
``PIECE_ROWS`` of a batch of rows not from Kafka) and leaves the rest for its next call: a worker
calls it after every batch of input on its event loop, where a dozen batches falling due together
held the loop for a quarter of a second, and a checkpoint's open-window figures (300k rows) for
more than a second.

``seal_unsourced`` marks the rows not from Kafka buffered so far (derived rows: whoever made them
counts them written), and ``unsourced_sealed`` says whether any of them is still unstored: a
checkpoint waits for that before its saved state becomes durable, while the agents go on.

Exactly-once effect: before a batch is inserted, its offset ranges are recorded in
``sink_batches``. After a crash, replayed rows below the recorded range are dropped (already
stored), and rows inside it are rebuilt into the very same batch, inserted under the same
``insert_deduplication_token`` so the server drops it if the first attempt had landed. Servers
without tokens (18.x) store such a replay twice and the ReplacingMergeTree key collapses it.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sinks.backends import Backend, InsertRejected, SinkUnavailable
from sinks.capabilities import Capabilities, probe
from sinks.tables import SINK_BATCHES, Table
from streams.errors import RapportError

TopicPartition = tuple[str, int]
Ranges = dict[TopicPartition, tuple[int, int]]
# A batch collects rows of one table derived from one set of Kafka partitions.
_Key = tuple[str, tuple[TopicPartition, ...]]
T = TypeVar("T")
# Rows per insert of a batch not from Kafka (no dedup token: it can be stored in pieces), so a
# flush's budget can stop between pieces: chDB takes ~4 µs a row, 10k rows ~40 ms.
PIECE_ROWS = 10_000


class BackpressureError(RapportError):
    """The writer already buffers ``max_buffered_rows``: pause consumption, flush, add again."""


class SinkDown(RapportError):
    """ClickHouse stayed unavailable through every retry: pause consumption, flush later."""


class TooManyRejected(RapportError):
    """So many rows of one batch were refused that the code, not the data, must be wrong."""


@dataclass(frozen=True)
class DeadLetter:
    """A row ClickHouse refused, with why; the rest of its batch was stored."""

    table: str
    row: dict[str, Any]
    reason: str
    code: int | None
    offsets: dict[TopicPartition, int]  # the position the row was added with


class Observer(Protocol):
    """Who watches the writer work (the worker's metrics)."""

    def inserted(self, table: str, rows: int, seconds: float) -> None: ...

    def retried(self) -> None: ...


class _Unobserved:
    """The default: nobody watches."""

    def inserted(self, table: str, rows: int, seconds: float) -> None:
        pass

    def retried(self) -> None:
        pass


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with full-jitter exponential backoff, so restarts do not stampede."""

    attempts: int = 6
    base_seconds: float = 0.2
    max_seconds: float = 5.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0.0, min(self.max_seconds, self.base_seconds * 2**attempt))


@dataclass
class _Batch:
    table: Table
    source: tuple[TopicPartition, ...]
    opened: float
    boundary: Ranges | None = None  # set when rebuilding a batch recorded before a crash
    rows: list[Sequence[Any]] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # row count after each add
    positions: list[dict[TopicPartition, int]] = field(default_factory=list)
    stored: int = 0  # rows already inserted (pieces of a batch not from Kafka)

    def append(self, rows: Sequence[Sequence[Any]], offsets: dict[TopicPartition, int]) -> None:
        self.rows.extend(rows)
        self.ends.append(len(self.rows))
        self.positions.append(offsets)

    def ranges(self) -> Ranges:
        if self.boundary is not None:
            return self.boundary
        return {tp: (self.positions[0][tp], self.positions[-1][tp]) for tp in self.source}

    def position_of(self, row: int) -> dict[TopicPartition, int]:
        return self.positions[bisect.bisect_right(self.ends, row)]


class Writer:
    """Batches rows per (table, Kafka source) by size and age and stores them exactly once.

    Rows are tuples in ``table.insert_columns`` order. ``offsets`` says which Kafka position
    the rows derive from (usually one partition: the offset of the message that produced
    them); per (table, source) it must advance with every call. Rows of one message for one
    table go in one call. Rows not from Kafka pass empty ``offsets``.
    """

    def __init__(
        self,
        backend: Backend,
        on_dead_letter: Callable[[DeadLetter], None],
        *,
        batch_rows: int = 50_000,
        batch_seconds: float = 1.0,
        flush_due_seconds: float = float("inf"),
        max_buffered_rows: int = 500_000,
        max_dead_letters: int = 1000,
        retry: RetryPolicy | None = None,
        capabilities: Capabilities | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        observer: Observer | None = None,
    ) -> None:
        self.backend = backend
        self.capabilities = capabilities or probe(backend)
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.flush_due_seconds = flush_due_seconds
        self.max_buffered_rows = max_buffered_rows
        self.max_dead_letters = max_dead_letters
        self._on_dead_letter = on_dead_letter
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._observer = observer or _Unobserved()
        self._open: dict[_Key, _Batch] = {}
        # Recorded in sink_batches, hence frozen until stored; at most one per key, so the
        # journal's latest entry per key always marks the one range that may be unstored.
        self._sealed: dict[_Key, _Batch] = {}
        self._last: dict[_Key, dict[TopicPartition, int]] = {}
        self._recovering: dict[_Key, Ranges | None] = {}
        self._low: dict[TopicPartition, int] = {}
        self._high: dict[TopicPartition, int] = {}

    @property
    def buffered_rows(self) -> int:
        return sum(
            len(b.rows) - b.stored for b in (*self._open.values(), *self._sealed.values())
        )

    def add(
        self, table: Table, rows: Sequence[Sequence[Any]], offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Buffer rows (no I/O but a one-time journal lookup per new key).

        Raises ``BackpressureError`` when full, ``ValueError`` when offsets do not advance,
        ``SinkDown`` when the journal cannot be read; in all these cases nothing was added.
        """
        position = dict(offsets)
        source = tuple(sorted(position))
        key = (table.name, source)
        previous = self._last.get(key)
        if previous is not None and source and not _advances(previous, position):
            raise ValueError(
                f"{table.name}: offsets {position} do not advance past {previous}; "
                "add each message's rows for a table in one call"
            )
        buffered = self.buffered_rows
        if rows and buffered and buffered + len(rows) > self.max_buffered_rows:
            raise BackpressureError(
                f"sink buffer full ({buffered} rows): pause consumption until flush() succeeds"
            )
        recorded = self._recorded_range(key)
        self._last[key] = position
        for tp, offset in position.items():
            self._low.setdefault(tp, offset)
            self._high[tp] = max(self._high.get(tp, offset), offset)
        if recorded is not None:
            if any(position[tp] < recorded[tp][0] for tp in source):
                return  # stored before the crash: dropping it is what makes replays free
            if all(position[tp] <= recorded[tp][1] for tp in source):
                self._rebuild(key, table, rows, position, recorded)
                return
            self._recovering[key] = None
            if key in self._open:
                self._sealed[key] = self._open.pop(key)
        if rows:
            batch = self._open.get(key)
            if batch is None:
                batch = self._open[key] = _Batch(table, source, self._clock())
            batch.append(rows, position)

    def flush_due(self) -> dict[TopicPartition, int]:
        """Insert the batches that are full or old, for ``flush_due_seconds`` at most (the
        rest: next call); return the stored offsets."""
        return self._flush(force=False)

    def flush(self) -> dict[TopicPartition, int]:
        """Insert every batch (but a rebuild still waiting for its replay); return offsets.

        Raises ``SinkDown`` when ClickHouse stays unavailable; what did get stored is then
        available from ``stored_offsets()``.
        """
        return self._flush(force=True)

    def seal_unsourced(self) -> None:
        """Seal the buffered rows not from Kafka: ``unsourced_sealed`` is true until all of them
        are stored (by ``flush_due`` calls, sealed batches first, or ``flush``); rows added
        from now on are not part of it."""
        for key in [k for k, b in self._open.items() if not b.source]:
            batch = self._open.pop(key)
            sealed = self._sealed.get(key)
            if sealed is None:
                self._sealed[key] = batch
            else:
                sealed.append(batch.rows, {})

    def unsourced_sealed(self) -> bool:
        """Whether rows not from Kafka sealed by ``seal_unsourced`` are still unstored."""
        return any(not b.source for b in self._sealed.values())

    def stored_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the highest offset whose rows (for every table) are all stored."""
        pending: dict[TopicPartition, int] = {}
        for batch in (*self._open.values(), *self._sealed.values()):
            for tp in batch.source:
                first = batch.positions[0][tp]
                pending[tp] = min(pending.get(tp, first), first)
        stored = {}
        for tp, high in self._high.items():
            safe = pending[tp] - 1 if tp in pending else high
            if safe >= self._low[tp]:
                stored[tp] = safe
        return stored

    def discard(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget buffered rows of partitions this worker lost; their new owner replays them."""
        gone = set(partitions)
        for state in (self._open, self._sealed, self._last, self._recovering):
            for key in [k for k in state if gone.intersection(k[1])]:
                del state[key]
        for tp in gone:
            self._low.pop(tp, None)
            self._high.pop(tp, None)

    # -- recovery -------------------------------------------------------------------------

    def _recorded_range(self, key: _Key) -> Ranges | None:
        """The range last recorded for ``key`` before this writer started, if still relevant."""
        if key not in self._recovering:
            table, source = key
            if not source:
                self._recovering[key] = None
            else:
                rows = self._retrying(
                    lambda: self.backend.execute(
                        f"SELECT ranges FROM {self.backend.target.database}.{SINK_BATCHES.name} "
                        "WHERE table_name = %(table)s AND source = %(source)s "
                        "ORDER BY recorded_ns DESC LIMIT 1",
                        {"table": table, "source": _source_text(source)},
                    )
                )
                self._recovering[key] = _parse_ranges(rows[0][0]) if rows else None
        return self._recovering[key]

    def _rebuild(
        self,
        key: _Key,
        table: Table,
        rows: Sequence[Sequence[Any]],
        position: dict[TopicPartition, int],
        recorded: Ranges,
    ) -> None:
        """Collect a replay of the recorded range; seal it once its last offset is reached."""
        if rows:
            batch = self._open.get(key)
            if batch is None:
                batch = self._open[key] = _Batch(table, key[1], self._clock(), boundary=recorded)
            batch.append(rows, position)
        if all(position[tp] == recorded[tp][1] for tp in key[1]):
            self._recovering[key] = None
            if key in self._open:
                self._sealed[key] = self._open.pop(key)

    # -- storing ----------------------------------------------------------------------------

    def _flush(self, force: bool) -> dict[TopicPartition, int]:
        started = self._clock()
        budget = float("inf") if force else self.flush_due_seconds

        def spent() -> bool:
            return self._clock() - started >= budget

        for key in list(self._sealed):  # recorded, not yet stored (a flush cut short or failed)
            if spent() or not self._store(self._sealed[key], spent):
                return self.stored_offsets()
            del self._sealed[key]
        now = self._clock()
        due = [
            (key, batch)
            for key, batch in self._open.items()
            if batch.boundary is None
            and key not in self._sealed  # one recorded range per key may be unstored
            and (
                force
                or len(batch.rows) >= self.batch_rows
                or now - batch.opened >= self.batch_seconds
            )
        ]
        stamp = time.time_ns()
        journal = [
            (batch.table.name, _source_text(batch.source), _ranges_text(batch.ranges()), stamp)
            for _, batch in due
            if batch.source
        ]
        if journal:
            self._retrying(
                lambda: self.backend.insert(SINK_BATCHES.name, SINK_BATCHES.insert_columns, journal)
            )
        for key, _ in due:
            self._sealed[key] = self._open.pop(key)
        for i, (key, batch) in enumerate(due):
            if i and spent() or not self._store(batch, spent):
                break  # recorded: stored first thing next call
            del self._sealed[key]
        return self.stored_offsets()

    def _store(self, batch: _Batch, spent: Callable[[], bool]) -> bool:
        """Insert a batch, whole if from Kafka (one dedup token), else in pieces until
        ``spent()``; whether all of it is stored. Refused rows reach the callback only once
        the rest of their piece is stored."""
        token = None
        if batch.source and self.capabilities.insert_deduplication_token:
            token = f"{batch.table.name}|{_ranges_text(batch.ranges())}"
        piece = PIECE_ROWS if not batch.source else len(batch.rows)
        while batch.stored < len(batch.rows):
            if batch.stored and spent():
                return False
            letters: list[DeadLetter] = []
            end = min(len(batch.rows), batch.stored + piece)
            self._insert(batch, batch.stored, end, token, letters)
            batch.stored = end
            for letter in letters:
                self._on_dead_letter(letter)
        return True

    def _insert(
        self, batch: _Batch, lo: int, hi: int, token: str | None, letters: list[DeadLetter]
    ) -> None:
        """Insert rows[lo:hi]; on rejection halve until the bad rows stand alone.

        Each piece gets a token derived from the batch's, so a replay splits identically and
        deduplicates piece by piece.
        """
        settings = None
        if token is not None:
            whole = lo == 0 and hi == len(batch.rows)
            settings = {"insert_deduplication_token": token if whole else f"{token}|{lo}-{hi}"}
        table = batch.table
        started = time.perf_counter()
        try:
            self._retrying(
                lambda: self.backend.insert(
                    table.name, table.insert_columns, batch.rows[lo:hi], settings=settings
                )
            )
        except InsertRejected as exc:
            if hi - lo > 1:
                middle = (lo + hi) // 2
                self._insert(batch, lo, middle, token, letters)
                self._insert(batch, middle, hi, token, letters)
                return
            if len(letters) == self.max_dead_letters:
                # Isolating costs two inserts per bad row; a batch this bad is a schema bug.
                raise TooManyRejected(
                    f"ClickHouse refused more than {self.max_dead_letters} rows of one "
                    f"{table.name} batch (last: {exc}); the batch is kept, fix the writer "
                    "or the table and flush again"
                ) from exc
            letters.append(
                DeadLetter(
                    table=table.name,
                    row=dict(zip(table.insert_columns, batch.rows[lo], strict=True)),
                    reason=str(exc),
                    code=exc.code,
                    offsets=batch.position_of(lo),
                )
            )
        else:
            self._observer.inserted(table.name, hi - lo, time.perf_counter() - started)

    def _retrying(self, action: Callable[[], T]) -> T:
        last: SinkUnavailable | None = None
        for attempt in range(self._retry.attempts):
            if attempt:
                self._observer.retried()
                self._sleep(self._retry.delay(attempt - 1))
            try:
                return action()
            except SinkUnavailable as exc:
                last = exc
        raise SinkDown(
            f"{last} (gave up after {self._retry.attempts} attempts): pause consumption and "
            "call flush() again later; nothing unstored was reported as stored"
        ) from last


def _advances(previous: dict[TopicPartition, int], current: dict[TopicPartition, int]) -> bool:
    return all(current[tp] >= previous[tp] for tp in current) and current != previous


def _source_text(source: Iterable[TopicPartition]) -> str:
    return ",".join(f"{topic}:{partition}" for topic, partition in source)


def _ranges_text(ranges: Ranges) -> str:
    """``topic:partition:first-last,...``: the journal entry and the dedup token's core."""
    return ",".join(
        f"{topic}:{partition}:{first}-{last}"
        for (topic, partition), (first, last) in sorted(ranges.items())
    )


def _parse_ranges(text: str) -> Ranges:
    ranges: Ranges = {}
    for item in text.split(","):
        topic, partition, span = item.rsplit(":", 2)
        first, last = span.split("-")
        ranges[(topic, int(partition))] = (int(first), int(last))
    return ranges
