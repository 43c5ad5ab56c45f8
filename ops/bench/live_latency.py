"""Time from an event (event time = wall clock) to its row being queryable in ClickHouse.

A live stream on the local Kafka: a fresh run (own topics, its own database on the ClickHouse
server — ``RAPPORT_CLICKHOUSE`` or the local stack's — unless ``--sink chdb``), its own worker
process with every analytic and rule on, and the simulator's realistic mix of events
(``streams.chaos.workload``: kinds, accounts, spammers) replayed in order at ``--rate`` events/s,
each stamped with the wall clock as it is sent (``ts``), in envelopes of what is due every 50 ms
per partition, the snapshots first. After ``--warmup`` seconds (the worker joins its group, catches
up, and its engines are past their reorder allowance), every ``--sample-every``-th event of the
next ``--seconds`` seconds is watched: a poller queries ``interactions`` for the watched event ids
every ``--poll`` seconds, and an event's latency is the start of the first query that returns its
row minus its ``ts`` (resolution: the poll interval plus a query). Prints p50/p90/p99/max, the rate
achieved and the worker's CPU use over the measured period, and for comparison the worker's own
``rapport_ingest_to_stored_seconds`` histogram (Kafka timestamp of a message → acknowledged, rows
and state stored; scraped from its ``/metrics`` at the start and end of the measured period,
quantiles as the upper bound of their bucket).

Run it at about half the throughput ``pipeline_throughput.py`` measures (its events/s)::

    .venv/bin/rapport stack up    # Kafka on 127.0.0.1:9092, ClickHouse server on :9000
    nice -n 5 .venv/bin/python ops/bench/live_latency.py --rate 1250 [--seconds 60]
        [--warmup 150] [--sample-every 50] [--poll 0.1] [--sink server|chdb] [--keep]

With ``--sink chdb`` the sink is embedded in the worker and the poller asks the worker's
``/api/sql`` (which runs on the worker's event loop, so it adds load). The server run's
database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runs import bench_run  # noqa: E402
from naive_faust import stat_cpu_seconds  # noqa: E402
from steal import steal_seconds  # noqa: E402

import schemas  # noqa: E402
from schemas import codec  # noqa: E402
from streams import kafka_clients  # noqa: E402
from streams.chaos import workload  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.publish import partition_for  # noqa: E402
from streams.query import LocalQuerier, Querier, WorkerQuerier  # noqa: E402
from streams.worker import WorkerProcess  # noqa: E402

TICK = 0.05
HISTOGRAM = "rapport_ingest_to_stored_seconds"


def scrape_histogram(settings: Settings) -> dict[float, float]:
    """Cumulative bucket counts (upper bound → count) of the worker's ingest→stored histogram."""
    url = f"http://{settings.worker.web_host}:{settings.worker.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{HISTOGRAM}_bucket{{"):
            labels, _, value = line.rpartition(" ")
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(value)
    return buckets


