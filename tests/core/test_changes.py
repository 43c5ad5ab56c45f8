"""Saves of only the keys changed: a whole save and the changes after it restore the engine that
was saved, and it goes on raising the same alerts as the engine that never stopped."""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import Any

import faust
import numpy as np
import pytest

from streams.agents.checkpoints import CODEC, EngineStore, Save, dump_save, load_state, restore
from streams.config import load_settings
from streams.core.actors import END, ActorEngine, Routed, route
from streams.core.changes import Trackable, Tracked, Written, applying, saving_changes
from streams.core.engine import EngineConfig, PartitionEngine
from streams.core.intmap import IntMap
from streams.core.spam import Alert
from streams.core.tiers import TierBook
from streams.simulate import Simulation
from tests.core.helpers import DAY, HOUR, T0, ev


def test_a_tracked_dict_remembers_the_keys_read_written_and_deleted_once_tracking() -> None:
    d: Tracked[str, list[int]] = Tracked({"a": [1], "b": [2], "c": [3]})
    d.get("a")
    assert d.touched is None  # not tracking: nothing remembered
    d.track()
    d.get("a")
    d["b"].append(5)
    del d["c"]
    d["new"] = [4]
    d.pop("gone", None)
    d.setdefault("x", [])
    d.update({"u": [9]})
    assert d.touched == {"a", "b", "c", "new", "gone", "x", "u"}
    assert sorted(d.items()) and d.touched == {"a", "b", "c", "new", "gone", "x", "u"}


def test_a_written_dict_remembers_only_writes_and_deletes() -> None:
    d: Written[str, int] = Written({"a": 1, "b": 2})
    d.track()
    assert d.get("a") == 1 and d["b"] == 2 and d.touched == set()
    d["c"] = 3
    del d["a"]
    d.update({"e": 5})
    assert d.touched == {"a", "c", "e"}


def test_a_tier_books_changes_restore_its_follower_counts_and_rank_tiers() -> None:
    """The follower counts and tiers (rank tiers move by ``update`` and ``del``) of a tier book
    saved whole, then by their changes twice, are the live book's at each save."""
    book = TierBook(rank_window_ms=DAY)
    parts = {"tiers": book.tiers, "latest": book.latest}
    book.observe_events([ev(f"x{i}", "s", f"t{i}", T0 + HOUR, followers=i) for i in range(200)]
                        + [ev(f"y{k}", "s", "t7", T0 + HOUR) for k in range(9)])  # fmt: skip
    assert book.rerank() == {"t7": "top"}
    saves = [pickle.dumps(book)]
    restored = pickle.loads(saves[0])
    for step in (1, 2):  # a new top account, then the old ones gone from the trailing window
        for part in parts.values():
            part.track()
        book.observe_events([ev(f"z{step}-{k}", f"a{step}", f"u{step}", T0 + step * DAY,
                                followers=1_000 * step) for k in range(20)])  # fmt: skip
        book.rerank()
        with saving_changes(parts):
            saves.append(pickle.dumps(book))
        with applying({"tiers": restored.tiers, "latest": restored.latest}):
            restored = pickle.loads(saves[-1])
        assert dict(restored.tiers) == dict(book.tiers)
        assert dict(restored.latest) == dict(book.latest)
    assert "t7" not in book.tiers and set(book.latest) == {"s", "a1", "a2"}


def test_changes_apply_to_the_base_by_name_and_need_it() -> None:
    base: Tracked[str, int] = Tracked({"a": 1, "b": 2, "c": 3})
    whole = pickle.dumps({"keys": base, "other": [1, 2]})
    base.track()
    base["a"] = 10
    del base["b"]
    base["d"] = 4
    with saving_changes({"keys": base}):
        changes = pickle.dumps({"keys": base, "other": [7]})
    restored = pickle.loads(whole)
    assert isinstance(restored["keys"], Tracked) and restored["keys"].touched is None
    with applying({"keys": restored["keys"]}):
        after = pickle.loads(changes)
    assert after["keys"] is restored["keys"]  # the base's dict, changed in place
    assert after == {"keys": {"a": 10, "c": 3, "d": 4}, "other": [7]}
    with pytest.raises(RuntimeError, match="without the state"):
        pickle.loads(changes)


