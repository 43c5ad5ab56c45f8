"""End-to-end throughput of the worker: a simulated network pre-published, then drained — side
by side with a naive one-event-at-a-time Faust implementation.

A fresh run on the local Kafka (own topics, embedded chDB in a temporary directory unless
RAPPORT_CLICKHOUSE says otherwise): ``rapport simulate``'s network published first —
snapshots, events in envelopes of 500 (``--envelope-size``; 1 for single-event messages),
end-of-input markers — then one worker started with
every analytic and rule on, and timed until everything is stored and committed (both stages).
The network has about ``--events`` events (accounts sized from it as ``streams.chaos.workload``
does: 2 days, ~15 events per account and day), or ``--accounts`` × ``--days`` when
``--accounts`` is given. Prints events, wall seconds from worker start, events/s, worker CPU
seconds and events per CPU-second (per core), and the worker's peak RSS; then, in the same run:

- the naive baseline (``naive_faust.py``: the same responsiveness counts, Faust Tables updated
  per event, single-event messages) on the first ``--baseline-events`` events of the same
  simulation, and the ratio of events per CPU-second, Rapport / naive;
- state size: the pickled engines (``PartitionEngine`` per interactions partition,
  ``ActorEngine`` per by-actor partition) as last saved by ``streams.agents.checkpoints``, read
  back from the ``engine-state`` changelog topic (latest manifest per partition, its chunks),
  and the peak RSS, both also per 1M active accounts (accounts with any event). With the
  default embedded chDB the RSS includes the sink's own memory; point RAPPORT_CLICKHOUSE at a
  server to leave it out;
- a CPU profile of the worker: it runs under ``py-spy record`` (raw collapsed stacks,
  ``--profile-rate`` 20 Hz, ``--nonblocking``: the worker is never paused; idle threads left
  out), summarised as the top 15 functions by own and by cumulative samples (``--no-profile``
  to run it bare). py-spy's own CPU (a fraction of a core: the worker has many native chDB
  threads to walk) competes with the worker on a small machine; at 100 Hz in blocking mode it
  fell a minute behind and stalled a 2M-event run.

Then a table of all figures.

    .venv/bin/rapport stack up
    nice -n 5 .venv/bin/python ops/bench/pipeline_throughput.py [--events 2000000]
        [--baseline-events 200000] [--accounts N --days D] [--seed 1] [--envelope-size 500]
        [--no-profile]
    # quick check: --events 200000 --baseline-events 50000 (~4 min)

On this 2-core machine the default 2M takes ~15 min: ~1 min to simulate, ~2 to publish, ~6 for
the worker to drain it, ~4 for the naive baseline on 200k.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runs import bench_run  # noqa: E402
from naive_faust import (  # noqa: E402
    NaiveResult,
    active_accounts,
    latest_values,
    proc_figures,
    run_naive,
)
from steal import steal_seconds  # noqa: E402

from streams.analyze import wait_processed  # noqa: E402
from streams.chaos import DAYS, EVENTS_PER_ACCOUNT_DAY  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.publish import Publisher  # noqa: E402
from streams.simulate import import_runs, simulate  # noqa: E402
from streams.worker import WorkerProcess  # noqa: E402

MIB = 2**20


class ProfiledWorker(WorkerProcess):
    """The worker as a child of ``py-spy record`` (which writes raw collapsed stacks to
    ``profile`` when the worker exits); ``pid`` is the worker's own process."""

    def __init__(
        self, settings: Settings, env: dict[str, str], log: Path, profile: Path, rate: int = 20
    ) -> None:
        super().__init__(settings, env, log)
        self.profile = profile
        self.rate = rate
        self.pid = 0

    def start(self) -> ProfiledWorker:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [py_spy, "record", "--rate", str(self.rate), "--nonblocking", "--nolineno",
                 "--format", "raw", "--output", str(self.profile), "--",
                 sys.executable, "-m", "streams.cli", "worker"],
                env={**os.environ, **self.env}, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.pid:
            children = [
                int(c)
                for task in Path(f"/proc/{self.proc.pid}/task").iterdir()
                for c in (task / "children").read_text().split()
            ]
            if children:
                self.pid = children[0]
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"py-spy did not start the worker; see {self.log}")
            else:
                time.sleep(0.05)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Stop the worker; py-spy then writes the profile and exits."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            try:
                self.proc.wait(timeout + 30)
            except subprocess.TimeoutExpired:
                for pid in (self.pid, self.proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def _frame(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py)`` → ``func (pkg/mod.py)``."""
    name, _, path = frame.partition(" (")
    path = path.rstrip(")")
    for marker in ("site-packages/", f"{REPO}/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name


Ranked = list[tuple[str, int]]


# leaf frames that are a thread waiting (py-spy's idle detection misses the consumer thread's
# event loop polling), and frames that only dispatch (left out of the cumulative ranking)
WAITING = ("EpollSelector.select ", "Condition.wait ", "Event.wait ", "Thread.join ",
           "Thread._wait_for_tstate_lock ")  # fmt: skip
PLUMBING = ("<frozen runpy>", "(click/", "(streams/cli.py)", "run_foreground ", "(asyncio/",
            "(mode/", "(threading.py)", "<frozen importlib")  # fmt: skip


def profile_summary(path: Path, top: int = 15) -> tuple[int, int, Ranked, Ranked]:
    """(busy samples, waiting samples, top functions by own samples, top by cumulative
    samples) of py-spy's raw output; waiting samples are left out of the rankings."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    busy = waiting = 0
    # py-spy writes frame names as it reads them from the process: not always valid UTF-8
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        if frames[-1].startswith(WAITING):
            waiting += n
            continue
        busy += n
        own[frames[-1]] += n
        for f in set(frames):
            if not any(p in f for p in PLUMBING):
                cumulative[f] += n
    return busy, waiting, own.most_common(top), cumulative.most_common(top)


def print_profile(path: Path, rate: int, top: int = 15) -> Ranked:
    busy, waiting, own, cumulative = profile_summary(path, top)
    if not busy:
        print(f"\nprofile: no samples in {path}")
        return []
    print(f"\nCPU profile of the worker (py-spy, {rate} Hz, all threads): {busy:,} busy samples "
          f"(≈ {busy / rate:,.0f} s), {waiting:,} more in select/wait left out; raw stacks "
          f"in {path}")  # fmt: skip
    for title, rows in (("own", own), ("cumulative (dispatch frames left out)", cumulative)):
        print(f"\ntop {top} by {title} time:")
        print(f"  {'%':>5} {'samples':>8}  function")
        for name, n in rows:
            print(f"  {100 * n / busy:>5.1f} {n:>8,}  {name}")
    return own


class RssWatch(threading.Thread):
    """The worker's RSS when it logs that it is ready (imports done, sink connected, before
    input): the base that the peak is compared with."""

    def __init__(self, pid: int, log: Path) -> None:
        super().__init__(daemon=True)
        self.pid, self.log = pid, log
        self.ready_rss: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        offset = 0
        while not self.stop.wait(0.1) and self.ready_rss is None:
            try:
                with self.log.open("rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            offset += len(chunk.rpartition(b"\n")[0]) + (b"\n" in chunk)
            if re.search(rb"\[\^\w*Worker\]: Ready", chunk):  # Faust's Worker or ours
                rss = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
                self.ready_rss = int(rss.split()[1]) * 1024


def engine_state_sizes(settings: Settings) -> dict[str, tuple[int, int]]:
    """Pickled size of the engines last saved, by input topic: (partitions, bytes).

    Read from the end of the ``engine-state`` changelog (a checkpoint writes its chunks, then
    its manifest; older generations may not be compacted away yet), going further back until
    every engine's latest manifest and all its chunks are in view."""
    changelog = f"{settings.kafka.topic_prefix}-worker-engine-state-changelog"
    inputs = (settings.topic("interactions"), settings.topic("by-actor"))
    wanted = {f"{t}/{p}".encode() for t in inputs for p in range(settings.kafka.partitions)}
    for tail in (128, 512, 2048, 8192, None):
        latest = latest_values(settings, changelog, tail)
        sizes: dict[bytes, int] = {}
        for prefix in wanted:
            raw = latest.get(prefix + b"/manifest")
            if raw is None:
                continue
            manifest = json.loads(raw)
            chunks = [latest.get(prefix + f"/{manifest['gen']}/{i}".encode())
                      for i in range(manifest["chunks"])]  # fmt: skip
            if all(c is not None for c in chunks):
                sizes[prefix] = sum(len(c or b"") for c in chunks)
        if len(sizes) == len(wanted):
            break
    out: dict[str, tuple[int, int]] = {}
    for prefix, size in sizes.items():
        topic = prefix.decode().rpartition("/")[0]
        parts, total = out.get(topic, (0, 0))
        out[topic] = (parts + 1, total + size)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000,
                    help="about this many simulated events (accounts sized from it)")  # fmt: skip
    ap.add_argument("--accounts", type=int, help="simulate this many accounts instead")
    ap.add_argument("--days", type=float, help=f"simulated days (default {DAYS:g}; 3 with "
                    "--accounts, as before)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline-events", type=int, default=200_000,
                    help="naive Faust baseline on the first N events (0: skip it)")  # fmt: skip
    ap.add_argument("--envelope-size", type=int, default=500,
                    help="events per Kafka message (1: single-event messages, as other "
                         "producers may send)")  # fmt: skip
    ap.add_argument("--no-profile", action="store_true", help="run the worker without py-spy")
    ap.add_argument("--profile-rate", type=int, default=20, help="py-spy samples per second")
    args = ap.parse_args()

    tmp, settings, env = bench_run("pipeline-throughput")

    if args.accounts:
        accounts, days = args.accounts, args.days or 3.0
    else:
        days = args.days or DAYS
        accounts = max(50, round(args.events / (EVENTS_PER_ACCOUNT_DAY * days)))
    started = time.monotonic()
    sim = simulate(accounts, days, args.seed)
    active = active_accounts(sim.events)
    print(f"simulated {len(sim.events):,} events ({accounts:,} accounts x {days:g} days, "
          f"{active:,} active) in {time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
    started = time.monotonic()
    with Publisher(settings, envelope_size=args.envelope_size) as publisher:
        for run in import_runs(sim):
            publisher.run(run)
        publisher.end_of_input()
    print(f"published {len(sim.events):,} events and {len(sim.snapshots):,} snapshots in "
          f"{time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip

    profile = tmp / "worker.pyspy.txt"
    worker: WorkerProcess
    if args.no_profile:
        worker = WorkerProcess(settings, env, tmp / "worker.log").start()
    else:
        worker = ProfiledWorker(
            settings, env, tmp / "worker.log", profile, args.profile_rate
        ).start()
    started, stolen_before = time.monotonic(), steal_seconds()
    assert worker.proc is not None
    pid = worker.pid if isinstance(worker, ProfiledWorker) else worker.proc.pid
    watch = RssWatch(pid, worker.log)
    watch.start()
    try:
        wait_processed(worker, quiet=False)
        seconds = time.monotonic() - started
        cpu, rss = proc_figures(pid)
        stolen_after = steal_seconds()
    finally:
        watch.stop.set()
        worker.stop()
    ready_rss = watch.ready_rss or 0
    n = len(sim.events)
    print(f"events: {n:,} ({accounts:,} accounts x {days:g} days, 4 partitions, all rules, "
          f"{args.envelope_size} per message)")  # fmt: skip
    print(f"drained in {seconds:.1f} s from worker start: {n / seconds:,.0f} events/s")
    if stolen_before is not None and stolen_after is not None:
        stolen = (stolen_after - stolen_before) / seconds
        print(f"CPU stolen by the hypervisor meanwhile: {stolen:.2f} of {os.cpu_count()} cores "
              "(events/s counts it, events per CPU-second does not)")
    print(f"worker CPU {cpu:.1f} s: {n / cpu:,.0f} events per CPU-second (per core)")
    print(f"worker peak RSS {rss / MIB:,.0f} MiB ({ready_rss / MIB:,.0f} MiB when ready, "
          f"before input); log {tmp / 'worker.log'}")  # fmt: skip

    sizes = engine_state_sizes(settings)
    state = sum(size for _, size in sizes.values())
    for topic, (parts, size) in sorted(sizes.items()):
        print(f"saved engine state, {topic}: {parts} partitions, {size / MIB:,.1f} MiB pickled")

    if not args.no_profile:
        print_profile(profile, args.profile_rate)

    naive: NaiveResult | None = None
    if args.baseline_events:
        print(f"\nnaive Faust baseline on the first {args.baseline_events:,} events ...",
              file=sys.stderr)  # fmt: skip
        naive = run_naive(settings, sim.events[: args.baseline_events], workdir=tmp / "naive")
        print(f"naive Faust: {naive.events:,} events, counts exact per account: "
              f"{'yes' if naive.checked else 'NO'} ({naive.inbound:,} inbound, "
              f"{naive.answered:,} answered); {naive.events / naive.steady_seconds:,.0f} "
              "events/s from its first event consumed")  # fmt: skip

    print_table(n, seconds, cpu, rss, ready_rss, state, active, naive)


def print_table(
    n: int, seconds: float, cpu: float, rss: int, ready_rss: int, state: int, active: int,
    naive: NaiveResult | None,
) -> None:  # fmt: skip
    per_m = 1e6 / max(1, active)
    grown = rss - ready_rss if ready_rss else 0
    rows: list[tuple[str, str, str]] = [
        ("events", f"{n:,}", f"{naive.events:,}" if naive else "-"),
        ("active accounts", f"{active:,}", f"{naive.active_accounts:,}" if naive else "-"),
        ("wall s (from worker start)", f"{seconds:,.1f}",
         f"{naive.seconds:,.1f}" if naive else "-"),
        ("events/s", f"{n / seconds:,.0f}", f"{naive.events_per_second:,.0f}" if naive else "-"),
        ("worker CPU s", f"{cpu:,.1f}", f"{naive.cpu_seconds:,.1f}" if naive else "-"),
        ("events per CPU-second", f"{n / cpu:,.0f}",
         f"{naive.events_per_cpu_second:,.0f}" if naive else "-"),
        ("peak RSS MB", f"{rss / MIB:,.0f}", f"{naive.peak_rss / MIB:,.0f}" if naive else "-"),
        ("state MB (pickled engines | table changelogs)", f"{state / MIB:,.1f}",
         f"{naive.state_bytes / MIB:,.1f}" if naive else "-"),
        ("peak RSS MB per 1M active accounts", f"{rss / MIB * per_m:,.0f}",
         f"{naive.peak_rss / MIB * 1e6 / naive.active_accounts:,.0f}" if naive else "-"),
        ("peak RSS above the ready worker, MB per 1M active accounts",
         f"{grown / MIB * per_m:,.0f}" if grown else "-", "-"),
        ("state MB per 1M active accounts", f"{state / MIB * per_m:,.0f}",
         f"{naive.state_bytes / MIB * 1e6 / naive.active_accounts:,.0f}" if naive else "-"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"\n{'':<{width}}  {'Rapport':>12}  {'naive Faust':>12}")
    for label, ours, theirs in rows:
        print(f"{label:<{width}}  {ours:>12}  {theirs:>12}")
    if naive:
        ratio = (n / cpu) / naive.events_per_cpu_second
        print(f"{'ratio, events per CPU-second':<{width}}  {ratio:>12.1f}x (Rapport / naive)")


if __name__ == "__main__":
    main()
