"""Throughput of the analytics core (no Kafka, no ClickHouse) on CollegeMsg scaled to ~2M events.

CollegeMsg (59,835 messages) is repeated with relabelled accounts (copy c: account ``c:<id>``)
over the same period, i.e. a 33× larger network with the same shape, and run in event-time
order, in batches, through the core: EventBatch (fields and account ids, once per batch),
requester tags, reply matching, responsiveness aggregation, pair counts for reciprocity; then,
reported apart, tiers (TierBook observe + rerank) and emission of window figure rows.

Each batch's event dicts are built fresh just before it is processed, as a consumer decoding
messages would hand them over (``decode*``, not counted as core work). Stage times are CPU time
of this process (``time.process_time``), so other load on a shared machine does not inflate
them; the loop's wall clock is printed too. Prints events/s per stage, peak RSS, state sizes.

    .venv/bin/python ops/bench/core_throughput.py [--copies 33] [--batch 20000] [--emit-every 1]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from streams.core import (  # noqa: E402
    AccountIndex,
    EventBatch,
    PairCounter,
    ReplyMatcher,
    RequesterTags,
    ResponsivenessAggregator,
    TierBook,
    reciprocity,
)

RANK_TIERS = ("top", "upper", "base")  # CollegeMsg has no follower counts

DATA = REPO.parent / "shared" / "data" / "CollegeMsg" / "CollegeMsg.txt"


Row = tuple[int, int, str, str, int]  # ts ms, copy, src, dst, line


def load(copies: int) -> list[Row]:
    """Compact rows of every copy, in event-time order."""
    rows = [line.split() for line in DATA.read_text().splitlines() if line.strip()]
    out = [
        (int(ts) * 1000, c, src, dst, n)
        for c in range(copies)
        for n, (src, dst, ts) in enumerate(rows, 1)
    ]
    out.sort(key=lambda r: r[0])
    return out


def decode(rows: list[Row]) -> list[dict[str, object]]:
    """What a consumer hands the core: freshly built event dicts (like Avro decoding does)."""
    return [
        {
            "event_id": f"college:{c}:{n}", "kind": "MESSAGE", "actor": f"{c}:{a}",
            "target": f"{c}:{b}", "ts": ts, "in_reply_to": None, "conversation_id": None,
            "text": "", "urls": [], "platform": "snap", "followers": None, "following": None,
            "posts": None,
        }
        for ts, c, a, b, n in rows
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=33)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--emit-every", type=int, default=1, help="emit window rows every N batches")
    ap.add_argument("--nogc", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    source = load(args.copies)
    gc.freeze()  # the input is static: keep the collector from rescanning it
    if args.nogc:
        gc.disable()
    print(f"loaded {len(source):,} events in {time.perf_counter() - t0:.1f} s "
          f"({args.copies} copies of CollegeMsg), batches of {args.batch:,}, "
          f"emit every {args.emit_every} batch(es)")

    accounts = AccountIndex()  # shared: stages reuse the batch's account ids
    tiers = TierBook(accounts=accounts)
    tagger = RequesterTags(tiers.tiers, tiers=RANK_TIERS)
    matcher = ReplyMatcher(accounts=accounts)
    agg = ResponsivenessAggregator(tiers=RANK_TIERS, accounts=accounts)
    pairs = PairCounter(accounts=accounts)
    spent: dict[str, float] = defaultdict(float)
    counts: defaultdict[str, int] = defaultdict(int)
    clock = time.process_time  # CPU time of this process: other load on the machine does not count
    wall = time.perf_counter()
    start = clock()
    for i in range(0, len(source), args.batch):
        c = clock()
        events = decode(source[i:i + args.batch])
        spent["decode*"] += clock() - c
        c = clock()
        batch = EventBatch(events, accounts)  # fields + account ids, once per batch
        spent["extract"] += clock() - c
        c = clock()
        tiers.observe_events(batch)
        tiers.rerank()
        spent["tiers"] += clock() - c
        c = clock()
        tags = tagger(batch)
        spent["tag"] += clock() - c
        c = clock()
        result = matcher.process(batch, tags)
        spent["match"] += clock() - c
        c = clock()
        agg.consume(result)
        spent["aggregate"] += clock() - c
        c = clock()
        last = i + args.batch >= len(source)
        figs = agg.emit() if last or (i // args.batch + 1) % args.emit_every == 0 else None
        spent["emit"] += clock() - c
        c = clock()
        pairs.add(batch)
        spent["pairs"] += clock() - c
        counts["inbound"] += len(result.inbound)
        counts["replies"] += len(result.replies)
        counts["expired"] += len(result.expired)
        counts["rows"] += len(figs) if figs is not None else 0
    total = clock() - start - spent["decode*"]
    wall = time.perf_counter() - wall
    c = clock()
    rec = reciprocity(pairs.counts())
    figure_s = clock() - c

    n = len(source)
    print(f"\n{'stage':<12}{'CPU s':>9}{'events/s':>14}")
    for stage, s in spent.items():
        print(f"{stage:<12}{s:>9.2f}{n / s:>14,.0f}")
    core = sum(spent[k] for k in ("extract", "tag", "match", "aggregate", "pairs"))
    print(f"{'core':<12}{core:>9.2f}{n / core:>14,.0f}   extract + tag + match + aggregate + pairs")
    print(f"{'all':<12}{total:>9.2f}{n / total:>14,.0f}   + tiers (observe, rerank) + emit")
    print("decode* builds the event dicts a consumer would hand over; it is not core work")
    print(f"wall clock of the loop, decode included: {wall:.2f} s")
    print(f"emitted {counts['rows']:,} window rows ({counts['rows'] / n:.1f} per event), "
          f"{counts['rows'] / spent['emit']:,.0f} rows/s")
    print(f"\nreciprocity over the whole period: {figure_s:.2f} s, |E| = {rec.edges:,}, "
          f"r = {rec.r:.4f}")
    print(f"records: {dict(counts)}")
    print(f"state: matcher {matcher.state_size()}, aggregator {agg.state_size()}, "
          f"pairs {pairs.state_size()}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS {rss / 1024:,.0f} MiB (input events included)")


if __name__ == "__main__":
    main()
