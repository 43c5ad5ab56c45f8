"""Throughput of the spam detector (no Kafka, no ClickHouse) on a seeded synthetic mix.

MinHash: ``MinHasher.sketch`` over random texts of 6–30 words (texts/s, one process). Detector:
``SpamDetector.process`` with every rule on, in batches, over a two-day stream of ``--events``
ordinary events among ``--accounts`` accounts plus five spammers of every kind. Ordinary
traffic: kinds in proportions like a social network (likes most, then replies, posts, shares,
mentions, comments, messages, follows), lognormal activity per account, targets in a circle of
30 accounts (the closest most often) so contacts repeat, texts on posts and addressing events,
a link on 15% of posts and shares and 3% of the rest, per-account profile counts (clear of the
R8 signature) on every event, arrival shuffled by up to a minute. Each batch's event dicts are
built just before it is processed, as a consumer decoding messages hands them over (not
counted). Times are CPU time of this process (``time.process_time``). Prints texts/s, events/s
(all rules, then each rule alone on the first ``--per-rule`` events), alerts per rule, state
sizes, checkpoint (pickle) size, peak RSS.

    .venv/bin/python ops/bench/spam_throughput.py [--events 500000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import pickle
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from streams.core.spam import RULES, Alert, MinHasher, SpamConfig, SpamDetector  # noqa: E402

T0 = 1_700_006_400_000  # a day boundary
DAY = 86_400_000
MIN = 60_000
KINDS = ("LIKE", "REPLY", "POST", "SHARE", "MENTION", "COMMENT", "MESSAGE", "FOLLOW", "UNFOLLOW")
SHARES = (0.30, 0.15, 0.12, 0.10, 0.10, 0.08, 0.08, 0.05, 0.02)
TEXTED = frozenset({"REPLY", "POST", "MENTION", "COMMENT", "MESSAGE"})
VOCAB = np.array([f"w{i}" for i in range(5000)], dtype=object)
Event = dict[str, Any]


def texts(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` texts of 6–30 random words."""
    words = VOCAB[rng.integers(0, len(VOCAB), (n, 30))].tolist()
    return [" ".join(w[:k]) for w, k in zip(words, rng.integers(6, 31, n).tolist(), strict=True)]


def event(eid: str, kind: str, actor: str, target: str | None, ts: int, **extra: Any) -> Event:
    e: Event = {
        "event_id": eid, "kind": kind, "actor": actor, "target": target, "ts": ts,
        "in_reply_to": None, "conversation_id": None, "text": "", "urls": [],
        "platform": "bench", "followers": 50, "following": 100, "posts": 10,
    }  # fmt: skip
    e.update(extra)
    return e


class Background:
    """Ordinary traffic as compact columns; ``event(i)`` builds row i's dict."""

    def __init__(self, rng: np.random.Generator, n: int, accounts: int) -> None:
        weight = rng.lognormal(0.0, 1.5, accounts)  # the busiest account: ~0.3% of events
        self.actor = rng.choice(accounts, n, p=weight / weight.sum()).tolist()
        near = np.arange(1, 31)  # each account's circle: 30 others, the first ones most often
        step = rng.choice(near, n, p=(1 / near) / (1 / near).sum())
        self.target = ((np.asarray(self.actor) + step) % accounts).tolist()
        kind = rng.choice(len(KINDS), n, p=SHARES)
        self.kind = [KINDS[k] for k in kind.tolist()]
        self.ts = (T0 + np.sort(rng.integers(0, 2 * DAY, n))).tolist()
        broadcast = np.isin(kind, [KINDS.index("POST"), KINDS.index("SHARE")])
        self.link = (rng.random(n) < np.where(broadcast, 0.15, 0.03)).tolist()
        self.text = texts(rng, n)
        self.followers = (31 + rng.lognormal(5.0, 1.5, accounts)).astype(np.int64)
        self.following = (
            np.minimum(rng.lognormal(5.0, 0.8, accounts), 5 * self.followers)
            .astype(np.int64)
            .tolist()
        )
        self.followers = self.followers.tolist()

    def __len__(self) -> int:
        return len(self.ts)

    def event(self, i: int) -> Event:
        k, a = self.kind[i], self.actor[i]
        return event(
            f"n{i}",
            k,
            f"a{a}",
            None if k == "POST" else f"a{self.target[i]}",
            self.ts[i],
            text=self.text[i] if k in TEXTED else "",
            urls=[f"https://site{i % 977}.example/p/{i}?utm_source=x"] if self.link[i] else [],
            followers=self.followers[a],
            following=self.following[a],
            posts=100,
        )


