"""The spam rules over re-keyed events: every rule finds its simulated spammers however many
partitions the input has and however unevenly its source partitions progress."""

from __future__ import annotations

import random

import pytest

from streams.agents import by_actor
from streams.core.actors import END, ActorEngine, Routed, partition_of, route
from streams.core.engine import EngineConfig
from streams.core.spam import Alert
from streams.publish import partition_for
from streams.simulate import Simulation

EVENT_RULES = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")


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
    e: dict = {"event_id": "x", "kind": "POST", "actor": "a", "target": None, "ts": 10 * lead,
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


def test_alerts_do_not_depend_on_where_the_consumer_cuts_a_batch_of_messages(
    config: EngineConfig,
) -> None:
    """A source's batch reaches a partition as two messages, its actor events then its link
    events, and the consumer may take them in separate calls (Faust cuts its batches anywhere;
    seen after a rebalance). The source must not move on before its link events are in: here
    another source's link 40 min in would make an R2 campaign of the first 5 min late."""
    t0, minute = 1_767_571_200_000, 60_000

    def event(i: int, actor: str, target: str | None, ts: int, url: str | None) -> dict:
        return {"event_id": f"e{i}", "kind": "REPLY" if target else "POST", "actor": actor,
                "target": target, "ts": ts, "in_reply_to": None, "conversation_id": None,
                "text": f"text {i}", "urls": [url] if url else [], "platform": "test",
                "followers": None, "following": None, "posts": None}  # fmt: skip

    other = [event(0, "x", "y", t0 + 40 * minute, "https://other.example/")]
    campaign = [
        event(i, f"a{i}", f"t{i}", t0 + i * minute, "https://campaign.example/")
        for i in range(1, 6)
    ] + [event(6, "z", None, t0 + 60 * minute, None)]
    messages = [
        by_actor.decode(value, headers)
        for source, events in ((1, other), (0, campaign))
        for _, value, headers in by_actor.encode(source, events, max(e["ts"] for e in events), 1)
    ] + [Routed("actor", s, END, []) for s in (0, 1)]
    assert [m.route for m in messages[:4]] == ["actor", "link", "actor", "link"]

    def alerts(calls: list[list[Routed]]) -> tuple[set[tuple[str, str, str]], int]:
        engine = ActorEngine(config, "by-actor", 0, sources=2)
        raised = {(a.alert_id, a.rule, a.actor) for c in calls for a in engine.process(c)}
        return raised, sum(d.late for d in engine.detectors.values())

    whole, late = alerts([messages])
    assert late == 0
    assert {actor for _, rule, actor in whole if rule == "R2"} == {f"a{i}" for i in range(1, 6)}
    assert alerts([[m] for m in messages]) == (whole, 0)  # one message per call: the same


def test_ids_are_remembered_for_the_lateness_only_and_a_late_replay_is_late(
    config: EngineConfig, sim: Simulation
) -> None:
    """Repeats are dropped as they are released; one older than the lateness allowance is late
    for the rules (so nothing is judged twice) and its id need not be kept."""
    chunks = [sim.events[i : i + 500] for i in range(0, len(sim.events), 500)]

    def messages(chunk: list[dict]) -> list[Routed]:
        mark = max(e["ts"] for e in chunk)
        return [Routed(r, 0, mark, evs) for (_, r), evs in route(chunk, 1).items()]

    engine = ActorEngine(config, "by-actor", 0, sources=1)
    first = [a.alert_id for c in chunks for a in engine.process(messages(c))]
    late = sum(d.late for d in engine.detectors.values())
    remembered = sum(map(len, engine.seen.values()))
    window = [e for e in sim.events if e["ts"] > sim.events[-1]["ts"] - 2 * config.spam.lateness_ms]
    assert first and remembered <= 2 * len(window) < len(sim.events) // 10
    again = [a.alert_id for c in chunks[:5] for a in engine.process(messages(c))]
    assert again == []
    replayed = sum(len(c) for c in chunks[:5])
    assert sum(d.late for d in engine.detectors.values()) == late + replayed + sum(
        bool(e["urls"]) for c in chunks[:5] for e in c
    )


def test_an_engine_checkpointed_when_repeats_were_dropped_on_arrival_keeps_its_held_events(
    config: EngineConfig,
) -> None:
    engine = ActorEngine(config, "by-actor", 0, sources=2)
    event = {"event_id": "e1", "kind": "REPLY", "actor": "a", "target": "b", "ts": 1000,
             "in_reply_to": None, "conversation_id": None, "text": "hi", "urls": [],
             "platform": "t", "followers": None, "following": None, "posts": None}  # fmt: skip
    engine.process([Routed("actor", 0, 1000, [event])])  # held: source 1 has said nothing
    assert len(engine.held) == 1
    state = dict(vars(engine))
    del state["arrived"]  # as an older worker pickled it: held without arrival numbers
    state["held"] = [(ts, i, r, e) for ts, i, _, r, e in state["held"]]
    state["seen"]["actor"].fresh([event])  # had taken the id on arrival
    older = ActorEngine.__new__(ActorEngine)
    older.__setstate__(state)
    older.process([Routed("actor", 1, END, []), Routed("actor", 0, END, [])])
    assert len(older.held) == 0  # released, and judged: not taken for a repeat of itself
    assert older.seen["actor"].repeats == 0 and len(older.seen["actor"]) == 1


def test_two_different_events_with_one_id_and_time_are_held_apart_and_the_first_counts(
    config: EngineConfig,
) -> None:
    def event(target: str) -> dict:
        return {"event_id": "same", "kind": "REPLY", "actor": "a", "target": target, "ts": 1000,
                "in_reply_to": None, "conversation_id": None, "text": "hi", "urls": [],
                "platform": "t", "followers": None, "following": None, "posts": None}  # fmt: skip

    engine = ActorEngine(config, "by-actor", 0, sources=2)
    engine.process([Routed("actor", 0, 1000, [event("b")]), Routed("actor", 0, 1000, [event("c")])])
    assert len(engine.held) == 2  # events are never compared (dicts have no order)
    engine.process([Routed("actor", 1, END, []), Routed("actor", 0, END, [])])
    seen = engine.seen["actor"]
    assert len(engine.held) == 0 and seen.repeats == 1 and len(seen) == 1
