"""Publisher throughput: events/s from a file to acknowledged Kafka messages.

Usage (local stack running):  .venv/bin/python ops/bench/publish_throughput.py [--events N]
Prints, per mode (batch envelopes of 500, single-event messages), events/s end to end
(parse + validate + encode + produce + broker ack) and the parse-only rate for reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import uuid
from pathlib import Path

from streams.config import load_settings
from streams.importers import Rejected, read
from streams.publish import Publisher
from streams.topics import delete_run_topics, ensure_topics

COLLEGE = Path(__file__).resolve().parents[3] / "shared" / "data" / "CollegeMsg" / "CollegeMsg.txt"


def synthetic(path: Path, n: int) -> Path:
    """CollegeMsg repeated with shifted accounts and times until it has n lines."""
    lines = COLLEGE.read_text().splitlines()
    out = path / f"college-x{n}.txt"
    with out.open("w") as fh:
        for i in range(n):
            a, b, t = lines[i % len(lines)].split()
            k = i // len(lines)
            fh.write(f"{a}-{k} {b}-{k} {int(t) + k * 10}\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500_000)
    args = ap.parse_args()
    base = load_settings()
    work = base.var_path / "bench"
    work.mkdir(parents=True, exist_ok=True)
    path = synthetic(work, args.events)

    started = time.perf_counter()
    n = sum(1 for item in read("snap", path) if not isinstance(item, Rejected))
    parse = n / (time.perf_counter() - started)
    print(f"events {n:,}; parse+validate only: {parse:,.0f} events/s")

    for label, envelope in (("envelopes of 500", 500), ("single-event messages", 1)):
        run = f"bench-{uuid.uuid4().hex[:8]}"
        kafka = dataclasses.replace(base.kafka, topic_prefix=run)
        settings = dataclasses.replace(base, kafka=kafka)
        ensure_topics(settings)
        started = time.perf_counter()
        with Publisher(settings, envelope_size=envelope) as publisher:
            publisher.run(read("snap", path))
        elapsed = time.perf_counter() - started
        delete_run_topics(settings)
        s = publisher.summary
        print(
            f"{label:<22} {s.published:,} events in {s.messages:,} messages, {elapsed:.1f} s: "
            f"{s.published / elapsed:,.0f} events/s"
        )
    path.unlink()


if __name__ == "__main__":
    main()
