"""What a batch costs the core, by batch size: CPU µs per event of the partition engines, the
by-actor hop (MessagePack out and back) and the spam rules, no Kafka, no sink.

A live worker takes what arrived in ``worker.take_seconds`` (at 2,800 events/s ~35 events per
partition), a backlog 500-event envelopes: a cost per batch that grows with the state held
(a re-sort of every pending message, a scan of every window) shows here as µs per event that
falls steeply with the batch size. The simulator's mix (``--accounts`` accounts over two days,
in event-time order) is cut into batches of ``--sizes`` events, each split over ``--partitions``
partitions as the publisher keys them, with fresh event dicts per batch as a decoder would
hand them over (not counted). CPU time of this process (``time.process_time``).

    .venv/bin/python ops/bench/batch_cost.py [--sizes 35,140,500,2000] [--events 150000]
        [--accounts 16667] [--partitions 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402

from streams.agents import by_actor  # noqa: E402
from streams.config import load_settings  # noqa: E402
from streams.core.actors import ActorEngine, Routed  # noqa: E402
from streams.core.engine import PartitionEngine  # noqa: E402
from streams.publish import partition_for  # noqa: E402
from streams.simulate import simulate  # noqa: E402


def run(events: list[dict[str, Any]], size: int, partitions: int) -> dict[str, float]:
    """CPU seconds per stage over ``events`` cut into batches of ``size``."""
    config = load_settings(env={}).engine_config()
    engines = [PartitionEngine(config, "interactions", p) for p in range(partitions)]
    actors = [ActorEngine(config, "by-actor", q, sources=partitions) for q in range(partitions)]
    encoder, decoder = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    spent = dict.fromkeys(("engines", "by-actor hop", "spam rules"), 0.0)
    for lo in range(0, len(events), size):
        batch = decoder.decode(encoder.encode(events[lo : lo + size]))  # fresh dicts
        parts: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for e in batch:
            parts[partition_for(e["actor"], e["target"], partitions)].append(e)
        inbox: dict[int, list[Routed]] = defaultdict(list)
        for p, part in parts.items():
            started = time.process_time()
            engines[p].process([part])
            routed = time.process_time()
            mark = max(e["ts"] for e in part)
            for q, value, headers in by_actor.encode(p, part, mark, partitions):
                inbox[q].append(by_actor.decode(value, headers))
            spent["engines"] += routed - started
            spent["by-actor hop"] += time.process_time() - routed
        for q, messages in inbox.items():
            started = time.process_time()
            actors[q].process(messages)
            spent["spam rules"] += time.process_time() - started
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="35,140,500,2000", help="batch sizes, comma-separated")
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--accounts", type=int, default=16_667)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args()
    print(f"simulating {args.accounts:,} accounts for two days ...", file=sys.stderr)
    events = sorted(simulate(args.accounts, 2, 1).events, key=lambda e: e["ts"])[: args.events]
    print(f"{len(events):,} events, {args.partitions} partitions; CPU µs per event:")
    print(f"{'batch':>7} {'engines':>9} {'by-actor hop':>13} {'spam rules':>11} {'all':>8}")
    for size in (int(x) for x in args.sizes.split(",")):
        spent = run(events, size, args.partitions)
        per = {k: 1e6 * v / len(events) for k, v in spent.items()}
        print(f"{size:>7,} {per['engines']:>9.1f} {per['by-actor hop']:>13.1f} "
              f"{per['spam rules']:>11.1f} {sum(per.values()):>8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