def test_changes_of_a_dict_not_tracking_are_refused() -> None:
    d: Tracked[str, int] = Tracked({"a": 1})
    with saving_changes({"keys": d}), pytest.raises(RuntimeError, match="not tracking"):
        pickle.dumps(d)


def test_an_intmaps_changes_hold_the_keys_written_and_dropped() -> None:
    m = IntMap(merge_at=4)
    m.update(np.arange(10), np.arange(10) * 10)
    whole = pickle.dumps(m)
    m.track()
    m.update(np.array([3, 20]), np.array([33, 200]))
    m.keep(lambda v: v >= 20)  # drops keys 0 and 1
    with saving_changes({"m": m}):
        changes = pickle.dumps(m)
    assert len(changes) < len(whole)
    base = pickle.loads(whole)
    with applying({"m": base}):
        after = pickle.loads(changes)
    assert after is base
    assert contents(after) == contents(m) == {**{k: k * 10 for k in range(2, 10)}, 3: 33, 20: 200}


def feed(engine: ActorEngine, events: list[dict[str, Any]], end: bool = False) -> list[Alert]:
    """Events as one source partition's message to a one-partition by-actor topic."""
    groups = route(events, 1)
    mark = END if end else max(e["ts"] for e in events)
    messages = [Routed(r, 0, mark, groups.get((0, r), [])) for r in ("actor", "link")]
    return engine.process(messages)


def unshared(obj: object) -> bytes:
    """A pickle without its memo: equal objects give equal bytes whether or not they share
    parts (a restored engine holds one string per place, the live one shares event ids)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=5)
    pickler.fast = True  # no memo
    pickler.dump(obj)
    return out.getvalue()


def contents(part: Trackable) -> Any:
    if isinstance(part, Tracked):
        return {k: unshared(v) for k, v in part.items()}
    if isinstance(part, IntMap):
        part.merge()
        return dict(zip(part.keys.tolist(), part.values.tolist(), strict=True))
    return unshared(part)  # whole


def fingerprint(engine: ActorEngine | PartitionEngine) -> tuple[dict[str, Any], bytes]:
    """Each tracked part's contents (in any order), and the rest of the engine; of a copy
    through a whole pickle (which puts every attribute in the order its loading gives)."""
    copy = pickle.loads(pickle.dumps(engine))
    parts = copy.tracked()
    per_key = {n: contents(part) for n, part in parts.items()}
    copy.track()  # no changes: the rest alone
    with saving_changes(parts):
        rest = unshared(copy)
    return per_key, rest


class Chain:
    """An engine's saves as a checkpoint makes them (whole, or changes after a whole one), and
    the engine they restore, kept up to date and compared with the live one at every save:
    a wrong save shows at once, before the held events it concerns are released."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.restored: Any = None
        self.saves_of_changes = 0

    def save(self, live: ActorEngine | PartitionEngine, changes: bool) -> None:
        changes = changes and bool(self.blobs)
        blob = dump_save(Save(live, changes))
        live.track()
        if changes:
            self.blobs.append(blob)
            with applying(self.restored.tracked()):
                self.restored = load_state(blob, CODEC)
            self.saves_of_changes += 1
        else:
            self.blobs = [blob]
            self.restored = load_state(blob, CODEC)
        assert fingerprint(self.restored) == fingerprint(live)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_whole_save_and_its_changes_restore_the_engine_and_its_alerts(
    sim: Simulation, config: EngineConfig, seed: int
) -> None:
    """Saves at random points, whole or changes (a new chain now and then), of an engine fed
    the simulator's stream (spammers of every rule; expiry passes delete keys); the chain
    restores an engine equal to the live one, which then raises the same alerts."""
    rng = random.Random(seed)
    events = sim.events
    stop = len(events) * 2 // 3
    live = ActorEngine(config, "by-actor", 0, sources=1)
    chain = Chain()
    at = 0
    while at < stop:
        n = rng.randint(50, 2000)
        feed(live, events[at : at + n])
        at += n
        chain.save(live, changes=at >= stop or rng.random() < 0.85)  # the last: changes
    assert chain.saves_of_changes >= 5 and len(chain.blobs) >= 2
    restored = restore(chain.blobs, CODEC)
    assert isinstance(restored, ActorEngine)
    sizes = live.state_size()
    assert sizes["actor_R5"] > 1000 and sizes["actor_R3"] > 300  # a state worth checking
    assert fingerprint(restored) == fingerprint(live)
    rest = events[at:]
    cuts = sorted(rng.sample(range(1, len(rest)), 5))
    for a, b in zip([0, *cuts], [*cuts, len(rest)], strict=True):
        assert feed(restored, rest[a:b]) == feed(live, rest[a:b])
    assert feed(restored, [], end=True) == feed(live, [], end=True)
    assert fingerprint(restored) == fingerprint(live)


