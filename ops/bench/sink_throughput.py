"""Sink throughput: rows/s through the Writer into ``interactions``, on chDB and on a server.

Usage: .venv/bin/python ops/bench/sink_throughput.py [--rows 1000000] [--batch 50000]
       [--server clickhouse://default@127.0.0.1:9000/rapport_bench] [--skip-server]

Measures the whole sink path (journal entry, dedup token, insert) with rows built beforehand,
on a fresh temporary database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
import uuid
from typing import Any

from sinks.backends import Backend, ChdbBackend, NativeBackend
from sinks.capabilities import probe
from sinks.migrations import migrate
from sinks.tables import INTERACTIONS
from sinks.url import ClickHouseTarget, parse_clickhouse_url
from sinks.writer import DeadLetter, Writer

TOPIC = "bench.interactions"
KINDS = ("REPLY", "COMMENT", "MENTION", "MESSAGE", "SHARE", "LIKE")


def rows(n: int) -> list[tuple[Any, ...]]:
    """Realistic raw interactions: short texts, some URLs, nullable targets and counts."""
    return [
        (
            f"ev-{i:012d}", KINDS[i % len(KINDS)], f"acct{i % 50_000}",
            None if i % 11 == 0 else f"acct{(i * 7) % 50_000}", 1_700_000_000_000 + i * 37,
            f"ev-{i - 1:012d}" if i % 3 == 0 else None, f"conv{i // 20}",
            f"message number {i} about things",
            [f"https://example.test/p/{i % 997}"] if i % 4 == 0 else [],
            "bench", i % 5000 if i % 2 else None, None, None, TOPIC, 0, i,
        )
        for i in range(n)
    ]


def run(backend: Backend, data: list[tuple[Any, ...]], batch: int) -> float:
    migrate(backend)
    letters: list[DeadLetter] = []
    writer = Writer(backend, letters.append, batch_rows=batch, max_buffered_rows=2 * batch)
    start = time.perf_counter()
    for lo in range(0, len(data), batch):
        chunk = data[lo:lo + batch]
        writer.add(INTERACTIONS, chunk, {(TOPIC, 0): lo + len(chunk) - 1})
        writer.flush_due()
    stored = writer.flush()
    elapsed = time.perf_counter() - start
    assert not letters and stored == {(TOPIC, 0): len(data) - 1}, (letters[:1], stored)
    db = backend.target.database
    assert backend.execute(f"SELECT count() FROM {db}.interactions")[0][0] == len(data)
    return len(data) / elapsed


def report(name: str, backend: Backend, data: list[tuple[Any, ...]], batch: int) -> None:
    caps = probe(backend)
    try:
        rate = run(backend, data, batch)
    finally:
        backend.execute(f"DROP DATABASE IF EXISTS {backend.target.database}")
        backend.close()
    dedup = "token dedup" if caps.deduplicates_inserts else "no token dedup"
    print(f"{name:<34} ClickHouse {backend.version:<12} {dedup:<15} {rate:>12,.0f} rows/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument(
        "--server",
        default=os.environ.get(
            "RAPPORT_TEST_CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/rapport_bench"
        ),
    )
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    data = rows(args.rows)
    database = f"bench_{uuid.uuid4().hex[:10]}"
    print(f"{args.rows:,} raw-interaction rows, batches of {args.batch:,}")
    directory = tempfile.mkdtemp(prefix="rapport-bench-chdb-")
    try:
        chdb = ChdbBackend(ClickHouseTarget(kind="chdb", path=directory, database=database))
        report("chDB (in-process, Arrow inserts)", chdb, data, args.batch)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if not args.skip_server:
        target = dataclasses.replace(parse_clickhouse_url(args.server), database=database)
        name = f"server {target.host}:{target.port} (native)"
        report(name, NativeBackend(target), data, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
