"""What a checkpoint's child spends making one partition's state bytes, offline (no Kafka).

A checkpoint forks a child that pickles the states due (``streams.agents.forked``); while it
lives the worker's pages are copy-on-write, so every page the event loop writes faults, and on
two cores the child competes with the loop, chDB's merges and the broker. Its life is the
child's CPU time for ``dump_state``: this bench measures it. One input partition of the alert
bench's background (``alert_latency.background``: the simulator's mix, each round with accounts
of its own) at ``--rate``/``--partitions`` events per second of event time goes through a
``PartitionEngine`` and, as if re-keyed to the same partition, an ``ActorEngine``; every
``--every`` events each engine's state is dumped as a checkpoint dumps it. Printed per dump:
pickle / shuffle / compress CPU seconds, the state's bytes, the process's RSS. At the end, per
engine: its parts (attributes, spam rules) slowest to pickle, the functions that took the most
of its pickle (``cProfile``: the Python ``__getstate__`` methods are what a pickle spends
outside C), and the CPU of ``dump_state`` and ``load_state`` together (what a restore adds).
Last, what a save of only the changes holds: the engines go on for ``--delta-seconds`` of
event time (a checkpoint interval) and every large dictionary of a part (per account, per
actor, per URL) is compared key by key (each entry pickled alone, before and after): the share
of its keys and bytes that changed, and the bytes of the parts without such keys (whole); then
each engine's save of its changes (``streams.core.changes``) against a whole save: CPU seconds
and bytes.

    .venv/bin/python ops/bench/checkpoint_cost.py [--events 300000] [--every 100000]
        [--rate 2833] [--partitions 4] [--accounts 16667] [--seed 1] [--repeat 3]
        [--delta-seconds 5]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import pickle
import pstats
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa  # noqa: E402
from alert_latency import background  # noqa: E402

from streams.agents.checkpoints import (  # noqa: E402
    CODEC,
    Save,
    _shuffled,
    dump_save,
    dump_state,
    load_state,
)  # fmt: skip
from streams.core.actors import ActorEngine, Routed  # noqa: E402
from streams.core.engine import EngineConfig, PartitionEngine  # noqa: E402
from streams.simulate import simulate  # noqa: E402

BATCH = 200  # events per engine call (live envelopes hold ~35; the reorder buffers regroup)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dump_parts(state: object, repeat: int) -> tuple[float, float, float, int, int]:
    """CPU seconds of pickling, shuffling, compressing (as ``dump_state`` does them, with the
    collector off as in the child; the least of ``repeat`` runs: this machine's speed varies by
    a third from minute to minute), and the bytes before and after compression."""
    runs = [_dump_parts(state) for _ in range(repeat)]
    pickling, shuffling, compressing = (min(r[i] for r in runs) for i in range(3))
    return pickling, shuffling, compressing, runs[0][3], runs[0][4]


@contextmanager
def collector_off() -> Iterator[None]:
    """As in a checkpoint child: no cyclic collection while pickling."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _dump_parts(state: object) -> tuple[float, float, float, int, int]:
    with collector_off():
        t0 = time.process_time()
        buffers: list[pickle.PickleBuffer] = []
        raw = pickle.dumps(state, protocol=5, buffer_callback=buffers.append)
        t1 = time.process_time()
        body = b"".join([raw, *(_shuffled(memoryview(b)) for b in buffers)])
        t2 = time.process_time()
        packed = pa.compress(body, codec="zstd", asbytes=True)
        t3 = time.process_time()
    return t1 - t0, t2 - t1, t3 - t2, len(body), len(packed)


def top_functions(state: Any, n: int = 8, changes: bool = False) -> str:
    """The functions a pickle of ``state`` spends most in (a save of its changes, if asked)."""
    profile = cProfile.Profile()
    with collector_off():
        if changes:
            profile.runcall(dump_save, Save(state, True))
        else:
            profile.runcall(pickle.dumps, state, protocol=5, buffer_callback=lambda _: None)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(n)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join(lines[start : start + n + 1])


def parts(engine: object) -> dict[str, object]:
    """The engine's attributes, a spam detector's rules and contact memory one by one."""
    out: dict[str, object] = {}
    for name, value in vars(engine).items():
        if name == "detectors":
            for route, detector in value.items():
                out[f"{route} contacts"] = detector.contacts
                out.update({f"{route} {rule.rule}": rule for rule in detector.rules})
        else:
            out[name] = value
    return out


KEYED = 1000  # entries from which a part's dictionary counts as keyed state


def entries(engine: object) -> tuple[dict[tuple[str, str, Any], bytes], int]:
    """Each large dictionary's entries of the engine's parts, pickled one by one (keyed by
    part, attribute, key); and the pickled bytes of everything else, whole."""
    keyed: dict[tuple[str, str, Any], bytes] = {}
    rest = 0
    for name, part in parts(engine).items():
        attrs = vars(part) if hasattr(part, "__dict__") else {"": part}
        for attr, value in attrs.items():
            if isinstance(value, dict) and len(value) >= KEYED:
                for key, entry in value.items():
                    keyed[(name, attr, key)] = pickle.dumps(entry, protocol=5)
            else:
                rest += len(pickle.dumps(value, protocol=5))
    return keyed, rest


