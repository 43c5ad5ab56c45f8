"""One input partition's analytics, composed, and the rows it hands the sink.

Kafka messages (each a list of events) go in, in offset order; per message: repeated event ids
are dropped (``SeenIds``), events are put in event-time order (``ReorderBuffer``, released per
message so the result never depends on how a consumer batched the messages), then per UTC day
of event time (rank tiers move at day boundaries): tiers, requester tags, reply matching,
responsiveness, pair counts, tier mixing and late counts. Released events are run together,
``RUN_EVENTS`` at a time, or fewer when the input ends or the worker emits open windows
(``emit_open``: at the engine's every checkpoint and when input pauses, so rows wait one
checkpoint interval at most): the analytics cost mostly per run, a live take releases a few
dozen events a partition, and every part gives the same results however the events are cut
into runs. Out come rows for
``reply_records``, ``window_aggregates``, ``pair_counts``, ``tier_mixing`` and ``late_events``
(column order as in ``sinks.tables``; checked by a test). The spam rules run elsewhere
(``streams.core.actors``, on events keyed by actor); spam-adjusted responsiveness subtracts the
messages of accounts under an alert at query time (``streams.reports``), so it does not depend
on when an alert got here.

Every emitted row carries a version that is a function of its content (counts only grow), so
the same window always gets the same version however often or when it was emitted: a replay
after a crash, a restart from a checkpoint or a re-emission collapses in a ReplacingMergeTree to
the row with the most data. An engine pickles whole (``pickle.dumps``): that is its checkpoint.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from streams.core.batch import AccountIndex, EventBatch
from streams.core.changes import Trackable, TracksChanges, Written, reduce_changes
from streams.core.dedupe import DEFAULT_DEDUPE_MS, SeenIds
from streams.core.narrow import int_keyed, int_keyed_columns, narrow
from streams.core.reciprocity import NON_INTERACTION_KINDS
from streams.core.replies import DEFAULT_HORIZON_MS, ReplyMatcher
from streams.core.responsiveness import (
    SEGMENT_ALL,
    TIER_PREFIX,
    RequesterTags,
    ResponsivenessAggregator,
    WindowFigures,
)
from streams.core.sketch import DEFAULT_ALPHA
from streams.core.spam import Alert, SpamConfig
from streams.core.tiers import (
    BASE,
    DEFAULT_FOLLOWER_BOUNDS,
    DEFAULT_RANK_WINDOW_MS,
    DEFAULT_TOP_SHARE,
    DEFAULT_UPPER_SHARE,
    TOP,
    UPPER,
    TierBook,
    follower_tiers,
)
from streams.core.windows import (
    DAY_MS,
    GRACE_MS,
    NO_TIME,
    REORDER_MS,
    WINDOW_SIZES,
    Event,
    ReorderBuffer,
)

_ID_BITS = 31
_ID_MASK = (1 << _ID_BITS) - 1

# Row layouts, in the sink tables' insert-column order.
REPLY_RECORD_COLUMNS = (
    "inbound_event_id",
    "requester",
    "responder",
    "inbound_ts",
    "answer_event_id",
    "answer_ts",
    "latency_ms",
    "requester_tier",
    "responder_tier",
    "in_thread",
)
WINDOW_AGGREGATE_COLUMNS = (
    "account", "window_ms", "window_start", "kafka_partition", "requester_tier",
    "inbound", "answered", "pending", "unanswered", "answered_15m", "answered_1h",
    "answered_24h", "p50_ms", "p90_ms", "p99_ms", "answered_in_thread", "conversation_starts",
    "late", "final", "version",
)  # fmt: skip
PAIR_COUNT_COLUMNS = ("window_ms", "window_start", "src", "dst", "n", "version")
TIER_MIXING_COLUMNS = ("window_ms", "window_start", "kafka_partition", "src_tier", "dst_tier", "n",
                       "version")  # fmt: skip
SPAM_ALERT_COLUMNS = ("alert_id", "rule", "actor", "severity", "window_start", "window_end",
                      "evidence", "first_seen", "last_seen")  # fmt: skip
LATE_EVENT_COLUMNS = ("window_ms", "window_start", "kafka_topic", "kafka_partition", "late",
                      "version")  # fmt: skip
ALL_TIERS = "all"  # requester_tier of the row over every requester


@dataclass(frozen=True)
class EngineConfig:
    """The analytics' parameters (METRICS.md defaults); ``streams.config`` fills them."""

    horizon_ms: int = DEFAULT_HORIZON_MS  # H: an answer later than t + H does not count
    grace_ms: int = GRACE_MS  # a window takes events until stream time ≥ end + grace
    reorder_ms: int = REORDER_MS  # events shuffled by less than this are matched in order
    window_sizes: tuple[int, ...] = WINDOW_SIZES
    tier_bounds: tuple[int, ...] = DEFAULT_FOLLOWER_BOUNDS
    rank_window_ms: int = DEFAULT_RANK_WINDOW_MS  # rank tiers: inbound over this trailing window
    top_share: float = DEFAULT_TOP_SHARE
    upper_share: float = DEFAULT_UPPER_SHARE
    dedupe_ms: int = DEFAULT_DEDUPE_MS  # how long event ids are remembered (event time)
    alpha: float = DEFAULT_ALPHA  # latency sketch relative accuracy
    spam: SpamConfig = field(default_factory=SpamConfig)  # rules R1–R8

    @property
    def tier_names(self) -> tuple[str, ...]:
        return (*follower_tiers(self.tier_bounds), TOP, UPPER, BASE)


