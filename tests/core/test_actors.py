"""The spam rules over re-keyed events: every rule finds its simulated spammers however many
partitions the input has and however unevenly its source partitions progress."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streams.config import load_settings
from streams.core.actors import END, ActorEngine, Routed, partition_of, route
from streams.core.engine import EngineConfig
from streams.core.spam import Alert
from streams.publish import partition_for
from streams.simulate import Simulation, simulate

EVENT_RULES = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(1200, 2, seed=5)


@pytest.fixture(scope="module")
def config() -> EngineConfig:
    return load_settings(env={}, cwd=Path("/")).engine_config()


def run(config: EngineConfig, sim: Simulation, partitions: int, seed: int) -> list[Alert]:
    """Messages of 500 events per source partition, the sources taken in a random order
    (source 0 entirely first), routed to by-actor partitions, twice each (a replay)."""
    sources: dict[int, list[dict]] = {p: [] for p in range(partitions)}
    for e in sim.events:
        sources[partition_for(e["actor"], e["target"], partitions)].append(e)
    queues = {p: [ev[i : i + 500] for i in range(0, len(ev), 500)] for p, ev in sources.items()}
    rest = [p for p in range(1, partitions) for _ in queues[p]]
    random.Random(seed).shuffle(rest)
    engines = [ActorEngine(config, "by-actor", q, sources=partitions) for q in range(partitions)]
    alerts: list[Alert] = []
    for p in [0] * len(queues[0]) + rest:
        message = queues[p].pop(0)
        mark = max(e["ts"] for e in message)
        groups = route(message, partitions)
        for q, engine in enumerate(engines):
            routed = [
                Routed(r, p, mark, groups[(q, r)]) for r in ("actor", "link") if (q, r) in groups
            ]
            routed = routed or [Routed("actor", p, mark, [])]
            alerts += engine.process(routed + routed)
    for engine in engines:
        alerts += engine.process([Routed("actor", p, END, []) for p in range(partitions)])
    return alerts


@pytest.mark.parametrize("partitions", [1, 4])
def test_every_event_rule_finds_exactly_its_spammers(
    sim: Simulation, config: EngineConfig, partitions: int
) -> None:
    alerts = run(config, sim, partitions, seed=partitions)
    by_rule: dict[str, set[str]] = {r: set() for r in EVENT_RULES}
    for a in alerts:
        by_rule[a.rule].add(a.actor)
    for rule in EVENT_RULES:
        assert by_rule[rule] == sim.spammers_by_rule[rule], rule
    assert len({a.alert_id for a in alerts}) == len(alerts)  # replayed messages raised nothing


def test_alerts_do_not_depend_on_how_sources_interleave(
    sim: Simulation, config: EngineConfig
) -> None:
    first = {a.alert_id for a in run(config, sim, 4, seed=1)}
    assert first == {a.alert_id for a in run(config, sim, 4, seed=2)}


def test_events_wait_until_at_most_half_the_lateness_ahead_of_the_slowest_source() -> None:
    engine = ActorEngine(EngineConfig(), "by-actor", 0, sources=2)
    lead = engine.lead_ms
    e = {"event_id": "x", "kind": "POST", "actor": "a", "target": None, "ts": 10 * lead,
         "in_reply_to": None, "conversation_id": None, "text": "hi", "urls": [],
         "platform": "t", "followers": None, "following": None, "posts": None}  # fmt: skip
    engine.process([Routed("actor", 0, 20 * lead, [e])])
    assert len(engine.held) == 1  # source 1 has not said how far it is
    engine.process([Routed("actor", 1, 9 * lead - 1, [])])
    assert len(engine.held) == 1
    engine.process([Routed("actor", 1, 9 * lead, [])])
    assert not engine.held


def test_links_are_routed_to_the_partition_of_their_canonical_url() -> None:
    e = {
        "event_id": "y",
        "actor": "a",
        "urls": ["HTTPS://Shop.example/x?utm_source=1", "http://b.example/"],
    }
    groups = route([e], 8)
    assert (partition_of("a", 8), "actor") in groups
    links = [(q, ev["urls"]) for (q, r), evs in groups.items() if r == "link" for ev in evs]
    assert sorted(u for _, urls in links for u in urls) == sorted(e["urls"])
