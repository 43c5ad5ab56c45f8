"""Messages already in Kafka: good events decoded and validated, everything else a dead
letter with its place and reason; and `rapport sql` stays read-only."""

from __future__ import annotations

import pytest

import schemas
from schemas import codec
from sinks.sql import bind, check_read_only
from streams.decode import decode_interactions
from streams.errors import RapportError

NOW = 1_700_000_000_000


def event(i: int, **changes: object) -> dict:
    base = {
        "event_id": f"e{i}",
        "kind": "REPLY",
        "actor": "a",
        "target": "b",
        "ts": NOW - i,
        "in_reply_to": None,
        "conversation_id": None,
        "text": "hi",
        "urls": [],
        "platform": "",
        "followers": None,
        "following": None,
        "posts": None,
    }
    return {**base, **changes}


def test_envelope_splits_good_and_bad_events() -> None:
    value = codec.encode_batch([event(1), event(2, ts=NOW + 3 * 86_400_000), event(3)])
    good, letters = decode_interactions(
        "t", 2, 40, value, schemas.kafka_headers(schemas.INTERACTION_BATCH), NOW
    )
    assert [e["event_id"] for e in good] == ["e1", "e3"]
    assert [(d["source"], d["line"], d["reason_code"]) for d in letters] == [
        ("t/2/40", 1, "ts_in_future")
    ]


@pytest.mark.parametrize(
    ("value", "headers", "code"),
    [
        (b"\x02", schemas.kafka_headers(schemas.INTERACTION), "truncated"),
        (b"abc", [], "wrong_header"),
        (b"abc", schemas.kafka_headers(schemas.INTERACTION, 7), "unknown_schema_version"),
        (None, schemas.kafka_headers(schemas.INTERACTION), "empty_value"),
    ],
)
def test_undecodable_messages_are_dead_letters(
    value: bytes | None, headers: list[tuple[str, bytes]], code: str
) -> None:
    good, letters = decode_interactions("t", 0, 5, value, headers, NOW)
    assert good == [] and len(letters) == 1
    assert letters[0]["reason_code"] == code and letters[0]["source"] == "t/0/5"
    assert letters[0]["reason"]


def test_a_snapshot_on_the_interactions_topic_is_refused() -> None:
    snap = {
        "snapshot_id": "s",
        "account": "a",
        "ts": NOW,
        "followers": 1,
        "following": 2,
        "posts": 3,
        "created_at": None,
        "platform": "",
    }
    value = codec.encode(snap, schemas.SNAPSHOT)
    _, letters = decode_interactions("t", 0, 1, value, schemas.kafka_headers(schemas.SNAPSHOT), NOW)
    assert letters[0]["reason_code"] == "wrong_header"


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1", " with x as (select 1) select * from x", "SHOW TABLES", "DESCRIBE t", "select 1;"],
)
def test_read_only_statements_pass(sql: str) -> None:
    check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE t",
        "INSERT INTO t VALUES (1)",
        "SELECT 1; DROP TABLE t",
        "",
        "ALTER TABLE t DELETE WHERE 1",
    ],
)
def test_writes_are_refused(sql: str) -> None:
    with pytest.raises(RapportError, match="read-only"):
        check_read_only(sql)


def test_parameters_are_literals_not_sql() -> None:
    sql = bind("SELECT %(a)s, %(b)s, %(c)s", {"a": "x' OR 1=1 --", "b": [1, 2], "c": None})
    assert sql == "SELECT 'x\\' OR 1=1 --', [1, 2], NULL"
