"""The naive baseline: responsiveness counts the textbook Faust way, one event at a time.

What it computes is Rapport's *responsiveness counts* per account (METRICS.md, "Reply
latency" / "Response rate"): inbound messages addressed to an account (REPLY, COMMENT, MENTION,
MESSAGE from B to A, B ≠ A) and how many of them got answered — by the first later addressing
event A→B within the horizon H (7 days). How: one Faust agent reads single-event Avro messages
(``interaction`` schema, decoded with fastavro schemaless through ``schemas.codec``), and keeps
its state in two changelog-backed Faust Tables (in-memory store, as the worker's): ``pending``
(directed pair → event times of the requester's messages still waiting for an answer) and
``counts`` (account → [inbound, answered]), each updated as every event goes by — a table
write (hence a changelog message) per touched key per event, no batching.

``run_naive(settings, events)`` is the benchmark, callable from other bench scripts: it
publishes ``events`` as single-event messages (``Publisher(envelope_size=1)``) to a fresh
topic, starts this file as a Faust worker in a subprocess (``python naive_faust.py worker``,
configured by ``NAIVE_*`` environment variables), waits until the worker has consumed all of
them (it counts them and, at the last one, flushes its changelog producer and writes a done
file with its counts), and returns events/s (wall time from worker start), the worker's CPU
seconds (``/proc/<pid>/stat``), events per CPU-second and its peak RSS. The counts are checked
per account against the exact figures (``streams.simulate.truth.answers``).

Standalone (the local stack running)::

    .venv/bin/python ops/bench/naive_faust.py [--events 200000] [--seed 1]

``ops/bench/pipeline_throughput.py`` runs it on the first ``--baseline-events`` events of its
own simulation, next to the real pipeline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from schemas import codec  # noqa: E402

ADDRESSING = frozenset({"REPLY", "COMMENT", "MENTION", "MESSAGE"})
HORIZON_MS = 7 * 24 * 3600 * 1000
SEP = "\t"  # between the two accounts of a pending key


# --- the naive app (runs in the worker subprocess) ---


def create_app() -> Any:
    """The Faust app from ``NAIVE_*`` environment variables (see ``worker_env``)."""
    import faust

    env = os.environ
    expect = int(env["NAIVE_EXPECT"])
    done_file = Path(env["NAIVE_DONE"])
    horizon = int(env.get("NAIVE_HORIZON_MS", HORIZON_MS))
    partitions = int(env["NAIVE_PARTITIONS"])
    app = faust.App(
        env["NAIVE_APP_ID"],
        broker=[f"kafka://{h}" for h in env["NAIVE_BROKER"].split(",")],
        store="memory://",
        topic_partitions=partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        web_enabled=False,
        datadir=env["NAIVE_DATADIR"],
    )
    topic = app.topic(env["NAIVE_TOPIC"], key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")  # fmt: skip
    # requester's messages waiting for the addressed account: "addressed\trequester" -> [ts]
    pending = app.Table("pending", key_type=str, partitions=partitions)
    # account -> [inbound, answered]
    counts = app.Table("counts", key_type=str, partitions=partitions)
    seen = [0]
    first = [0.0]

    def fold(e: dict[str, Any]) -> None:
        kind, actor, target, ts = e["kind"], e["actor"], e["target"], e["ts"]
        if kind not in ADDRESSING or target is None or target == actor:
            return
        # this event answers the target's messages to the actor that are still waiting
        key = actor + SEP + target
        waiting = pending.get(key)
        if waiting:
            answered = sum(1 for t in waiting if t < ts <= t + horizon)
            keep = [t for t in waiting if t >= ts]  # later (or same-ms) ones still wait
            if len(keep) != len(waiting):
                if keep:
                    pending[key] = keep
                else:
                    del pending[key]
            if answered:
                inbound, done = counts.get(actor) or (0, 0)
                counts[actor] = [inbound, done + answered]
        # and is itself an inbound message of the target, waiting for its answer
        back = target + SEP + actor
        pending[back] = [*(pending.get(back) or ()), ts]
        inbound, done = counts.get(target) or (0, 0)
        counts[target] = [inbound + 1, done]

    @app.agent(topic, name="responsiveness")
    async def responsiveness(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            if not seen[0]:
                first[0] = time.time()
            _, records = codec.decode_message(message.value, message.headers)
            for record in records:
                fold(record)
            seen[0] += 1
            if seen[0] == expect:
                await app.producer.flush()  # the changelog written so far is durable
                finished = time.time()
                per_account = {k: list(v) for k, v in counts.items()}
                tmp = done_file.with_suffix(".tmp")
                figures = {"first_at": first[0], "done_at": finished, "messages": seen[0],
                           "counts": per_account}  # fmt: skip
                tmp.write_text(json.dumps(figures))
                tmp.rename(done_file)

    return app


# --- the benchmark (runs in the caller) ---


@dataclasses.dataclass
class NaiveResult:
    events: int
    publish_seconds: float
    seconds: float  # from worker start to the last event folded (changelog flushed)
    steady_seconds: float  # from the first event consumed to the last folded
    cpu_seconds: float
    peak_rss: int  # bytes
    state_bytes: int  # the tables' latest keys + values on their changelogs
    active_accounts: int  # accounts with any event
    inbound: int
    answered: int
    accounts: int  # accounts with inbound messages
    checked: bool  # per-account counts equal the exact ones

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def events_per_cpu_second(self) -> float:
        return self.events / self.cpu_seconds


def stat_cpu_seconds(stat: Path, children: bool = False) -> float:
    """User + system CPU seconds from a ``/proc/.../stat`` file (a process's or a thread's),
    with ``children`` those of its children that ended too."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return sum(map(int, fields[11 : 15 if children else 13])) / os.sysconf("SC_CLK_TCK")


