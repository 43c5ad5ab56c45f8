"""The by-actor message format: what the first stage writes, the second reads back."""

from __future__ import annotations

import pytest

import schemas
from schemas import codec
from streams.agents import by_actor
from streams.core.actors import NO_NEWS, partition_of


def event(i: int, actor: str, urls: list[str]) -> dict:
    return {"event_id": f"e{i}", "kind": "REPLY", "actor": actor, "target": f"t{i}",
            "ts": 1_700_000_000_000 + i, "in_reply_to": None, "conversation_id": None,
            "text": "x", "urls": urls, "platform": "test", "followers": None,
            "following": None, "posts": None}  # fmt: skip


def test_every_partition_hears_the_watermark_and_events_come_back_whole() -> None:
    events = [event(1, "alice", ["https://Shop.example/a?utm_source=x"]), event(2, "bob", [])]
    messages = list(by_actor.encode(3, events, 1_700_000_000_002, 4))
    assert sorted({q for q, _, _ in messages}) == [0, 1, 2, 3]
    back = [(q, by_actor.decode(value, headers)) for q, value, headers in messages]
    assert all(r.source == 3 and r.watermark == 1_700_000_000_002 for _, r in back)
    actor_routed = {e["event_id"]: q for q, r in back if r.route == "actor" for e in r.events}
    assert actor_routed == {"e1": partition_of("alice", 4), "e2": partition_of("bob", 4)}
    linked = [e for _, r in back if r.route == "link" for e in r.events]
    assert [(e["event_id"], e["urls"]) for e in linked] == [("e1", events[0]["urls"])]
    assert linked[0] == events[0]  # the event itself, not a summary


def test_a_source_with_nothing_new_still_moves_every_partition_on() -> None:
    messages = list(by_actor.encode(0, [], 5, 2))
    assert [(q, by_actor.decode(v, h).events, by_actor.decode(v, h).watermark)
            for q, v, h in messages] == [(0, [], 5), (1, [], 5)]  # fmt: skip


def test_a_partition_hears_the_watermark_once_all_its_events_of_the_batch_are_there() -> None:
    events = [event(1, "alice", ["https://Shop.example/a?utm_source=x"]), event(2, "bob", [])]
    messages = [(q, by_actor.decode(v, h)) for q, v, h in by_actor.encode(0, events, 9, 1)]
    assert [(q, r.route, [e["event_id"] for e in r.events], r.watermark)
            for q, r in messages] == [(0, "actor", ["e1", "e2"], NO_NEWS),
                                      (0, "link", ["e1"], 9)]  # fmt: skip


def test_a_big_batch_is_cut_into_messages_kafka_takes_in_order_watermark_on_the_last() -> None:
    events = [dict(event(i, "alice", ["https://shop.example/a"] if i % 3 == 0 else []),
                   text="t" * 900) for i in range(2000)]  # fmt: skip
    messages = list(by_actor.encode(1, events, 77, 1))
    assert len(messages) > 3 and all(len(v) <= by_actor.MAX_BYTES for _, v, _ in messages)
    back = [by_actor.decode(v, h) for _, v, h in messages]
    assert [r.watermark for r in back] == [NO_NEWS] * (len(back) - 1) + [77]
    for route, expected in (("actor", events), ("link", events[::3])):
        got = [e for r in back if r.route == route for e in r.events]
        assert got == expected


def test_messages_of_an_older_worker_in_avro_are_still_read() -> None:
    events = [event(1, "alice", ["https://a.example/x"])]
    headers = [*schemas.kafka_headers(schemas.INTERACTION_BATCH), (by_actor.ROUTE, b"link"),
               (by_actor.SOURCE, b"2"), (by_actor.WATERMARK, b"7")]  # fmt: skip
    routed = by_actor.decode(codec.encode_batch(events), headers)
    assert routed == ("link", 2, 7, events)


@pytest.mark.parametrize("value, headers", [
    (b"\xc1", [(schemas.SCHEMA_HEADER, by_actor.FORMAT), (by_actor.SOURCE, b"0"),
                (by_actor.WATERMARK, b"1")]),  # not MessagePack
    (b"\x91\x01", [(schemas.SCHEMA_HEADER, by_actor.FORMAT), (by_actor.SOURCE, b"0"),
                    (by_actor.WATERMARK, b"1")]),  # a list, but not of events
    (b"\x90", [(schemas.SCHEMA_HEADER, by_actor.FORMAT), (by_actor.SOURCE, b"zero"),
               (by_actor.WATERMARK, b"1")]),  # a bad header
])  # fmt: skip
def test_a_foreign_message_is_a_decode_error_for_the_dead_letters(
    value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    with pytest.raises(codec.DecodeError) as caught:
        by_actor.decode(value, headers)
    assert caught.value.reason_code == "bad_internal"
