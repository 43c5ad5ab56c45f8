"""End-to-end throughput of the worker: a simulated network pre-published, then drained.

A fresh run on the local Kafka (own topics, embedded chDB in a temporary directory unless
RAPPORT_CLICKHOUSE says otherwise): ``rapport simulate``'s network (``--accounts`` × ``--days``)
published first — snapshots, events in envelopes of 500, end-of-input markers — then one worker
started with every analytic and rule on, and timed until everything is stored and committed
(both stages). Prints events, wall seconds from worker start, events/s, worker CPU seconds and
events per CPU-second (per core), and the worker's peak RSS.

    .venv/bin/rapport stack up
    .venv/bin/python ops/bench/pipeline_throughput.py [--accounts 5000] [--days 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from streams.analyze import run_settings, wait_processed  # noqa: E402
from streams.config import load_settings  # noqa: E402
from streams.publish import Publisher  # noqa: E402
from streams.simulate import import_runs, simulate  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402
from streams.worker import WorkerProcess  # noqa: E402


def proc_figures(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return cpu, int(hwm.split()[1]) * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=5000)
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pipeline-throughput-"))
    env = {k: v for k, v in os.environ.items() if k.startswith("RAPPORT_")}
    env.setdefault("RAPPORT_CLICKHOUSE", f"chdb://{tmp / 'chdb'}")
    env["RAPPORT_VAR"] = str(tmp / "var")
    settings, worker_env = run_settings(load_settings(env=env), f"bench-{uuid.uuid4().hex[:8]}")
    ensure_topics(settings)

    sim = simulate(args.accounts, args.days, args.seed)
    started = time.monotonic()
    with Publisher(settings) as publisher:
        for run in import_runs(sim):
            publisher.run(run)
        publisher.end_of_input()
    print(f"published {len(sim.events):,} events and {len(sim.snapshots):,} snapshots in "
          f"{time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip

    worker = WorkerProcess(settings, {**env, **worker_env}, tmp / "worker.log").start()
    started = time.monotonic()
    try:
        worker = wait_processed(worker, quiet=False)
        seconds = time.monotonic() - started
        assert worker.proc is not None
        cpu, rss = proc_figures(worker.proc.pid)
    finally:
        worker.stop()
    n = len(sim.events)
    print(
        f"events: {n:,} ({args.accounts:,} accounts x {args.days:g} days, 4 partitions, all rules)"
    )
    print(f"drained in {seconds:.1f} s from worker start: {n / seconds:,.0f} events/s")
    print(f"worker CPU {cpu:.1f} s: {n / cpu:,.0f} events per CPU-second (per core)")
    print(f"worker peak RSS {rss / 2**20:,.0f} MiB; log {tmp / 'worker.log'}")


if __name__ == "__main__":
    main()
