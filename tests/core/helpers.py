"""Event builders and a small in-process pipeline for the core tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.core import (
    AccountIndex,
    EventBatch,
    MatchResult,
    PairCounter,
    ReplyMatcher,
    RequesterTags,
    ResponsivenessAggregator,
    TierBook,
    WindowFigures,
    concat_figures,
    concat_results,
)

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % DAY  # a day boundary, so windows are easy to see


def ev(
    eid: str, actor: str, target: str | None, ts: int, kind: str = "MESSAGE", **extra: Any
) -> dict[str, Any]:
    """One event with every field the contract has (optional ones None)."""
    e: dict[str, Any] = {
        "event_id": eid, "kind": kind, "actor": actor, "target": target, "ts": ts,
        "in_reply_to": None, "conversation_id": None, "text": "", "urls": [], "platform": "test",
        "followers": None, "following": None, "posts": None,
    }
    e.update(extra)
    return e


@dataclass
class Run:
    """Everything a run produced."""

    matcher: ReplyMatcher
    agg: ResponsivenessAggregator
    tiers: TierBook
    pairs: PairCounter
    results: list[MatchResult] = field(default_factory=list)
    emitted: list[WindowFigures] = field(default_factory=list)

    @property
    def all(self) -> MatchResult:
        return concat_results(self.results)

    def latest_figures(self) -> WindowFigures:
        """Each (account, window, segment) once: its final emission, else its current state."""
        finals = [f.select(f.final) for f in self.emitted]
        return concat_figures([*finals, self.agg.rows()])

    def last_emitted(self) -> WindowFigures:
        return self.emitted[-1]


class Pipeline:
    """TierBook → tags → matcher → aggregator (+ pair counts), batch by batch."""

    def __init__(
        self,
        horizon_ms: int = 7 * DAY,
        tiers: Sequence[str] = ("T0", "T1", "T2", "T3", "T4", "T5", "top", "upper", "base"),
        sizes: Sequence[int] = (HOUR, DAY),
        rerank: bool = False,
    ) -> None:
        accounts = AccountIndex()  # shared: every stage reuses the batch's account ids
        book = TierBook(accounts=accounts)
        self.tagger = RequesterTags(book.tiers, tiers=tiers)
        self.rerank = rerank
        self.run = Run(
            ReplyMatcher(horizon_ms=horizon_ms, accounts=accounts),
            ResponsivenessAggregator(sizes=sizes, horizon_ms=horizon_ms, tiers=tiers,
                                     accounts=accounts),
            book,
            PairCounter(accounts=accounts),
        )

    def feed(self, events: Sequence[dict[str, Any]], emit: bool = True) -> MatchResult:
        r = self.run
        b = EventBatch(events, r.matcher.accounts)
        r.tiers.observe_events(b)
        if self.rerank:
            r.tiers.rerank()
        result = r.matcher.process(b, self.tagger(b))
        r.agg.consume(result)
        r.pairs.add(b)
        r.results.append(result)
        if emit:
            r.emitted.append(r.agg.emit())
        return result

    def feed_all(self, batches: Iterable[Sequence[dict[str, Any]]]) -> Run:
        for batch in batches:
            self.feed(batch)
        return self.run


def rows_where(figs: WindowFigures, **match: Any) -> list[dict[str, Any]]:
    """Figure rows (dicts) whose fields equal ``match``."""
    return [r for r in figs.rows() if all(r[k] == v for k, v in match.items())]