@dataclass
class Output:
    """Rows for each sink table, as tuples in the ``*_COLUMNS`` order."""

    reply_records: list[tuple[Any, ...]] = field(default_factory=list)
    window_aggregates: list[tuple[Any, ...]] = field(default_factory=list)
    pair_counts: list[tuple[Any, ...]] = field(default_factory=list)
    tier_mixing: list[tuple[Any, ...]] = field(default_factory=list)
    late_events: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)  # new spam alerts, for the alerts topic

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Table name → rows."""
        return {
            "reply_records": self.reply_records, "window_aggregates": self.window_aggregates,
            "pair_counts": self.pair_counts, "tier_mixing": self.tier_mixing,
            "late_events": self.late_events, "spam_alerts": [alert_row(a) for a in self.alerts],
        }  # fmt: skip

    def __len__(self) -> int:
        return sum(map(len, self.tables().values()))


Window = tuple[int, int]  # (size, start)
Columns = tuple[Any, Any]  # keys as ``differences``, counts narrowed


class _WindowCounts:
    """Counts per (window size, start) of some integer key, emitted as versioned rows of the
    keys changed since their last row: on request, and when their window closes (then
    dropped). A key unchanged since its last row is not written again: re-emitting a day's
    every pair at each checkpoint was 8% of the worker's CPU at 2M events."""

    def __init__(self) -> None:
        self.windows: dict[Window, Counter[int]] = {}
        self.dirty: dict[Window, set[int]] = {}  # keys changed since their last row
        # since ``track``: keys changed per window, windows dropped (before made again, if so)
        self.touched: dict[Window, set[int]] | None = None
        self.dropped: set[Window] = set()

    def add(self, size: int, starts: np.ndarray, keys: np.ndarray) -> None:
        if not len(keys):
            return
        first, last = int(starts.min()), int(starts.max())
        for s in [first] if first == last else np.unique(starts).tolist():
            k = (size, s)
            c = self.windows.get(k)
            if c is None:
                c = self.windows[k] = Counter()
            changed = (keys if first == last else keys[starts == s]).tolist()
            c.update(changed)
            self.dirty.setdefault(k, set()).update(changed)
            if self.touched is not None:
                self.touched.setdefault(k, set()).update(changed)

    def take(
        self, closed_before: int | None, grace_ms: int
    ) -> list[tuple[int, int, np.ndarray, list[int]]]:
        """(size, start, keys ascending, their counts) of the keys changed since their last
        row: in every window (``closed_before`` None), or in the windows closed by stream time
        ``closed_before`` (dropped after). Keys as an array, so that rows are made per column
        (a tuple per key here and a lookup per key there were 5% of the worker at 2M)."""
        if closed_before is None:
            done = sorted(self.dirty)
            counts = [self.windows[k] for k in done]
        else:
            done = sorted(k for k in self.windows if closed_before >= k[1] + k[0] + grace_ms)
            counts = [self.windows.pop(k) for k in done]
            if self.touched is not None:
                self.dropped.update(done)
                for k in done:
                    self.touched.pop(k, None)
        changed = [self.dirty.pop(k, set()) for k in done]
        out = []
        for (size, start), c, keys in zip(done, counts, changed, strict=True):
            if keys:
                ordered = np.sort(np.fromiter(keys, np.int64, len(keys)))
                out.append((size, start, ordered, list(map(c.__getitem__, ordered.tolist()))))
        return out

    def __len__(self) -> int:
        return sum(map(len, self.windows.values()))

    # --- checkpoints: whole (``__getstate__``) or the changes since ``track`` ---

    def track(self) -> None:
        self.touched, self.dropped = {}, set()

    def changes(self) -> tuple[dict[Window, Columns], list[Window], dict[Window, Any]]:
        """The counts of the keys changed since ``track`` per window held, the windows dropped
        since, and ``dirty`` (small after an emit: a checkpoint emits first)."""
        if self.touched is None:
            raise RuntimeError("window counts saved as changes while not tracking them")
        held = {k: _columns({key: self.windows[k][key] for key in keys})
                for k, keys in self.touched.items()}  # fmt: skip
        return held, sorted(self.dropped), _sorted_keys(self.dirty)

    def apply(self, changes: tuple[dict[Window, Columns], list[Window], dict[Window, Any]]
              ) -> None:  # fmt: skip
        held, gone, dirty = changes
        for k in gone:
            self.windows.pop(k, None)
        for k, (keys, counts) in held.items():
            dict.update(self.windows.setdefault(k, Counter()), int_keyed(keys, counts.tolist()))
        self.dirty = _key_sets(dirty)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return reduce_changes(self) or super().__reduce_ex__(protocol)

    def __getstate__(self) -> dict[str, Any]:
        """Columns, not dicts of ints (~10 bytes an entry pickled); sorted: equal states give
        equal bytes."""
        windows = {k: _columns(c) for k, c in self.windows.items()}
        return {"columns": windows, "dirty": _sorted_keys(self.dirty)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "columns" in state:
            state["windows"] = {k: Counter(int_keyed(keys, counts.tolist()))
                                for k, (keys, counts) in state.pop("columns").items()}  # fmt: skip
            state["dirty"] = _key_sets(state["dirty"])
        if "touched" in state:  # a checkpoint from before ``dirty``: touched windows whole
            windows = state["windows"]
            state["dirty"] = {k: set(windows[k]) for k in state.pop("touched") if k in windows}
        vars(self).update(state, touched=None, dropped=set())


def _columns(c: dict[int, int]) -> Columns:
    keys, counts = int_keyed_columns(c)
    return keys, narrow(np.array(counts, np.int64))


def _sorted_keys(sets: dict[Window, set[int]]) -> dict[Window, Any]:
    return {k: np.sort(np.fromiter(v, np.int64, len(v))) for k, v in sets.items()}


def _key_sets(arrays: dict[Window, Any]) -> dict[Window, set[int]]:
    return {k: set(v.tolist()) for k, v in arrays.items()}


RUN_EVENTS = 2_000  # released events run together (a run of 35 cost ~6× as much an event)


class PartitionEngine(TracksChanges):
    """Everything one Kafka partition's events feed; see the module docstring."""

    def __init__(self, config: EngineConfig, topic: str = "", partition: int = 0) -> None:
        self.config = config
        self.topic = topic
        self.partition = partition
        self.offset = -1  # last Kafka offset folded in: set by the caller, kept in checkpoints
        self.accounts = AccountIndex()
        self.seen = SeenIds(config.dedupe_ms)
        self.reorder = ReorderBuffer(config.reorder_ms)
        self.tiers = TierBook(
            config.tier_bounds, config.rank_window_ms, config.top_share, config.upper_share,
            accounts=self.accounts,
        )  # fmt: skip
        self.tagger = RequesterTags(self.tiers.tiers, config.tier_names)
        self.matcher = ReplyMatcher(config.horizon_ms, accounts=self.accounts)
        self.agg = ResponsivenessAggregator(
            config.window_sizes, config.horizon_ms, config.grace_ms, config.tier_names,
            config.alpha, self.accounts,
        )  # fmt: skip
        self.pairs = _WindowCounts()  # keys: actor id << 31 | target id
        self.mixing = _WindowCounts()  # keys: actor tier code << 8 | target tier code
        self.late: dict[tuple[int, int], int] = {}  # one entry per window that had a late event
        self._late_changed: set[tuple[int, int]] = set()
        self.stream_time = NO_TIME  # of the events run so far (event-time order)
        self._rank_day = NO_TIME
        self._ready: list[Event] = []  # released, in release order, not run yet

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_ready", [])  # a checkpoint from before runs were gathered
        vars(self).update(state)

    def tracked(self) -> dict[str, Trackable]:
        """What a save of changes holds as changes (``streams.core.changes``): the events held
        for reordering, the ids seen, the pair and tier-mixing counts, the accounts' latest
        follower counts and tiers; the rest whole."""
        if not isinstance(self.tiers.tiers, Written):  # from a checkpoint before tracking
            self.tiers.tiers = self.tagger.tier_of = Written(self.tiers.tiers)
        return {"reorder": self.reorder, "seen": self.seen.ids, "pairs": self.pairs,
                "mixing": self.mixing, "latest": self.tiers.latest, "tiers": self.tiers.tiers}

    # --- input ---

    def process(self, messages: list[list[Event] | None]) -> Output:
        """Fold in messages (lists of validated events) in offset order; rows now due.

        ``None`` is an end-of-input marker (a publisher finished a file): everything held for
        reordering is released there. It is a message like any other, so a replay releases at
        the same point.
        """
        out = Output()
        segment: list[list[Event]] = []
        for m in messages:
            if m is not None:
                segment.append(self.seen.fresh(m))
                continue
            self._release(segment, out)
            segment = []
            self._ready.extend(self.reorder.flush())
            self._run_ready(out, force=True)
        self._release(segment, out)
        self._closed(out)
        return out

    def _release(self, messages: list[list[Event]], out: Output) -> None:
        released = self.reorder.push_messages(messages) if messages else []
        if not released:
            return
        self._ready.extend(released)
        self._run_ready(out)

    def _run_ready(self, out: Output, force: bool = False) -> None:
        if self._ready and (force or len(self._ready) >= RUN_EVENTS):
            ready, self._ready = self._ready, []
            self._run(ready, out)

    def observe_snapshots(self, snapshots: list[dict[str, Any]]) -> None:
        """Follower counts from account snapshots (the snapshots topic) for tiers. (Profile
        alerts from snapshots are raised once per worker, not here in every partition.)"""
        self.tiers.observe_snapshots(snapshots)

    def emit_open(self) -> Output:
        """Rows of everything changed since it was last emitted, open windows too: call when
        input pauses, so readers see current figures before windows close."""
        out = Output()
        if self._ready:
            self._run_ready(out, force=True)
            self._closed(out)
        self._window_rows(self.agg.emit_open(), out)
        self._count_rows(None, out)
        return out

    def state_size(self) -> dict[str, int]:
        """Entries held per component (what a checkpoint carries)."""
        return {
            "event_ids": len(self.seen), "reorder_held": len(self.reorder) + len(self._ready),
            **{f"matcher_{k}": v for k, v in self.matcher.state_size().items()},
            **{f"windows_{k}": v for k, v in self.agg.state_size().items()},
            "pair_cells": len(self.pairs), "mixing_cells": len(self.mixing),
        }  # fmt: skip

    # --- work ---

    def _run(self, events: list[Event], out: Output) -> None:
        """Events in release order, cut where the UTC day changes (rank tiers move there)."""
        ts = np.fromiter((e["ts"] for e in events), np.int64, len(events))
        day = ts - ts % DAY_MS
        cuts = np.flatnonzero(day[1:] != day[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(events)]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            d = int(day[lo])
            if d > self._rank_day:
                if self._rank_day != NO_TIME:
                    self.tiers.rerank(now=d - 1)
                self._rank_day = d
            self._chunk(events[lo:hi], ts[lo:hi], out)

    def _chunk(self, events: list[Event], ts: np.ndarray, out: Output) -> None:
        cfg = self.config
        b = EventBatch(events, self.accounts)
        assert b.actor_ids is not None and b.target_ids is not None
        n = len(b)
        run = np.maximum.accumulate(np.maximum(ts, self.stream_time))  # stream time at each
        # Tiers as of each event (its own follower count counts, and snapshots up to its stream
        # time), not as of the batch's end: the same whatever batches the stream came in.
        snapshots = self.tiers.due_snapshots(int(run[-1]))
        tier_at = self._tier_lookup(b, run, snapshots)
        actor_codes = tier_at(b.actor_ids, b.actor, inclusive=True)
        inter = b.directed(exclude=NON_INTERACTION_KINDS)
        rows = np.flatnonzero(inter)
        target_codes = tier_at(b.target_ids[rows], b.target_array[rows].tolist(),
                               inclusive=False, at=rows)  # fmt: skip
        # only now: the lookups above see the book as it was
        self.tiers.follow_snapshots(snapshots)
        self.tiers.observe_events(b)
        result = self.matcher.process(b, actor_codes)
        self.agg.consume(result)
        rep = result.replies
        if len(rep):
            at = dict(zip(b.event_id, range(n), strict=True))
            answers = np.fromiter(map(at.__getitem__, rep.answer_id.tolist()), np.int64, len(rep))
            out.reply_records.extend(zip(
                rep.inbound_id.tolist(), rep.requester.tolist(), rep.responder.tolist(),
                rep.inbound_ts.tolist(), rep.answer_id.tolist(), rep.answer_ts.tolist(),
                rep.latency_ms.tolist(), self._tier_names(rep.tag),
                self._tier_names(actor_codes[answers]),  # the responder acts in the answer
                rep.in_thread.astype(np.int64).tolist(), strict=True,
            ))  # fmt: skip
        self.stream_time = int(run[-1])
        pair_keys = (b.actor_ids << _ID_BITS) | b.target_ids
        mix_keys = np.zeros(n, np.int64)
        mix_keys[rows] = (actor_codes[rows] << 8) | target_codes
        for size in cfg.window_sizes:
            start = ts - ts % size
            late = run >= start + size + cfg.grace_ms
            if late.any():
                ls, lc = np.unique(start[late], return_counts=True)
                for s, c in zip(ls.tolist(), lc.tolist(), strict=True):
                    self.late[(size, s)] = self.late.get((size, s), 0) + c
                    self._late_changed.add((size, s))
            ok = inter & ~late
            self.pairs.add(size, start[ok], pair_keys[ok])
            self.mixing.add(size, start[ok], mix_keys[ok])

    def _tier_lookup(
        self, b: EventBatch, run: np.ndarray, snapshots: list[tuple[int, str, int]]
    ) -> Any:
        """``tier_at(ids, names, inclusive, at)``: tier codes of accounts at batch positions
        ``at`` (default 0…n-1): their latest follower count carried by an event of this batch
        before (or at, ``inclusive``) that position or by a snapshot whose time the stream
        (``run``: stream time at each position) has reached there, else the tier book as the
        batch began."""
        n = len(b)
        fol, any_fol = b.column("followers")
        assert b.actor_ids is not None
        pos = np.flatnonzero(fol != None) if any_fol else np.zeros(0, np.int64)  # noqa: E711
        # slots: a snapshot at position p sits at 2p (before the event there), an event at 2p+1
        obs_id = b.actor_ids[pos]
        slot = 2 * pos + 1
        count = fol[pos].astype(np.int64) if len(pos) else pos
        if snapshots:
            s_ts, s_acc, s_fol = zip(*snapshots, strict=True)
            obs_id = np.concatenate([obs_id, self.accounts.ids_of(list(s_acc))])
            slot = np.concatenate([slot, 2 * np.searchsorted(run, np.asarray(s_ts), "left")])
            count = np.concatenate([count, np.asarray(s_fol, np.int64)])
        order = np.lexsort((slot, obs_id))
        obs_id = obs_id[order]
        keys = obs_id * (2 * n + 1) + slot[order]
        bucket = np.searchsorted(np.asarray(self.config.tier_bounds), count[order], "right")
        book = self.tagger.tier_codes

        def tier_at(ids: np.ndarray, names: list[str], inclusive: bool,
                    at: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
            codes = book(names)
            if len(keys):
                where = np.arange(len(ids)) if at is None else at
                probe = ids * (2 * n + 1) + 2 * where + 1
                j = np.searchsorted(keys, probe, "right" if inclusive else "left") - 1
                jj = np.maximum(j, 0)
                hit = (j >= 0) & (obs_id[jj] == ids)
                codes = np.where(hit, bucket[jj] + 1, codes)  # follower tier k has code k + 1
            return codes

        return tier_at

    def _tier_names(self, codes: np.ndarray) -> list[Any]:
        return list(self.tagger.tier_names(codes).tolist())

    # --- output ---

    def _closed(self, out: Output) -> None:
        self._window_rows(self.agg.emit(), out)
        self._count_rows(self.stream_time, out)

    def _window_rows(self, f: WindowFigures, out: Output) -> None:
        if not len(f):
            return
        seg = f.segment.tolist()
        tier = [ALL_TIERS if s == SEGMENT_ALL else s[len(TIER_PREFIX) :] for s in seg]
        counted = f.inbound + f.late + f.answered + f.unanswered
        version = 2 * counted + f.final.astype(np.int64)

        def opt(a: np.ndarray) -> list[float | None]:
            return [None if v != v else v for v in a.tolist()]  # NaN → NULL

        out.window_aggregates.extend(zip(
            f.account.tolist(), f.window_ms.tolist(), f.window_start.tolist(),
            [self.partition] * len(f), tier,
            f.inbound.tolist(), f.answered.tolist(), f.pending.tolist(), f.unanswered.tolist(),
            f.answered_15m.tolist(), f.answered_1h.tolist(), f.answered_24h.tolist(),
            opt(f.p50_ms), opt(f.p90_ms), opt(f.p99_ms), f.answered_in_thread.tolist(),
            f.conversation_starts.tolist(), f.late.tolist(), f.final.astype(np.int64).tolist(),
            version.tolist(), strict=True,
        ))  # fmt: skip

    def _count_rows(self, closed_before: int | None, out: Output) -> None:
        """Pair counts, tier mixing and late counts: touched ones, or closed windows."""
        names_of = self.accounts.names_of
        for size, start, keys, n in self.pairs.take(closed_before, self.config.grace_ms):
            src, dst = names_of(keys >> _ID_BITS).tolist(), names_of(keys & _ID_MASK).tolist()
            out.pair_counts.extend(zip(repeat(size), repeat(start), src, dst, n, n))
        tiers = np.array([t or BASE for t in (None, *self.config.tier_names)], dtype=object)
        for size, start, keys, n in self.mixing.take(closed_before, self.config.grace_ms):
            src, dst = tiers[keys >> 8].tolist(), tiers[keys & 255].tolist()
            out.tier_mixing.extend(
                zip(repeat(size), repeat(start), repeat(self.partition), src, dst, n, n)
            )
        for size, start in sorted(self._late_changed):
            late = self.late[(size, start)]
            out.late_events.append((size, start, self.topic, self.partition, late, late))
        self._late_changed.clear()


def alert_row(a: Alert) -> tuple[Any, ...]:
    """A ``spam_alerts`` row: the evidence as JSON text."""
    evidence = json.dumps(a.to_record()["evidence"], sort_keys=True)
    return (a.alert_id, a.rule, a.actor, a.severity, a.window_start, a.window_end, evidence,
            a.first_seen, a.last_seen)  # fmt: skip
