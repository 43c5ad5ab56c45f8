"""Time from the event that completes a spam burst to its alert on the alerts topic.

A live stream on the local Kafka: a fresh run (own topics, embedded chDB in a temporary
directory, its own worker process), background traffic of ``--rate`` events per second — the
simulator's mix, as in ``pipeline_throughput.py`` (``--accounts`` accounts over two days,
replayed in order, its own spammers included; again and again, each round with accounts of
its own) — and every ``--every`` seconds a new spammer
replying with one link to 12 strangers (rule R1 fires at the 10th distinct target).

Event time: by default the wall clock, as in a live stream (windows close at the pace they
would live; but two days of each account's events fall within three minutes, so the rules'
hour-long windows hold an account's whole run). ``--event-time simulated`` keeps the simulated
times instead (the traffic of ``pipeline_throughput.py`` as it is), replayed ~1,000× faster
than they happened, so windows close and are written ~1,000× as often as live; a burst's
replies are then stamped 0.1 s apart at the stream's current time.

The first burst comes ``--warmup`` seconds in (default: the engines' reorder allowance, 120 s,
+ 30 s): the engines hold events that long before matching and counting them, so earlier
bursts meet a worker doing a fraction of its steady work (session 9's bench started them after
20 s, and its slow bursts were the ones after the engines started).

To measure at half of the maximum load, take half the events/s that ``pipeline_throughput.py``
drains. The latency of a burst is the wall time from sending its 10th reply to the alert for
that spammer being written to the alerts topic (the alert message's Kafka timestamp, set by the
worker's producer: same clock, and independent of when this process gets round to reading it);
printed as p50/p90/p99/max over ``--bursts`` bursts, with the background rate achieved, the
worker's CPU and this process's own (publishing and watching: on two cores it competes with the
worker), and the CPU the virtual machine's hypervisor stole meanwhile (``steal``): the slowest
bursts are printed with the cores stolen while each waited, and the bursts are split into those
that waited with less than ``--calm`` of a core stolen and the others. What the worker did
while the bursts slower than 1 s waited, and while the others did (``worker_sampler``: its loop
thread's CPU, page faults and run-queue wait, its other threads, its checkpoint children, the
machine's busy cores), is printed too, and written per burst to ``--timeline``. ``--split``
also reads the by-actor topic to split each latency at the re-keyed message holding the
completing reply (its Kafka timestamp): the interactions agent's part (take, decode, partition
engines, re-key) and the actors agent's (take, spam rules, alert) — at the price of reading
every re-keyed event here.

    .venv/bin/rapport stack up   # Kafka on 127.0.0.1:9092
    .venv/bin/python ops/bench/alert_latency.py [--bursts 40] [--rate 2000] [--every 1.5]
        [--accounts 16667] [--seed 1] [--warmup 150] [--event-time wall|simulated] [--split]
        [--timeline FILE.csv] [--calm 0.25]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runs import bench_run  # noqa: E402
from naive_faust import proc_figures, stat_cpu_seconds  # noqa: E402
from steal import StealSampler  # noqa: E402
from worker_sampler import FIGURES, WorkerSampler  # noqa: E402

import schemas  # noqa: E402
from schemas import codec  # noqa: E402
from streams import kafka_clients  # noqa: E402
from streams.agents import by_actor  # noqa: E402
from streams.publish import partition_for  # noqa: E402
from streams.simulate import simulate  # noqa: E402
from streams.worker import WorkerProcess  # noqa: E402

COMPLETING = 10  # R1: the 10th distinct target completes the burst
SLOW = 1.0  # s: bursts slower than the goal (issue 9: p99 event → alert < 1 s at half load)
RENAMED = ("event_id", "actor", "target", "in_reply_to", "conversation_id")  # per round
Event = dict[str, Any]


def event(i: str, kind: str, actor: str, target: str, ts: int, urls: list[str]) -> Event:
    return {"event_id": i, "kind": kind, "actor": actor, "target": target, "ts": ts,
            "in_reply_to": None, "conversation_id": None, "text": "deal", "urls": urls,
            "platform": "bench", "followers": None, "following": None, "posts": None}  # fmt: skip


def background(events: list[dict[str, Any]], partitions: int) -> Iterator[tuple[int, Event]]:
    """(partition, event) of the simulated network's events in order, again and again, each
    round a copy of the network with accounts and event ids of its own (``~round``), times
    moved on by the simulated span. (Until session 14 the accounts were the same every round:
    each one sent its texts again every three minutes, so rule R3 met every text's copy from
    the round before and judged it — 22% of the worker's event loop.)"""
    span = events[-1]["ts"] - events[0]["ts"] + 1000
    for round_ in itertools.count():
        for e in events:
            if round_:
                e = {**e, "ts": e["ts"] + round_ * span, **{
                    k: f"{e[k]}~{round_}" for k in RENAMED if e[k] is not None}}
            yield partition_for(e["actor"], e["target"], partitions), e


# what holds the worker's event loop (and how long saves take to be durable), from its /metrics:
# (count, seconds) summed over labels
BLOCKING = {
    "ClickHouse inserts": "rapport_clickhouse_insert_seconds",
    "checkpoints, loop held": 'rapport_checkpoint_seconds{phase="held"}',
    "checkpoints, until durable": 'rapport_checkpoint_seconds{phase="saved"}',
    "checkpoint children, CPU": "rapport_checkpoint_child_cpu_seconds",
    "event loop held > 0.5 s": 'rapport_loop_lag_seconds_bucket{le="0.5"}',
    # a batch awaits between its partitions (the loop turns) yet keeps the pipeline's lock
    **{f"lock held > 0.5 s by {h}": f'rapport_lock_held_seconds_bucket{{holder="{h}",le="0.5"}}'
       for h in ("interactions", "actors", "checkpoint", "checkpoint emit", "checkpoint flush")},
    "actors waited > 0.25 s for the lock":
        'rapport_lock_wait_seconds_bucket{holder="actors",le="0.25"}',
}


# bytes of engine state written, by kind of save
SAVED = {kind: f'rapport_state_saved_bytes_total{{kind="{kind}"}}' for kind in ("whole", "changes")}


def scrape_sums(settings: Any, names: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Per name: (count, sum) of a histogram, (count above the bucket, sum) of a bucket, or
    (value, 0) of a counter (``_total``), summed over the labels not given."""
    url = f"http://{settings.worker.web_host}:{settings.worker.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        lines = response.read().decode().splitlines()
    out = {}
    for label, metric in names.items():
        name, _, want = metric.partition("{")
        if name.endswith("_total"):
            counted = [float(line.rpartition(" ")[2]) for line in lines
                       if line.startswith(name) and want.rstrip("}") in line]  # fmt: skip
            out[label] = (sum(counted), 0.0)
            continue
        if name.endswith("_bucket"):  # (count above the bucket, seconds of all)
            family = name.removesuffix("_bucket")
            values = {line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
                      for line in lines if line and not line.startswith("#")}  # fmt: skip
            labels = ",".join(x for x in want.rstrip("}").split(",") if not x.startswith("le="))
            of = f"{{{labels}}}" if labels else ""  # the family's count and sum, same labels
            count, total = (values.get(f"{family}_{x}{of}", 0.0) for x in ("count", "sum"))
            out[label] = (count - values.get(metric, 0.0), total)
            continue
        sums = [0.0, 0.0]
        for line in lines:
            for i, suffix in enumerate(("_count", "_sum")):
                head, _, value = line.rpartition(" ")
                if head.startswith(name + suffix) and want.rstrip("}") in head:
                    sums[i] += float(value)
        out[label] = (sums[0], sums[1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bursts", type=int, default=40)
    ap.add_argument("--rate", type=int, default=2000, help="background events per second")
    ap.add_argument("--accounts", type=int, default=16_667,
                    help="accounts of the simulated background network")  # fmt: skip
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--every", type=float, default=1.5, help="seconds between bursts")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of background before the first burst (default: the "
                         "engines' reorder allowance + 30 s, so that they run)")  # fmt: skip
    ap.add_argument("--event-time", choices=("wall", "simulated"), default="wall",
                    help="background event times: as simulated, or the wall clock")  # fmt: skip
    ap.add_argument("--timeline", type=Path, default=None,
                    help="write each burst's send time (Unix s) and latency (s) to this CSV, to "
                         "line slow bursts up with the worker's log")  # fmt: skip
    ap.add_argument("--calm", type=float, default=0.25,
                    help="cores stolen below which a burst counts as waiting on a calm machine")
    ap.add_argument("--split", action="store_true",
                    help="split the latency at the by-actor topic (reads all of it)")  # fmt: skip
    args = ap.parse_args()

    print(f"simulating {args.accounts:,} accounts for the background ...", file=sys.stderr)
    simulated = sorted(simulate(args.accounts, 2, args.seed).events, key=lambda e: e["ts"])
    wall = args.event_time == "wall"
    tmp, settings, env = bench_run("alert-latency")
    partitions = settings.kafka.partitions
    traffic = background(simulated, partitions)
    worker = WorkerProcess(settings, env, tmp / "worker.log").start()
    assert worker.proc is not None
    pid = worker.proc.pid
    event_loop = Path(f"/proc/{pid}/task/{pid}/stat")  # the worker's main thread
    steal = StealSampler().start()
    doing = WorkerSampler(pid).start()

    arrived: dict[str, float] = {}
    routed: dict[str, float] = {}  # spammer -> when its completing reply reached by-actor
    stop = threading.Event()

    def watch_alerts() -> None:
        consumer = kafka_clients.consumer(settings)
        alerts = settings.topic("alerts")
        consumer.subscribe([alerts, *([settings.topic("by-actor")] if args.split else [])])
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                for r in records:
                    if r.topic == alerts:
                        _, (alert,) = codec.decode_message(r.value, r.headers)
                        if alert["rule"] == "R1":
                            arrived.setdefault(alert["actor"], r.timestamp / 1000)
                    elif b"burst" in r.value:  # the stage between: events re-keyed by actor
                        for e in by_actor.decode(r.value, r.headers).events:
                            if e["actor"].startswith("spammer") and e["event_id"].endswith(
                                f"-{COMPLETING - 1}"
                            ):
                                routed.setdefault(e["actor"], r.timestamp / 1000)
        consumer.close()

    watcher = threading.Thread(target=watch_alerts, daemon=True)
    watcher.start()
    producer = kafka_clients.producer(settings, linger_ms=0)
    topic = settings.topic("interactions")
    headers = schemas.kafka_headers(schemas.INTERACTION_BATCH)

    def send(events: list[Event]) -> None:
        by_part: dict[int, list[Event]] = {}
        for e in events:
            by_part.setdefault(partition_for(e["actor"], e["target"], partitions), []).append(e)
        send_parts(by_part)

    def send_parts(by_part: dict[int, list[Event]]) -> None:
        for p, group in by_part.items():
            producer.send(topic, value=codec.encode_batch(group), headers=headers, partition=p)
        producer.flush()

    tick = 0.05
    completed: dict[str, float] = {}
    sent = 0
    stream_ms = simulated[0]["ts"]  # the newest event time sent
    started, wall_started = time.monotonic(), time.time()
    print(f"warming up: worker {settings.kafka.topic_prefix}, background {args.rate}/s ...",
          file=sys.stderr)  # fmt: skip
    # the engines hold events for their reorder allowance (event time) before they match and
    # count them: bursts before then meet a worker that does not run them yet
    warmup = settings.analytics.reorder_seconds + 30 if args.warmup is None else args.warmup
    next_burst = first_burst = started + warmup
    cpu_at_start = own_at_start = loop_at_start = 0.0
    try:
        while len(completed) < args.bursts or (
            len(arrived.keys() & completed.keys()) < len(completed)
            and time.time() - max(completed.values()) < 30
        ):
            now_ms = time.time_ns() // 1_000_000
            by_part: dict[int, list[Event]] = {}
            due = int(args.rate * (time.monotonic() - started)) - sent  # catch up if late
            for p, e in itertools.islice(traffic, due):
                if wall:
                    e["ts"] = now_ms
                stream_ms = max(stream_ms, e["ts"])
                by_part.setdefault(p, []).append(e)
            send_parts(by_part)
            sent += due
            if len(completed) < args.bursts and time.monotonic() >= next_burst:
                b = len(completed)
                if not b:
                    cpu_at_start = proc_figures(pid)[0]
                    loop_at_start = stat_cpu_seconds(event_loop)
                    own_at_start = time.process_time()
                spammer = f"spammer{b}"
                for i in range(12):
                    ts = time.time_ns() // 1_000_000 if wall else stream_ms + 100 * i
                    reply = event(f"burst{b}-{i}", "REPLY", spammer, f"stranger{b}-{i}", ts,
                                  ["https://shop.example/deal"])  # fmt: skip
                    if i == COMPLETING - 1:
                        completed[spammer] = time.time()
                    send([reply])
                next_burst = time.monotonic() + args.every
            if not worker.alive():
                raise SystemExit(f"the worker exited; see {worker.log}")
            time.sleep(max(0.0, tick - (time.monotonic() - started) % tick))
        cpu = proc_figures(pid)[0] - cpu_at_start
        own = time.process_time() - own_at_start
        loop = stat_cpu_seconds(event_loop) - loop_at_start
        busy = time.monotonic() - first_burst
        stolen_while_busy = steal.cores(time.time() - busy, time.time())
        elapsed = time.monotonic() - started  # sending (the worker's stop comes after)
        blocking = scrape_sums(settings, BLOCKING)
        saved = scrape_sums(settings, SAVED)
    finally:
        stop.set()
        watcher.join(5)
        producer.close()
        worker.stop()
        steal.stop()
        doing.stop()
    latencies = sorted(arrived[a] - t for a, t in completed.items() if a in arrived)
    # cores the hypervisor stole while each burst waited for its alert
    stolen = {a: steal.cores(t, arrived[a]) for a, t in completed.items() if a in arrived}
    # the two stages: interactions agent (take, decode, engines, re-key) and actors agent
    first = sorted(routed[a] - t for a, t in completed.items() if a in routed)
    second = sorted(arrived[a] - routed[a] for a in completed if a in arrived and a in routed)
    slowest = sorted(((arrived[a] - t, t - wall_started - warmup, stolen[a])
                      for a, t in completed.items() if a in arrived), reverse=True)[:5]  # fmt: skip
    missing = len(completed) - len(latencies)
    if args.timeline:
        args.timeline.write_text(f"sent,latency,steal,{','.join(FIGURES)}\n" + "".join(
            f"{t:.3f},{arrived[a] - t:.3f},{_cores(stolen[a])},{_figures(doing, t, arrived[a])}\n"
            if a in arrived else f"{t:.3f},,\n" for a, t in completed.items()))  # fmt: skip

    def pct(q: float, values: list[float] = latencies) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    print(f"background: {sent:,} events in {elapsed:.0f} s ({sent / elapsed:,.0f} events/s), "
          f"{partitions} partitions")  # fmt: skip
    print(f"bursts: {len(completed)}, alerted: {len(latencies)}, missing: {missing}")
    if latencies:
        print(f"event → alert latency ms: p50 {pct(0.5):.0f}  p90 {pct(0.9):.0f}  "
              f"p99 {pct(0.99):.0f}  max {latencies[-1] * 1000:.0f}")  # fmt: skip
        for name, values in (("event → by-actor topic", first), ("by-actor → alert", second)):
            if values:
                print(f"  {name} ms: p50 {pct(0.5, values):.0f}  p90 {pct(0.9, values):.0f}  "
                      f"p99 {pct(0.99, values):.0f}  max {values[-1] * 1000:.0f}")
        first_at = datetime.fromtimestamp(wall_started + warmup, UTC).strftime("%H:%M:%S")
        print(f"slowest (ms at s after the first burst, {first_at} UTC; cores stolen): "
              + ", ".join(f"{lat * 1000:.0f} at {at:.0f} ({_cores(st)})"
                          for lat, at, st in slowest))
        for name, calm in (("calm", True), ("stolen from", False)):
            values = sorted(arrived[a] - t for a, t in completed.items() if a in arrived
                            and stolen[a] is not None and (stolen[a] < args.calm) == calm)
            if values:
                print(f"  bursts on a {name} machine ({'<' if calm else '>='} {args.calm} "
                      f"of a core stolen while they waited): {len(values)}, ms p50 "
                      f"{pct(0.5, values):.0f}  p90 {pct(0.9, values):.0f}  "
                      f"p99 {pct(0.99, values):.0f}  max {values[-1] * 1000:.0f}")
        for name, slow in ((f"slower than {SLOW:g} s", True), ("the others", False)):
            group = [r for a, t in completed.items() if a in arrived
                     and (arrived[a] - t > SLOW) == slow and (r := doing.rates(t, arrived[a]))]
            if group:
                m = {k: sum(r[k] for r in group) / len(group) for k in FIGURES}
                alive = sum(1 for r in group if r["child"] > 0)
                print(f"  while bursts {name} waited ({len(group)}, {alive} of them with a "
                      f"checkpoint child alive): the loop thread {m['loop_user']:.2f} user + "
                      f"{m['loop_system']:.2f} system of a core, {m['loop_faults']:,.0f} page "
                      f"faults/s, {m['loop_waiting']:.2f} s/s runnable not running; other threads "
                      f"{m['threads']:.2f}, checkpoint children {m['children']:.2f} of a core, "
                      f"one alive {m['child']:.0%} of the time; machine {m['busy']:.2f} cores "
                      "busy")  # fmt: skip
    print(f"worker CPU while bursts ran (its checkpoint children included): "
          f"{cpu / busy:.0%} of a core, its event loop {loop / busy:.0%}; this process "
          f"(publishing, watching): {own / busy:.0%}; stolen by the hypervisor: "
          f"{_cores(stolen_while_busy)} of {os.cpu_count()} cores")  # fmt: skip
    for name, (count, total) in blocking.items():
        print(f"{name} (whole run): {count:,.0f}, {total:.1f} s"
              + ("" if "_bucket" in BLOCKING[name] else
                 f", mean {1000 * total / max(count, 1):.0f} ms"))
    print("engine state written (whole run): "
          + ", ".join(f"{k} {v / 2**20:,.1f} MiB" for k, (v, _) in saved.items()))


def _figures(doing: WorkerSampler, t0: float, t1: float) -> str:
    rates = doing.rates(t0, t1)
    return ",".join(f"{rates[k]:.3f}" if rates else "" for k in FIGURES)


def _cores(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
