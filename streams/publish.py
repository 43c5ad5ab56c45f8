"""Publish events and snapshots to Kafka: batch envelopes for throughput, a dead letter for
everything refused, pacing in event time, and a summary that accounts for every row.

Interaction events travel in envelopes (``interaction-batch``, many events per message); one
envelope holds events of one partition, chosen by the unordered account pair, so a
conversation between two accounts stays in one partition and in order. ``envelope_size=1``
sends single-event messages (``interaction``), as other producers do.
"""

from __future__ import annotations

import inspect
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemas
from schemas import codec
from streams import kafka_clients
from streams.config import Settings
from streams.errors import RapportError
from streams.importers import ImportRun, Rejected

Record = dict[str, Any]
PROGRESS_EVERY = 1000
PACE_SLICE_S = 0.05  # paced publishing sends what is due at most this often


def partition_for(actor: str, target: str | None, partitions: int) -> int:
    """The partition of an event: by the unordered pair {actor, target} (actor alone if none)."""
    if target is None or target == actor:
        key = actor
    else:
        key = f"{actor}\0{target}" if actor < target else f"{target}\0{actor}"
    return zlib.crc32(key.encode()) % partitions


@dataclass
class PublishSummary:
    """What one publish did with every row it read."""

    published: int = 0
    messages: int = 0
    duplicates: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    seconds: float = 0.0

    def add_run(self, run: ImportRun) -> None:
        self.rows += run.stats.rows
        self.skipped.update(run.stats.skipped)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "published": self.published,
            "messages": self.messages,
            "duplicates": self.duplicates,
            "kinds": dict(self.kinds),
            "rejected": dict(self.rejected),
            "skipped": dict(self.skipped),
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.published / self.seconds) if self.seconds else None,
        }


class Pacer:
    """Holds publishing back to ``rate`` events/s or to event time sped up ``speedup`` times."""

    def __init__(self, rate: float | None = None, speedup: float | None = None) -> None:
        self.rate = rate
        self.speedup = speedup
        self._start = time.monotonic()
        self._first_ts: int | None = None
        self._sent = 0

    @property
    def active(self) -> bool:
        return bool(self.rate or self.speedup)

    def delay(self, ts: int | None) -> float:
        """Seconds to wait before sending the next event (event time ``ts``)."""
        self._sent += 1
        due = 0.0
        if self.rate:
            due = self._sent / self.rate
        if self.speedup and ts is not None:
            if self._first_ts is None:
                self._first_ts = ts
            due = max(due, (ts - self._first_ts) / 1000.0 / self.speedup)
        return self._start + due - time.monotonic()


END_OF_INPUT = ("rapport-control", b"end-of-input")