def changes(before: dict[tuple[str, str, Any], bytes], after: dict[tuple[str, str, Any], bytes],
            rest: int) -> str:
    """What changed between two ``entries``: keys new, changed or gone, and their bytes."""
    changed = {k for k, v in after.items() if before.get(k) != v} | (before.keys() - after.keys())
    size = sum(len(after.get(k, b"")) for k in changed)
    total = sum(map(len, after.values()))
    by_part: dict[str, int] = {}
    for name, attr, _ in changed:
        by_part[f"{name}.{attr}"] = by_part.get(f"{name}.{attr}", 0) + 1
    top = ", ".join(f"{p} {n:,}" for p, n in sorted(by_part.items(), key=lambda x: -x[1])[:5])
    share = len(changed) / max(1, len(after))
    return (f"{len(changed):,} of {len(after):,} keys changed ({share:.0%}; {top}), "
            f"{size / 2**20:.1f} of {total / 2**20:.1f} MiB ({size / max(1, total):.0%}); "
            f"the rest, whole: {rest / 2**20:.1f} MiB")  # fmt: skip


def part_costs(engine: object, repeat: int, n: int = 6) -> str:
    """The ``n`` parts that took longest to pickle: CPU seconds (least of ``repeat``) and MiB."""
    costs = []
    with collector_off():
        for name, part in parts(engine).items():
            cpu = []
            for _ in range(repeat):
                buffers: list[pickle.PickleBuffer] = []
                t = time.process_time()
                size = len(pickle.dumps(part, protocol=5, buffer_callback=buffers.append))
                cpu.append(time.process_time() - t)
            costs.append((min(cpu), size + sum(memoryview(b).nbytes for b in buffers), name))
    return ", ".join(f"{name} {cpu:.2f} s {size / 2**20:.1f} MiB"
                     for cpu, size, name in sorted(costs, reverse=True)[:n])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=300_000, help="events of the one partition")
    ap.add_argument("--every", type=int, default=100_000, help="dump the states this often")
    ap.add_argument("--rate", type=float, default=2833, help="events/s of all partitions")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--accounts", type=int, default=16_667)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="dumps of each state, least taken")
    ap.add_argument("--delta-seconds", type=float, default=5.0,
                    help="event time between two saves, for what changes between them")
    args = ap.parse_args()

    print(f"simulating {args.accounts:,} accounts ...", file=sys.stderr)
    simulated = sorted(simulate(args.accounts, 2, args.seed).events, key=lambda e: e["ts"])
    ours = (e for p, e in background(simulated, args.partitions) if p == 0)
    config = EngineConfig()
    engines: dict[str, Any] = {
        "interactions": PartitionEngine(config),
        "by-actor": ActorEngine(config, sources=1),
    }
    ms_per_event = 1000 * args.partitions / args.rate
    start = 1_800_000_000_000
    base, fed, run_cpu = rss_mib(), 0, 0.0
    print(f"RSS before: {base:.0f} MiB; one of {args.partitions} partitions at "
          f"{args.rate / args.partitions:,.0f} events/s of event time")  # fmt: skip

    def feed(n: int) -> float:
        """Feed the next ``n`` events (whole batches) to both engines; their CPU seconds."""
        nonlocal fed
        cpu = 0.0
        for _ in range(max(1, round(n / BATCH))):
            chunk = [dict(e) for e in itertools.islice(ours, BATCH)]
            for i, e in enumerate(chunk):
                e["ts"] = start + int((fed + i) * ms_per_event)
            t = time.process_time()
            engines["interactions"].process([chunk])
            engines["by-actor"].process([Routed("actor", 0, chunk[-1]["ts"], chunk)])
            cpu += time.process_time() - t
            fed += len(chunk)
        return cpu

    while fed < args.events:
        run_cpu += feed(BATCH)
        if fed % args.every == 0 or fed >= args.events:
            print(f"{fed:,} events ({fed * ms_per_event / 1000:,.0f} s of event time, engines "
                  f"{run_cpu:.1f} CPU-s), RSS {rss_mib():,.0f} MiB:")  # fmt: skip
            for name, engine in engines.items():
                pickling, shuffling, compressing, body, packed = dump_parts(engine, args.repeat)
                print(f"  {name:<12} pickle {pickling:.2f} s, shuffle {shuffling:.2f} s, "
                      f"zstd {compressing:.2f} s: {body / 2**20:.1f} MiB -> "
                      f"{packed / 2**20:.1f} MiB")  # fmt: skip
    for name, engine in engines.items():
        print(f"\nthe parts of {name} slowest to pickle: {part_costs(engine, args.repeat)}")
        print(f"the last pickle of {name}, by function (cProfile):\n{top_functions(engine)}")
        t = time.process_time()
        back = load_state(dump_state(engine), CODEC)
        print(f"  dumped and loaded again in {time.process_time() - t:.2f} CPU-s "
              f"({type(back).__name__})")  # fmt: skip
    before = {name: entries(engine) for name, engine in engines.items()}
    for engine in engines.values():
        engine.track()  # as a checkpoint does once the child has forked
    n = int(args.delta_seconds * 1000 / ms_per_event)
    feed(n)
    print(f"\nover the next {args.delta_seconds:g} s of event time ({n:,} events):")
    for name, engine in engines.items():
        after, rest = entries(engine)
        print(f"  {name}: {changes(before[name][0], after, rest)}")
    for (name, engine), (kind, only_changes) in itertools.product(
        engines.items(), (("whole", False), ("changes only", True))
    ):
        cpu, blob = min(timed_save(Save(engine, only_changes)) for _ in range(args.repeat))
        print(f"  {name} save, {kind}: {cpu:.3f} CPU-s, {len(blob) / 2**20:.1f} MiB")
    for name, engine in engines.items():
        profile = top_functions(engine, changes=True)
        print(f"\na save of changes of {name}, by function (cProfile):\n{profile}")


def timed_save(save: Save) -> tuple[float, bytes]:
    """A checkpoint's bytes of ``save`` as the child makes them, and their CPU seconds."""
    with collector_off():
        t = time.process_time()
        blob = dump_save(save)
        return time.process_time() - t, blob


if __name__ == "__main__":
    main()