def spammers(rng: np.random.Generator, copies: int) -> list[Event]:
    """``copies`` spammers for every rule, each starting at a random time of the first day."""
    out: list[Event] = []

    def add(actor: str, target: str | None, ts: int, kind: str = "MENTION", **extra: Any) -> None:
        out.append(event(f"{actor}:{len(out)}", kind, actor, target, ts, **extra))

    for c in range(copies):
        t = T0 + int(rng.integers(0, DAY))
        template = VOCAB[rng.integers(0, len(VOCAB), 24)].tolist()
        for i in range(15):  # R1 (and R3, R5 by definition): one link, near-duplicate texts
            words = list(template)
            words[i % len(words)] = f"x{i}"
            add(
                f"link{c}",
                f"s{c}-{i}",
                t + i * MIN,
                text=" ".join(words),
                urls=[f"https://SPAM{c}.example/x?utm_id={i}"],
            )
        for j in range(6):  # R2
            for i in range(3):
                add(f"camp{c}-{j}", f"c{c}-{j}-{i}", t + j * MIN + i, urls=[f"https://camp{c}.io"])
        for i in range(120):  # R4
            add(f"fs{c}", f"f{c}-{i}", t + i * MIN, "FOLLOW", followers=5)
        for i in range(60):  # R6
            add(f"bot{c}", None, t + i * 5 * MIN, "POST")
        for i in range(40):  # R7
            add(f"burst{c}", f"b{c}-{i}", t + i * 5000)
        add(f"fake{c}", "a1", t, "LIKE", followers=1, following=900)  # R8
    return out


class Stream:
    """Background and spammers merged in arrival order (ts + up to a minute of shuffle)."""

    def __init__(self, events: int, accounts: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.background = Background(rng, events, accounts)
        self.spam = spammers(rng, 5)
        ts = np.concatenate((self.background.ts, [e["ts"] for e in self.spam]))
        self.order = np.argsort(ts + rng.integers(0, MIN, len(ts)), kind="stable").tolist()

    def __len__(self) -> int:
        return len(self.order)

    def batch(self, lo: int, hi: int) -> list[Event]:
        nb, bg = len(self.background), self.background
        return [bg.event(r) if r < nb else self.spam[r - nb] for r in self.order[lo:hi]]


def feed(detector: SpamDetector, stream: Stream, batch: int, n: int) -> tuple[float, list[Alert]]:
    """CPU seconds ``detector`` took over the first ``n`` events (building dicts not counted)."""
    alerts: list[Alert] = []
    took = 0.0
    for lo in range(0, n, batch):
        events = stream.batch(lo, min(n, lo + batch))
        start = time.process_time()
        alerts.extend(detector.process(events))
        took += time.process_time() - start
    return took, alerts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--accounts", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--texts", type=int, default=100_000)
    ap.add_argument("--per-rule", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    corpus = texts(np.random.default_rng(args.seed), args.texts)
    hasher = MinHasher()
    hasher.sketch(corpus[:1000])  # warm up
    start = time.process_time()
    hasher.sketch(corpus)
    took = time.process_time() - start
    print(f"minhash: {args.texts:,} texts in {took:.2f} s = {args.texts / took:,.0f} texts/s")
    del corpus

    stream = Stream(args.events, args.accounts, args.seed)
    kinds = Counter(stream.background.kind)
    print(
        f"stream: {len(stream):,} events over 2 days ({len(stream.spam):,} from planted "
        f"spammers), kinds {dict(kinds.most_common())}"
    )
    detector = SpamDetector()
    took, alerts = feed(detector, stream, args.batch, len(stream))
    print(
        f"detector (all rules, batches of {args.batch:,}): {took:.2f} s = "
        f"{len(stream) / took:,.0f} events/s"
    )
    planted = Counter(a.rule for a in alerts if not a.actor.startswith("a"))
    print(f"alerts per rule, planted spammers: {dict(sorted(planted.items()))}")
    for day in (0, 1):  # the detector knows no contacts from before the stream
        other = Counter(
            a.rule
            for a in alerts
            if a.actor.startswith("a") and a.window_start // DAY == day + T0 // DAY
        )
        print(f"  ordinary accounts, day {day + 1}: {dict(sorted(other.items()))}")
    print(f"state entries at the end: {detector.state_size()}; late events: {detector.late}")
    print(f"checkpoint (pickle): {len(pickle.dumps(detector)) / 1e6:.1f} MB")
    n = min(args.per_rule, len(stream))
    for rule in RULES:
        took, _ = feed(SpamDetector(SpamConfig(enabled=(rule,))), stream, args.batch, n)
        print(f"  {rule} alone ({n:,} events): {n / took:,.0f} events/s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
