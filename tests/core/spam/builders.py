"""Crafted event streams for the spam rules: one builder per pattern, and a runner."""

from __future__ import annotations

import copyreg
import pickle
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from streams.core.spam import Alert, SpamConfig, SpamDetector
from streams.core.spam.r7_burst import BurstRule
from streams.core.spam.spans import TrailingSet
from tests.core.helpers import HOUR, MIN, ev

Event = dict[str, Any]
URL = "https://Spam.Example/offer?utm_source=twitter&utm_campaign=c7"
CANON = "https://spam.example/offer"
TEMPLATE = (
    "congratulations you have been selected for an exclusive reward claim your free gift card "
    "before midnight tonight"
)


def only(*rules: str, **settings: Any) -> SpamConfig:
    return SpamConfig(enabled=rules, **settings)


def run(
    events: Sequence[Event], config: SpamConfig | None = None, cuts: Iterable[int] = ()
) -> list[Alert]:
    """Alerts of one detector fed ``events`` in batches ending at ``cuts`` (one batch if none)."""
    d = SpamDetector(config)
    edges = [0, *cuts, len(events)]
    out: list[Alert] = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        out.extend(d.process(events[lo:hi]))
    return out


def of(alerts: Iterable[Alert], rule: str) -> list[Alert]:
    return [a for a in alerts if a.rule == rule]


def sends(
    actor: str,
    targets: Sequence[str],
    start: int,
    step: int = MIN,
    kind: str = "MENTION",
    tag: str = "",
    **extra: Any,
) -> list[Event]:
    """``actor`` addresses each of ``targets`` in turn, ``step`` apart."""
    return [
        ev(f"{actor}{tag}:{i}", actor, t, start + i * step, kind, **extra)
        for i, t in enumerate(targets)
    ]


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def near_duplicates(n: int, seed: int = 0) -> list[str]:
    """``n`` copies of ``TEMPLATE`` with one word replaced each (as the simulator's spammers)."""
    rng = np.random.default_rng(seed)
    words = TEMPLATE.split()
    out = []
    for i in range(n):
        copy = list(words)
        copy[int(rng.integers(len(words)))] = f"word{i}"
        out.append(" ".join(copy))
    return out


def follows(
    actor: str,
    n: int,
    start: int,
    step: int = MIN,
    followers: int | None = 10,
    kind: str = "FOLLOW",
    tag: str = "f",
) -> list[Event]:
    return sends(actor, names(f"{actor}-t", n), start, step, kind, tag, followers=followers)


def churns(actor: str, n: int, start: int, hold: int = HOUR, step: int = MIN) -> list[Event]:
    """``n`` follow→unfollow cycles, each unfollow ``hold`` after its follow, in time order."""
    out = follows(actor, n, start, step, followers=None)
    out += follows(actor, n, start + hold, step, followers=None, kind="UNFOLLOW", tag="u")
    return sorted(out, key=lambda e: e["ts"])


def pitches(
    actor: str, counterparts: Sequence[str], start: int, step: int = 10 * MIN
) -> list[Event]:
    """A chat with each counterpart: actor says hi, counterpart answers, actor sends a link."""
    out: list[Event] = []
    for i, c in enumerate(counterparts):
        t = start + i * step
        out += [
            ev(f"{actor}:hi{i}", actor, c, t),
            ev(f"{c}:re{i}", c, actor, t + MIN),
            ev(f"{actor}:link{i}", actor, c, t + 2 * MIN, urls=[URL]),
        ]
    return out


def posts(
    actor: str, n: int, start: int, gap: int, jitter: float = 0.0, seed: int = 0
) -> list[Event]:
    """``n`` POSTs ``gap`` apart, each moved by up to ±``jitter`` × gap."""
    rng = np.random.default_rng(seed)
    moves = rng.uniform(-jitter, jitter, n) * gap
    return [
        ev(f"{actor}:p{i}", actor, None, start + i * gap + int(moves[i]), "POST") for i in range(n)
    ]


class BeforeColumns(pickle.Pickler):
    """Pickles states the way checkpoints did before trailing sets and R7's senders were
    columns: a set as the tuple of its slots (entries as plain tuples, its heap as it was,
    stale items included), R7's senders one by one."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, TrailingSet):
            entries = {k: tuple(e) for k, e in obj.entries.items()}
            slots = (obj.window_ms, obj.cap, obj.top, entries, obj.marked, list(obj._heap))
            return copyreg.__newobj__, (TrailingSet,), slots
        if isinstance(obj, BurstRule):
            return copyreg.__newobj__, (BurstRule,), dict(vars(obj))
        return NotImplemented
