"""Twitter activity in the SNAP Higgs format (``userA userB UNIXTS TYPE``, userA acts).

TYPE is RT (retweet → SHARE), MT (mention → MENTION) or RE (reply → REPLY). One tweet can be
listed on several lines: a reply to B also mentions B, so it appears as RE and as MT with the
same actor, target and second. Lines are grouped by (actor, target, ts) and each group is ONE
event, of the strongest kind present (REPLY > SHARE > MENTION); the extra lines are counted as
skipped ``same_tweet``. A group stays open for ``window_lines`` lines, so lines of one tweet
need not be adjacent (the files are time-ordered, so they are close). Event ids are
``higgs:<file name>:<first line of the tweet>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from schemas import INTERACTION
from schemas.validate import validate_event
from streams.errors import RapportError
from streams.importers.base import (
    ImportRun,
    Item,
    Rejected,
    Stats,
    clock,
    edge_lines,
    existing_file,
    shown,
)  # fmt: skip

KIND_OF = {b"RT": "SHARE", b"MT": "MENTION", b"RE": "REPLY"}
_STRENGTH = {"MENTION": 0, "SHARE": 1, "REPLY": 2}


def read(
    path: str | Path,
    *,
    window_lines: int = 1000,
    platform: str = "twitter",
    now_ms: int | None = None,
) -> ImportRun:
    """Import a Higgs activity file; ``#`` comment lines and blank lines are not rows."""
    p = existing_file(path)
    if window_lines < 1:
        raise RapportError(f"window_lines must be at least 1, not {window_lines}")
    stats = Stats()
    items = _items(p, window_lines, platform, clock(now_ms), stats)
    return ImportRun(str(p), INTERACTION, stats, items)


class _Tweet:
    __slots__ = ("line", "kind", "raw")

    def __init__(self, line: int, kind: str, raw: bytes) -> None:
        self.line, self.kind, self.raw = line, kind, raw


def _items(
    path: Path, window_lines: int, platform: str, now_ms: int, stats: Stats
) -> Iterator[Item]:
    source = str(path)
    prefix = f"higgs:{path.name}:"
    open_tweets: dict[tuple[str, str, int], _Tweet] = {}  # oldest first

    def emit(key: tuple[str, str, int], tweet: _Tweet) -> Item:
        actor, target, ts = key
        event = {
            "event_id": f"{prefix}{tweet.line}", "kind": tweet.kind, "actor": actor,
            "target": target, "ts": ts, "platform": platform,
        }
        return stats.settle(validate_event(event, now_ms), source, tweet.line, tweet.raw)

    def bad_type(parts: list[bytes]) -> tuple[str, str] | None:
        if parts[3].upper() in KIND_OF:
            return None
        return "bad_kind", f"TYPE {shown(parts[3])} is not RT, MT or RE"

    for edge in edge_lines(path, "userA userB UNIXTS TYPE", stats, bad_type):
        if isinstance(edge, Rejected):
            yield edge
            continue
        kind = KIND_OF[edge.parts[3].upper()]
        key = (edge.actor, edge.target, edge.ts)
        tweet = open_tweets.get(key)
        if tweet is None:
            open_tweets[key] = _Tweet(edge.line, kind, edge.raw)
        else:
            stats.skipped["same_tweet"] += 1
            tweet.raw += edge.raw
            if _STRENGTH[kind] > _STRENGTH[tweet.kind]:
                tweet.kind = kind
        while open_tweets:
            oldest = next(iter(open_tweets))
            if open_tweets[oldest].line > edge.line - window_lines:
                break
            yield emit(oldest, open_tweets.pop(oldest))
    for key, tweet in open_tweets.items():
        yield emit(key, tweet)