def histogram_quantiles(
    before: dict[float, float], after: dict[float, float], qs: tuple[float, ...]
) -> tuple[int, list[float]]:
    """(observations, the upper bound of the bucket holding each quantile) between scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    out = []
    for q in qs:
        out.append(next((b for b, c in zip(bounds, counts, strict=True) if c >= q * total),
                        float("inf")))  # fmt: skip
    return int(total), out


class Poller(threading.Thread):
    """Polls ``interactions`` for the watched event ids; records when each first shows."""

    def __init__(self, querier: Querier, interval: float) -> None:
        super().__init__(daemon=True)
        self.querier = querier
        self.interval = interval
        self.watched: dict[str, float] = {}  # event id -> ts (s)
        self.seen: dict[str, float] = {}  # event id -> latency (s)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.queries = 0
        self.query_seconds = 0.0
        self.errors = 0

    def watch(self, event_id: str, ts: float) -> None:
        with self.lock:
            self.watched[event_id] = ts

    def outstanding(self) -> int:
        with self.lock:
            return len(self.watched)

    def run(self) -> None:
        db = self.querier.database
        while not self.stop.wait(self.interval):
            with self.lock:
                ids = list(self.watched)[:1000]
            if not ids:
                continue
            quoted = ",".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in ids)
            started = time.time()
            try:
                rows = self.querier.query(
                    f"SELECT event_id FROM {db}.interactions WHERE event_id IN ({quoted})"
                )
            except Exception as exc:  # the sink busy or restarting: count it, try again
                self.errors += 1
                print(f"poll failed: {exc}", file=sys.stderr)
                continue
            self.queries += 1
            self.query_seconds += time.time() - started
            with self.lock:
                for (event_id,) in rows:
                    ts = self.watched.pop(event_id, None)
                    if ts is not None:
                        self.seen[event_id] = started - ts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=1250, help="events per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured period")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before measuring (default: the engines' reorder allowance + "
                         "30 s, so that every analytic runs while measured)")  # fmt: skip
    ap.add_argument("--sample-every", type=int, default=0,
                    help="watch every N-th event (default: about 20 a second)")  # fmt: skip
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between queries")
    ap.add_argument("--sink", choices=("server", "chdb"), default="server")
    ap.add_argument("--keep", action="store_true", help="keep the run's database")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    every = args.sample_every or max(1, args.rate // 20)

    tmp, settings, env = bench_run("live-latency", args.sink)
    partitions = settings.kafka.partitions
    if args.warmup is None:  # the engines hold events this long before they run them
        args.warmup = settings.analytics.reorder_seconds + 30

    total = int(args.rate * (args.warmup + args.seconds) * 1.15) + 1000
    sim = workload(total, args.seed)
    events = sim.events
    print(f"run {settings.kafka.topic_prefix}: sink {settings.clickhouse_target.display()}; "
          f"{len(events):,} simulated "
          f"events ({sim.accounts:,} accounts) to replay at {args.rate:,}/s",
          file=sys.stderr)  # fmt: skip

    producer = kafka_clients.producer(settings, linger_ms=0, max_request_size=8 * 2**20)
    now_ms = time.time_ns() // 1_000_000
    for snap in sim.snapshots:
        producer.send(settings.topic("snapshots"), key=snap["account"].encode(),
                      value=codec.encode({**snap, "ts": now_ms}, schemas.SNAPSHOT),
                      headers=schemas.kafka_headers(schemas.SNAPSHOT))  # fmt: skip
    producer.flush()
    worker = WorkerProcess(settings, env, tmp / "worker.log").start()
    assert worker.proc is not None
    topic = settings.topic("interactions")
    headers = schemas.kafka_headers(schemas.INTERACTION_BATCH)

    querier: Querier | None = None
    poller: Poller | None = None
    before: dict[float, float] = {}
    after: dict[float, float] = {}
    sent = measured_sent = 0
    cpu0 = cpu1 = 0.0
    stolen0: float | None = None
    stolen1: float | None = None
    started = time.monotonic()
    measure_from = started + args.warmup
    measure_to = measure_from + args.seconds
    print(f"warming up {args.warmup:g} s, then measuring {args.seconds:g} s, watching 1 event "
          f"in {every} ...", file=sys.stderr)  # fmt: skip
    try:
        while time.monotonic() < measure_to:
            due = min(len(events), int((time.monotonic() - started) * args.rate) + 1)
            if sent >= len(events):
                raise SystemExit("ran out of simulated events; lower --rate or --seconds")
            now = time.time()
            ts = int(now * 1000)
            measuring = time.monotonic() >= measure_from
            if measuring and poller is None:
                querier = (WorkerQuerier(settings) if args.sink == "chdb"
                           else LocalQuerier(settings))  # fmt: skip
                poller = Poller(querier, args.poll)
                poller.start()
                before = scrape_histogram(settings)
                cpu0 = stat_cpu_seconds(Path(f"/proc/{worker.proc.pid}/stat"))
                stolen0 = steal_seconds()
            by_part: dict[int, list[dict[str, Any]]] = {}
            for i in range(sent, due):
                e = {**events[i], "ts": ts}
                by_part.setdefault(partition_for(e["actor"], e["target"], partitions), []).append(e)
                if poller is not None and i % every == 0:
                    poller.watch(e["event_id"], now)
            for p, group in by_part.items():
                producer.send(topic, value=codec.encode_batch(group), headers=headers, partition=p)
            producer.flush()
            if measuring:
                measured_sent += due - sent
            sent = due
            if not worker.alive():
                raise SystemExit(f"the worker exited; see {worker.log}")
            time.sleep(max(0.0, TICK - (time.monotonic() - started) % TICK))
        assert poller is not None
        cpu1 = stat_cpu_seconds(Path(f"/proc/{worker.proc.pid}/stat"))
        stolen1 = steal_seconds()
        after = scrape_histogram(settings)
        wait_until = time.monotonic() + 30
        while poller.outstanding() and time.monotonic() < wait_until:
            time.sleep(0.2)
    finally:
        if poller is not None:
            poller.stop.set()
            poller.join(5)
        producer.close()
        worker.stop()
        if querier is not None:
            querier.close()
        if args.sink == "server" and not args.keep:
            from sinks.backends import connect

            backend = connect(settings.clickhouse_target)
            try:
                backend.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_target.database}")
            finally:
                backend.close()

    latencies = sorted(poller.seen.values())
    missing = poller.outstanding()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    print(f"sink {args.sink} ({settings.clickhouse_target.display()}), {partitions} partitions, "
          f"all analytics and rules on")  # fmt: skip
    print(f"live stream: {measured_sent:,} events in the measured {args.seconds:g} s "
          f"({measured_sent / args.seconds:,.0f} events/s; target {args.rate:,}/s); worker CPU "
          f"{cpu1 - cpu0:.1f} s = {(cpu1 - cpu0) / args.seconds:.0%} of a core")  # fmt: skip
    if stolen0 is not None and stolen1 is not None:
        print(f"CPU stolen by the hypervisor meanwhile: {(stolen1 - stolen0) / args.seconds:.2f} "
              f"of {os.cpu_count()} cores")
    mean_query = poller.query_seconds / max(1, poller.queries) * 1000
    print(f"watched {len(latencies) + missing:,} events (1 in {every}): stored "
          f"{len(latencies):,}, missing {missing:,}; {poller.queries:,} polls every "
          f"{args.poll:g} s, {mean_query:.0f} ms a query, {poller.errors} failed")  # fmt: skip
    if latencies:
        print(f"event → ClickHouse (queryable) latency ms: p50 {pct(0.5):.0f}  p90 {pct(0.9):.0f}"
              f"  p99 {pct(0.99):.0f}  max {latencies[-1] * 1000:.0f}")  # fmt: skip
    n, (p50, p90, p99) = histogram_quantiles(before, after, (0.5, 0.9, 0.99))
    if n:
        print(f"worker's {HISTOGRAM} over the same period ({n:,} messages; bucket upper "
              f"bounds, s): p50 ≤ {p50:g}  p90 ≤ {p90:g}  p99 ≤ {p99:g}")  # fmt: skip
    print(f"worker log {worker.log}")


if __name__ == "__main__":
    main()