class Publisher:
    """Send records to Rapport's topics; call ``close()`` (or use ``with``) to flush."""

    def __init__(
        self,
        settings: Settings,
        envelope_size: int = 500,
        pacer: Pacer | None = None,
        producer: Any = None,
    ) -> None:
        self.settings = settings
        self.envelope_size = envelope_size
        self.pacer = pacer or Pacer()
        self.summary = PublishSummary()
        self._partitions = self._partition_count(settings)
        self._producer = producer or kafka_clients.producer(
            settings,
            acks="all",
            linger_ms=20,
            enable_idempotence=True,
            max_request_size=8 * 1024 * 1024,
        )
        self._buffers: dict[int, list[Record]] = {}
        self._sent_events = False  # since the last end-of-input marker
        self._seen: set[int] = set()
        self._started = time.monotonic()

    @staticmethod
    def _partition_count(settings: Settings) -> int:
        consumer = kafka_clients.consumer(settings)
        try:
            found = consumer.partitions_for_topic(settings.topic("interactions"))
        finally:
            consumer.close()
        return len(found) if found else settings.kafka.partitions

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _first_time(self, key: str) -> bool:
        digest = hash(key)
        if digest in self._seen:
            self.summary.duplicates += 1
            return False
        self._seen.add(digest)
        return True

    def event(self, event: Mapping[str, Any]) -> None:
        """Queue one validated interaction event (duplicates of this run are dropped)."""
        if not self._first_time(event["event_id"]):
            return
        if self.pacer.active:
            wait = self.pacer.delay(event["ts"])
            if wait > PACE_SLICE_S:  # shorter waits: the event joins the envelope being filled
                self._flush_envelopes()  # what is due goes out now, not after the sleep
                time.sleep(wait)
        part = partition_for(event["actor"], event["target"], self._partitions)
        buffer = self._buffers.setdefault(part, [])
        buffer.append(dict(event))
        self.summary.kinds[event["kind"]] += 1
        if len(buffer) >= self.envelope_size:
            self._send_envelope(part)

    def snapshot(self, snapshot: Mapping[str, Any]) -> None:
        """Send one validated account snapshot, keyed by account."""
        if not self._first_time(snapshot["snapshot_id"]):
            return
        self._producer.send(
            self.settings.topic("snapshots"),
            key=snapshot["account"].encode(),
            value=codec.encode(snapshot, schemas.SNAPSHOT),
            headers=schemas.kafka_headers(schemas.SNAPSHOT),
        )
        self.summary.messages += 1
        self.summary.published += 1
        self.summary.kinds["SNAPSHOT"] += 1

    def dead_letter(self, rejected: Rejected, schema: str) -> None:
        """Send a refused row to the dead-letter topic with its source, line and reason."""
        record = rejected.dead_letter(schema, time.time_ns() // 1_000_000)
        self._producer.send(
            self.settings.topic("dead-letters"),
            key=rejected.source.encode(),
            value=codec.encode(record, schemas.DEAD_LETTER),
            headers=schemas.kafka_headers(schemas.DEAD_LETTER),
        )
        self.summary.rejected[rejected.reason_code] += 1

    def run(self, run: ImportRun, progress: Callable[[int], None] | None = None) -> None:
        """Publish everything one import yields: records to their topic, rejections to DLQ.

        ``progress(n)`` is called every ``PROGRESS_EVERY`` items with the items since the last.
        """
        send = self.snapshot if run.schema == schemas.SNAPSHOT else self.event
        n = 0
        for item in run:
            if isinstance(item, Rejected):
                self.dead_letter(item, run.schema)
            else:
                send(item)
            n += 1
            if progress is not None and n == PROGRESS_EVERY:
                progress(n)
                n = 0
        if progress is not None and n:
            progress(n)
        self.summary.add_run(run)

    def _send_envelope(self, part: int) -> None:
        events = self._buffers.pop(part, [])
        if not events:
            return
        if len(events) == 1 and self.envelope_size == 1:
            value = codec.encode(events[0])
            headers = schemas.kafka_headers(schemas.INTERACTION)
        else:
            value = codec.encode_batch(events)
            headers = schemas.kafka_headers(schemas.INTERACTION_BATCH)
        self._producer.send(
            self.settings.topic("interactions"), value=value, headers=headers, partition=part
        )
        self.summary.messages += 1
        self.summary.published += len(events)
        self._sent_events = True

    def end_of_input(self) -> None:
        """Tell the worker a finished input ends here (one marker per partition): events it
        holds back for reordering are released at this point of the stream, not left waiting
        for later events that a file will never bring."""
        self._flush_envelopes()
        if not self._sent_events:
            return  # snapshots only: the interaction stream did not end here
        self._sent_events = False
        for part in range(self._partitions):
            self._producer.send(
                self.settings.topic("interactions"), value=b"", headers=[END_OF_INPUT],
                partition=part,
            )  # fmt: skip

    def _flush_envelopes(self) -> None:
        for part in list(self._buffers):
            self._send_envelope(part)

    def flush(self) -> None:
        """Send partial envelopes and wait until the broker has acknowledged everything."""
        self._flush_envelopes()
        self._producer.flush()
        self.summary.seconds = time.monotonic() - self._started

    def close(self) -> None:
        self.flush()
        self._producer.close()


def estimate_items(path: str | Path) -> int | None:
    """About how many items a source holds (for progress and ETA); None when unknown."""
    p = Path(path)
    if p.is_dir():
        return sum(_count(p / name, b"<row ") for name in ("Posts.xml", "Comments.xml"))
    if p.suffix == ".avro":
        return None
    return _count(p, b"\n")


def _count(path: Path, needle: bytes) -> int:
    if not path.exists():
        return 0
    total = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            total += chunk.count(needle)
    return total


def format_options(fmt: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The importer options of ``fmt`` from CLI values; an option it does not take is an error."""
    from streams.importers import FORMATS
    from streams.importers.csvfile import parse_mapping

    if fmt not in FORMATS:
        raise RapportError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    accepted = inspect.signature(FORMATS[fmt].read).parameters
    options: dict[str, Any] = {}
    for name, value in given.items():
        if value in (None, (), []):
            continue
        if name not in accepted:
            flag = "--" + name.replace("_", "-").replace("mapping", "map")
            raise RapportError(f"{flag} does not apply to format {fmt}")
        options[name] = parse_mapping(list(value)) if name == "mapping" else value
    return options


def publish_files(
    settings: Settings,
    paths: Iterable[str],
    fmt: str,
    options: Mapping[str, Any],
    rate: float | None = None,
    speedup: float | None = None,
    envelope_size: int = 500,
    quiet: bool = False,
) -> PublishSummary:
    """`rapport publish`: import each path, publish it with a progress bar, print a summary."""

    from streams.importers import read
    from streams.topics import ensure_topics

    if envelope_size < 1:
        raise RapportError("--envelope-size must be at least 1")
    chosen = format_options(fmt, options)
    ensure_topics(settings)
    with Publisher(settings, envelope_size, Pacer(rate, speedup)) as publisher:
        for path in paths:
            run = read(fmt, path, **chosen)
            with ProgressBar(Path(path).name, estimate_items(path), hidden=quiet) as bar:
                publisher.run(run, bar.advance)
        publisher.end_of_input()
        publisher.flush()
        summary = publisher.summary
    if not quiet:
        print_summary(summary, settings)
    return summary


class ProgressBar:
    """A terminal progress bar with rows/s and, when the size is known, percent and ETA."""

    def __init__(self, label: str, total: int | None, hidden: bool = False) -> None:
        import click

        self.done = 0
        self.started = time.monotonic()
        self._bar = click.progressbar(
            length=total or 0,
            label=label,
            file=sys.stderr,
            show_eta=total is not None,
            show_percent=total is not None,
            item_show_func=self._rate,
            hidden=hidden,
        )

    def _rate(self, _: object) -> str:
        elapsed = time.monotonic() - self.started
        return f"{self.done / elapsed:,.0f} rows/s" if elapsed > 0 else ""

    def advance(self, n: int) -> None:
        self.done += n
        self._bar.update(n)

    def __enter__(self) -> ProgressBar:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)
        if not self._bar.hidden:
            sys.stderr.write("\n")


def print_summary(s: PublishSummary, settings: Settings) -> None:
    import click

    rate = f" ({s.published / s.seconds:,.0f} events/s)" if s.seconds else ""
    topics = f"{settings.topic('interactions')} / {settings.topic('snapshots')}"
    click.echo(
        f"published {s.published:,} records in {s.messages:,} messages to {topics} "
        f"in {s.seconds:.1f} s{rate}"
    )
    click.echo(f"  rows read {s.rows:,}; duplicates dropped {s.duplicates:,}")
    for title, counts in (("by kind", s.kinds), ("skipped", s.skipped), ("rejected", s.rejected)):
        if counts:
            parts = ", ".join(f"{k} {v:,}" for k, v in counts.most_common())
            click.echo(f"  {title}: {parts}")
    if s.rejected:
        click.echo(f"  rejected rows are in {settings.topic('dead-letters')} with their reasons")