def proc_figures(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a live process, from /proc. The CPU includes its
    children that ended (the worker's checkpoint pickling children)."""
    cpu = stat_cpu_seconds(Path(f"/proc/{pid}/stat"), children=True)
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return cpu, int(hwm.split()[1]) * 1024


def latest_values(settings: Any, topic: str, tail: int | None = None) -> dict[bytes, bytes]:
    """The latest value of every key on a (changelog) topic, tombstones applied; with ``tail``,
    of its last ``tail`` messages per partition only."""
    from kafka import TopicPartition

    from streams import kafka_clients

    consumer = kafka_clients.consumer(  # no CRC checks: kafka-python's crc32c is pure Python
        settings, enable_auto_commit=False, max_partition_fetch_bytes=8 * 2**20, check_crcs=False
    )
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            return {}
        consumer.assign(parts)
        begins = consumer.beginning_offsets(parts)
        ends = consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, begins[tp] if tail is None else max(begins[tp], ends[tp] - tail))
        latest: dict[bytes, bytes] = {}
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    if r.value is None:
                        latest.pop(r.key, None)
                    else:
                        latest[r.key] = r.value
        return latest
    finally:
        consumer.close()


def active_accounts(events: Sequence[dict[str, Any]]) -> int:
    """Accounts with any event, as actor or as target."""
    return len({e["actor"] for e in events} | {e["target"] for e in events if e["target"]})


def exact_counts(
    events: Sequence[dict[str, Any]], horizon_ms: int = HORIZON_MS
) -> dict[str, list[int]]:
    """[inbound, answered] per addressed account, by METRICS.md (via the simulator's truth)."""
    import numpy as np

    from streams.simulate.truth import answers

    accounts = sorted({e["actor"] for e in events} | {e["target"] for e in events if e["target"]})
    sim = dataclasses.make_dataclass("Sim", ["events", "snapshots", "start_ms"])(
        events, [{"account": a, "followers": 0} for a in accounts], 0
    )
    a = answers(sim, horizon_ms)
    inbound = np.bincount(a["responder"], minlength=len(accounts))
    answered = np.bincount(a["responder"], weights=a["latency"] >= 0, minlength=len(accounts))
    return {accounts[i]: [int(inbound[i]), int(answered[i])] for i in np.flatnonzero(inbound)}


def worker_env(
    settings: Any, app_id: str, expect: int, done: Path, datadir: Path
) -> dict[str, str]:
    return {
        "NAIVE_APP_ID": app_id, "NAIVE_BROKER": settings.kafka.bootstrap,
        "NAIVE_TOPIC": settings.topic("interactions"), "NAIVE_EXPECT": str(expect),
        "NAIVE_DONE": str(done), "NAIVE_DATADIR": str(datadir),
        "NAIVE_PARTITIONS": str(settings.kafka.partitions),
    }  # fmt: skip


def run_naive(
    settings: Any,
    events: Sequence[dict[str, Any]],
    *,
    workdir: Path | None = None,
    check: bool = True,
    timeout: float = 3600.0,
    quiet: bool = False,
) -> NaiveResult:
    """Publish ``events`` as single-event messages to a fresh topic, run the naive app on
    them in a subprocess until all are consumed, and return its figures."""
    from streams.publish import Publisher
    from streams.topics import delete_run_topics, ensure_topics

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    run = f"naive-{uuid.uuid4().hex[:8]}"
    settings = dataclasses.replace(
        settings, kafka=dataclasses.replace(settings.kafka, topic_prefix=run)
    )
    ensure_topics(settings, ("interactions",))
    work = workdir or Path(tempfile.mkdtemp(prefix="naive-faust-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with Publisher(settings, envelope_size=1) as publisher:
        for e in events:
            publisher.event(e)
    published = publisher.summary.published
    publish_seconds = time.monotonic() - started
    say(f"naive: published {published:,} single-event messages to "
        f"{settings.topic('interactions')} in {publish_seconds:.1f} s; worker started")  # fmt: skip

    done = work / f"{run}.done.json"
    log = work / f"{run}.log"
    env = {**os.environ, **worker_env(settings, run, published, done, work / "data")}
    with log.open("ab") as fh:
        started_wall = time.time()
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "worker", "-l", "warn"],
            env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not done.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"the naive worker exited ({proc.returncode}); see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the naive worker did not finish in {timeout:.0f} s; see {log}")
            time.sleep(0.2)
        cpu, rss = proc_figures(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        delete_run_topics(settings)
    result = json.loads(done.read_text())
    counts: dict[str, list[int]] = result["counts"]
    state = sum(
        len(k) + len(v)
        for table in ("pending", "counts")
        for k, v in latest_values(settings, f"{run}-{table}-changelog").items()
    )
    checked = False
    if check:
        exact = exact_counts(events)
        checked = {k: v for k, v in counts.items() if v[0]} == exact
        if not checked:
            wrong = sum(1 for k in exact.keys() | counts.keys() if exact.get(k) != counts.get(k))
            say(f"naive: counts differ from the exact ones for {wrong:,} accounts (exact: "
                f"{sum(v[0] for v in exact.values()):,} inbound, "
                f"{sum(v[1] for v in exact.values()):,} answered)")  # fmt: skip
    say(f"naive: worker log {log}")
    return NaiveResult(
        events=published, publish_seconds=publish_seconds,
        seconds=result["done_at"] - started_wall,
        steady_seconds=result["done_at"] - result["first_at"], cpu_seconds=cpu, peak_rss=rss,
        state_bytes=state, active_accounts=active_accounts(events),
        inbound=sum(c[0] for c in counts.values()), answered=sum(c[1] for c in counts.values()),
        accounts=sum(1 for c in counts.values() if c[0]), checked=checked,
    )  # fmt: skip


def describe(r: NaiveResult) -> str:
    return (
        f"naive Faust: {r.events:,} events in {r.seconds:.1f} s from worker start "
        f"({r.events_per_second:,.0f} events/s; {r.events / r.steady_seconds:,.0f} events/s "
        f"from the first event consumed); CPU {r.cpu_seconds:.1f} s "
        f"({r.events_per_cpu_second:,.0f} events per CPU-second); peak RSS "
        f"{r.peak_rss / 2**20:,.0f} MiB; state on the changelogs {r.state_bytes / 2**20:,.1f} MiB"
        f"\n  {r.active_accounts:,} active accounts; {r.inbound:,} inbound, {r.answered:,} "
        f"answered ({r.accounts:,} accounts addressed); counts exact per account: "
        f"{'yes' if r.checked else 'NO'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from streams.chaos import workload
    from streams.config import load_settings

    sim = workload(args.events, args.seed)
    print(describe(run_naive(load_settings(), sim.events[: args.events])))


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        create_app().main()
    else:
        main()
