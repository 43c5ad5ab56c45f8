"""The sink contract, run unchanged on chDB and on a real ClickHouse server.

Offsets are reported only once stored; replays do not duplicate; a refused row goes to the
dead-letter callback while the rest lands; ClickHouse outages are retried, then surfaced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from sinks import writer as writer_module
from sinks.backends import Backend, InsertRejected, SinkUnavailable
from sinks.capabilities import Capabilities, probe
from sinks.migrations import MIGRATIONS, migrate
from sinks.tables import INTERACTIONS, WINDOW_AGGREGATES
from sinks.url import ClickHouseTarget
from sinks.writer import (
    BackpressureError,
    DeadLetter,
    RetryPolicy,
    SinkDown,
    TooManyRejected,
    Writer,
)

TOPIC = "rapport.interactions"
TP = (TOPIC, 0)
NO_WAIT = RetryPolicy(attempts=3, base_seconds=0.0)


def interaction(offset: int, partition: int = 0, copy: int = 0) -> tuple[Any, ...]:
    event_id = f"e{partition}-{offset}" + (f"-{copy}" if copy else "")
    return (
        event_id, "REPLY", f"a{offset % 7}", f"b{offset % 5}", 1_700_000_000_000 + offset,
        None, None, "hi", ["https://x.test"], "test",
        None, None, None, TOPIC, partition, offset,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """A backend whose inserts into one table fail: before storing, or after (a lost ack)."""

    def __init__(self, inner: Backend, table: str, failures: int, after_insert: bool = False):
        self.inner = inner
        self.target = inner.target
        self.version = inner.version
        self.table = table
        self.failures = failures
        self.after_insert = after_insert

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.inner.execute(sql, params)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if table == self.table and self.failures:
            self.failures -= 1
            if self.after_insert:
                self.inner.insert(table, columns, rows, settings=settings)
            raise SinkUnavailable("simulated outage")
        self.inner.insert(table, columns, rows, settings=settings)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def fresh(fresh_backend: Backend) -> Backend:
    """A backend on a new, empty database, dropped afterwards."""
    return fresh_backend


@pytest.fixture
def backend(fresh: Backend) -> Backend:
    migrate(fresh)
    return fresh


def count(backend: Backend, table: str, final: bool = False) -> int:
    suffix = " FINAL" if final else ""
    sql = f"SELECT count() FROM {backend.target.database}.{table}{suffix}"
    return int(backend.execute(sql)[0][0])


def writer(backend: Backend, letters: list[DeadLetter] | None = None, **options: Any) -> Writer:
    sink = letters if letters is not None else []
    options.setdefault("retry", NO_WAIT)
    return Writer(backend, sink.append, sleep=lambda _: None, **options)


def add_messages(w: Writer, offsets: range, rows_per_message: int = 1) -> None:
    for offset in offsets:
        rows = [interaction(offset, copy=k) for k in range(rows_per_message)]
        w.add(INTERACTIONS, rows, {TP: offset})


def test_migrations_are_idempotent(fresh: Backend) -> None:
    assert [m.number for m in migrate(fresh)] == [m.number for m in MIGRATIONS]
    assert migrate(fresh) == []
    tables = {
        name for (name,) in fresh.execute(
            "SELECT name FROM system.tables WHERE database = %(db)s", {"db": fresh.target.database}
        )
    }
    assert {"interactions", "window_aggregates", "sink_batches", "schema_migrations"} <= tables


def test_batches_by_size(backend: Backend) -> None:
    w = writer(backend, batch_rows=100, batch_seconds=3600, clock=Clock())
    add_messages(w, range(0, 99))
    assert w.flush_due() == {}
    assert count(backend, "interactions") == 0
    add_messages(w, range(99, 150))
    assert w.flush_due() == {TP: 149}
    assert count(backend, "interactions") == 150


def test_batches_by_time(backend: Backend) -> None:
    clock = Clock()
    w = writer(backend, batch_rows=1000, batch_seconds=1.0, clock=clock)
    add_messages(w, range(10))
    clock.now = 0.9
    assert w.flush_due() == {}
    clock.now = 1.0
    assert w.flush_due() == {TP: 9}
    assert count(backend, "interactions") == 10


def test_offsets_reported_only_after_the_insert_succeeded(backend: Backend) -> None:
    flaky = Flaky(backend, "interactions", failures=NO_WAIT.attempts)
    w = writer(flaky)
    add_messages(w, range(5))
    with pytest.raises(SinkDown, match="simulated outage"):
        w.flush()
    assert w.stored_offsets() == {}
    assert count(backend, "interactions") == 0
    assert w.flush() == {TP: 4}  # ClickHouse is back: the same batch goes in
    assert count(backend, "interactions") == 5


def test_stored_offsets_wait_for_every_table(backend: Backend) -> None:
    w = writer(backend, batch_rows=3, batch_seconds=3600, clock=Clock())
    aggregate = ("a", 3_600_000, 0, 0, "all", 1, 0, 1, 0, 0, 0, 0, None, None, None, 0, 0, 0, 0, 1)
    w.add(WINDOW_AGGREGATES, [aggregate], {TP: 0})
    add_messages(w, range(1, 4))
    assert w.flush_due() == {}  # interactions stored, but offset 0's aggregate is not
    assert w.flush() == {TP: 3}


def test_replay_after_a_crash_stores_nothing_twice(backend: Backend) -> None:
    caps = probe(backend)
    first = writer(backend)
    add_messages(first, range(10))
    first.flush()
    add_messages(first, range(10, 20))
    first.flush()
    # Crash before the consumer committed: a new writer sees the same messages again.
    # 0-9 lie below the last recorded batch, so they are known stored and dropped; 10-19
    # may or may not have landed, so they are rebuilt into the recorded batch.
    second = writer(backend)
    add_messages(second, range(25))
    assert second.flush() == {TP: 24}
    assert count(backend, "interactions", final=True) == 25
    replayed = 0 if caps.deduplicates_inserts else 10  # the server dropped it by token
    assert count(backend, "interactions") == 25 + replayed


class Slow(Flaky):
    """A backend whose every insert takes ``seconds`` on ``clock``."""

    def __init__(self, inner: Backend, clock: Clock, seconds: float) -> None:
        super().__init__(inner, "", failures=0)
        self.clock, self.seconds = clock, seconds

    def insert(self, *args: Any, **kwargs: Any) -> None:
        self.clock.now += self.seconds
        self.inner.insert(*args, **kwargs)


def test_flush_due_stops_at_its_budget_and_what_it_left_survives_a_crash(
    backend: Backend,
) -> None:
    """``flush_due`` inserts for ``flush_due_seconds`` (a worker's event loop waits meanwhile):
    the batches it left are recorded and stored first thing at its next call — or, after a
    crash, rebuilt from the replay into the same batches."""
    clock = Clock()

    def cut_short(partitions: range) -> Writer:
        w = writer(Slow(backend, clock, 0.03), batch_seconds=1.0, flush_due_seconds=0.05,
                   clock=clock)  # fmt: skip
        for p in partitions:
            w.add(INTERACTIONS, [interaction(o, p) for o in range(4)], {(TOPIC, p): 0})
        clock.now += 1.0
        assert w.flush_due() == {(TOPIC, partitions[0]): 0}  # the journal, one batch: spent
        return w

    w = cut_short(range(3))
    assert count(backend, "interactions") == 4
    assert w.flush_due() == {(TOPIC, p): 0 for p in range(3)}  # the two left, first thing
    assert count(backend, "interactions") == 12
    cut_short(range(3, 6))  # ... and a crash before the next call: two left unstored
    assert count(backend, "interactions") == 16
    replay = writer(backend)
    for p in range(3, 6):
        replay.add(INTERACTIONS, [interaction(o, p) for o in range(4)], {(TOPIC, p): 0})
    assert replay.flush() == {(TOPIC, p): 0 for p in range(3, 6)}
    assert count(backend, "interactions", final=True) == 24


def aggregate_row(account: str) -> tuple[Any, ...]:
    return (account, 3_600_000, 0, 0, "all", 1, 0, 1, 0, 0, 0, 0, None, None, None, 0, 0, 0, 0, 1)


def test_sealed_derived_rows_are_stored_in_pieces_within_the_budget(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint seals the derived rows (no offsets) its engines emitted and waits until
    ``unsourced_sealed`` is false: ``flush_due`` stores them a piece at a time within its
    budget (300k rows in one insert held the loop 1.3 s), rows added after the seal are not
    waited for, and a second seal before the first is stored joins it."""
    monkeypatch.setattr(writer_module, "PIECE_ROWS", 10)
    clock = Clock()
    w = writer(Slow(backend, clock, 0.03), batch_seconds=3600, flush_due_seconds=0.05,
               clock=clock)  # fmt: skip
    w.add(WINDOW_AGGREGATES, [aggregate_row(f"a{i}") for i in range(25)], {})
    add_messages(w, range(3))
    assert not w.unsourced_sealed()
    w.seal_unsourced()
    w.add(WINDOW_AGGREGATES, [aggregate_row(f"b{i}") for i in range(5)], {})
    assert w.unsourced_sealed()
    assert w.flush_due() == {}  # two pieces of 10 (0.06 s): spent; the raw rows are not due
    assert count(backend, "window_aggregates") == 20
    assert w.unsourced_sealed()
    assert w.buffered_rows == 5 + 5 + 3
    w.add(WINDOW_AGGREGATES, [aggregate_row(f"c{i}") for i in range(12)], {})
    w.seal_unsourced()  # b and c join what is left of the first seal
    assert w.flush_due() == {}
    assert count(backend, "window_aggregates") == 40
    assert w.unsourced_sealed()
    w.add(WINDOW_AGGREGATES, [aggregate_row("d0")], {})
    assert w.flush_due() == {}
    assert count(backend, "window_aggregates") == 42
    assert not w.unsourced_sealed()  # d0 came after both seals: not waited for
    assert w.buffered_rows == 1 + 3
    assert w.flush() == {TP: 2}
    assert count(backend, "window_aggregates") == 43
    assert count(backend, "interactions") == 3


def test_replay_of_an_unacknowledged_batch_does_not_duplicate(backend: Backend) -> None:
    caps = probe(backend)
    lost_ack = Flaky(backend, "interactions", failures=1, after_insert=True)
    first = writer(lost_ack, retry=RetryPolicy(attempts=1))
    add_messages(first, range(30), rows_per_message=2)
    with pytest.raises(SinkDown):
        first.flush()  # the rows landed, but the writer could not know
    assert count(backend, "interactions") == 60
    second = writer(backend, batch_rows=1000)
    add_messages(second, range(30), rows_per_message=2)  # the rebuilt batch seals itself
    add_messages(second, range(30, 40))
    assert second.flush() == {TP: 39}
    assert count(backend, "interactions", final=True) == 70
    if caps.deduplicates_inserts:
        # Same offsets, same token: the server dropped the replayed batch outright.
        assert count(backend, "interactions") == 60 + 10


def test_rejected_row_goes_to_dead_letters_and_the_rest_lands(backend: Backend) -> None:
    letters: list[DeadLetter] = []
    w = writer(backend, letters)
    add_messages(w, range(0, 6))
    bad = list(interaction(6))
    bad[4] = "not a number"  # ts is Int64
    w.add(INTERACTIONS, [tuple(bad)], {TP: 6})
    add_messages(w, range(7, 12))
    assert w.flush() == {TP: 11}
    assert count(backend, "interactions") == 11
    (letter,) = letters
    assert letter.table == "interactions"
    assert letter.row["event_id"] == "e0-6" and letter.offsets == {TP: 6}
    assert letter.reason


def test_reemitted_window_replaces_the_older_version(backend: Backend) -> None:
    w = writer(backend)
    row = ["a", 3_600_000, 0, 0, "all", 3, 1, 2, 0, 1, 1, 1, 5.0, 5.0, 5.0, 0, 0, 0, 0, 1]
    w.add(WINDOW_AGGREGATES, [tuple(row)], {TP: 10})
    w.flush()
    row[5:8], row[-1] = [3, 2, 1], 2
    w.add(WINDOW_AGGREGATES, [tuple(row)], {TP: 11})
    w.flush()
    final = backend.execute(
        f"SELECT answered, version FROM {backend.target.database}.window_aggregates FINAL"
    )
    assert [tuple(r) for r in final] == [(2, 2)]


# -- pure unit tests with a fake backend -------------------------------------------------------


class FakeBackend:
    """Stores inserts in memory; the first ``failures`` inserts raise SinkUnavailable."""

    def __init__(self, failures: int = 0) -> None:
        self.target = ClickHouseTarget(kind="chdb", path="/nowhere", database="fake")
        self.version = "26.9"
        self.failures = failures
        self.inserts: list[tuple[str, int, dict[str, Any] | None]] = []

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return []

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise SinkUnavailable("connection refused")
        if table == "interactions" and any(row[4] == "bad" for row in rows):
            raise InsertRejected("Code: 53. Type mismatch", 53)
        self.inserts.append((table, len(rows), dict(settings) if settings else None))

    def close(self) -> None:
        pass


MODERN = Capabilities((26, 9), True, True, True, True)


def fake_writer(fake: FakeBackend, delays: list[float], **options: Any) -> Writer:
    return Writer(fake, lambda _: None, capabilities=MODERN, sleep=delays.append, **options)


def test_retries_with_jittered_exponential_backoff() -> None:
    fake, delays = FakeBackend(failures=4), list[float]()
    policy = RetryPolicy(attempts=6, base_seconds=0.1, max_seconds=0.25)
    w = fake_writer(fake, delays, retry=policy)
    w.add(INTERACTIONS, [interaction(0)], {TP: 0})
    assert w.flush() == {TP: 0}
    assert len(delays) == 4
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= min(0.25, 0.1 * 2**attempt)
    journal, data = fake.inserts
    assert journal[0] == "sink_batches"
    token = "interactions|rapport.interactions:0:0-0"
    assert data == ("interactions", 1, {"insert_deduplication_token": token})


def test_gives_up_then_keeps_the_batch_for_the_next_flush() -> None:
    fake, delays = FakeBackend(failures=10), list[float]()
    w = fake_writer(fake, delays, retry=RetryPolicy(attempts=3, base_seconds=0.0))
    w.add(INTERACTIONS, [interaction(0), interaction(0)], {TP: 0})
    with pytest.raises(SinkDown, match="gave up after 3 attempts"):
        w.flush()
    assert w.buffered_rows == 2 and w.stored_offsets() == {}
    fake.failures = 0
    assert w.flush() == {TP: 0}
    assert w.buffered_rows == 0


def test_backpressure_when_the_buffer_is_full() -> None:
    w = fake_writer(FakeBackend(), [], max_buffered_rows=50)
    w.add(INTERACTIONS, [interaction(0)] * 40, {TP: 0})
    with pytest.raises(BackpressureError):
        w.add(INTERACTIONS, [interaction(1)] * 20, {TP: 1})
    w.flush()
    w.add(INTERACTIONS, [interaction(1)] * 20, {TP: 1})  # nothing was taken the first time
    assert w.flush() == {TP: 1}


def test_offsets_must_advance_per_table_and_source() -> None:
    w = fake_writer(FakeBackend(), [])
    w.add(INTERACTIONS, [interaction(5)], {TP: 5})
    with pytest.raises(ValueError, match="do not advance"):
        w.add(INTERACTIONS, [interaction(5)], {TP: 5})
    w.add(WINDOW_AGGREGATES, [], {TP: 5})  # another table may share the offset


def test_discard_forgets_lost_partitions() -> None:
    w = fake_writer(FakeBackend(), [])
    other = (TOPIC, 1)
    w.add(INTERACTIONS, [interaction(0)], {TP: 0})
    w.add(INTERACTIONS, [interaction(0, partition=1)], {other: 0})
    w.discard([other])
    assert w.buffered_rows == 1
    assert w.flush() == {TP: 0}


def test_rows_without_offsets_carry_no_token() -> None:
    fake = FakeBackend()
    w = fake_writer(fake, [])
    w.add(INTERACTIONS, [interaction(0)], {})
    assert w.flush() == {}
    assert fake.inserts == [("interactions", 1, None)]


def test_a_batch_of_mostly_refused_rows_stops_the_writer() -> None:
    letters: list[DeadLetter] = []
    w = Writer(FakeBackend(), letters.append, capabilities=MODERN, max_dead_letters=3)
    bad = tuple(v if i != 4 else "bad" for i, v in enumerate(interaction(0)))
    w.add(INTERACTIONS, [bad] * 4 + [interaction(1)], {TP: 0})
    with pytest.raises(TooManyRejected, match="more than 3 rows"):
        w.flush()
    assert letters == [] and w.buffered_rows == 5  # nothing half-reported; the batch is kept