def test_a_save_of_changes_is_a_fraction_of_a_whole_one(
    sim: Simulation, config: EngineConfig
) -> None:
    engine = ActorEngine(config, "by-actor", 0, sources=1)
    half = len(sim.events) // 2
    feed(engine, sim.events[:half])
    whole = dump_save(Save(engine, False))
    engine.track()
    feed(engine, sim.events[half : half + 200])
    changes = dump_save(Save(engine, True))
    assert len(changes) < len(whole) / 3


def jumbled(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Events with one in 50 delayed by up to 30 places (arriving after events later in
    time, it sorts before events held: the reorder buffer re-sorts what it holds)."""
    out = list(events)
    for i in sorted(rng.sample(range(len(out) - 31), len(out) // 50), reverse=True):
        out.insert(i + rng.randint(1, 30), out.pop(i))
    return out


@pytest.mark.parametrize("seed", [1])
def test_an_interactions_engines_whole_save_and_changes_restore_it_and_its_rows(
    sim: Simulation, config: EngineConfig, seed: int
) -> None:
    """The same for an interactions engine: its held events (released from the front, added
    at the end, re-sorted, flushed by an end-of-input marker) and ids seen saved by changes."""
    rng = random.Random(seed)
    events = jumbled(sim.events, rng)
    stop = len(events) * 2 // 3
    live = PartitionEngine(config, "interactions", 0)
    chain = Chain()
    at = 0
    while at < stop:
        n = rng.randint(2, 60)  # spans shorter than the reorder allowance: some interleave
        messages: list[list[dict[str, Any]] | None] = [events[at : at + n]]
        if rng.random() < 0.01:
            messages.append(None)  # end of a file: everything held is released
        live.process(messages)
        at += n
        if rng.random() < 0.7 and at < stop:  # saves: after 30% of the messages
            continue
        chain.save(live, changes=at >= stop or rng.random() < 0.85)
    assert chain.saves_of_changes >= 5 and len(chain.blobs) >= 2
    assert len(live.reorder) > 10  # held events to restore
    restored = restore(chain.blobs, CODEC)
    assert isinstance(restored, PartitionEngine)
    assert fingerprint(restored) == fingerprint(live)
    rest = events[at:]
    cuts = sorted(rng.sample(range(1, len(rest)), 5))
    for a, b in zip([0, *cuts], [*cuts, len(rest)], strict=True):
        assert restored.process([rest[a:b]]).tables() == live.process([rest[a:b]]).tables()
    assert restored.process([None]).tables() == live.process([None]).tables()
    assert fingerprint(restored) == fingerprint(live)


def test_one_checkpoint_saves_one_engine_whole_and_lets_the_others_chains_grow(
    config: EngineConfig,
) -> None:
    """Bytes of (whole save, changes since) per partition; the most overdue is saved whole,
    the others' chains grow up to four times their whole save; one never saved is whole."""
    store = EngineStore(faust.App("kinds-of-saves"), load_settings(env={}, cwd=Path("/")))
    store.chains = {("t", 0): (100, 150), ("t", 1): (100, 250), ("t", 2): (100, 220),
                    ("t", 3): (100, 410), ("t", 5): (100, 420)}  # fmt: skip
    states = [ActorEngine(config, "t", p) for p in range(6)]
    assert store.kinds(states[:5]) == [True, True, True, False, False]
    assert store.kinds(states) == [True, True, True, False, False, False]  # 3: over 4x too
    assert store.kinds(states[:3]) == [True, False, True]  # 1 more overdue than 2
