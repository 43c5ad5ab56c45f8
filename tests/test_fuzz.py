"""Bad input cannot stop the pipeline: property-based fuzzing of the worker's decode path.

Kafka message values and headers as an attacker or a broken producer would send them:
truncated and corrupted Avro, wrong or missing schema headers, weird version numbers, other
writers' schemas (wrong types, unknown fields), huge strings, NUL bytes, invalid UTF-8, absurd
timestamps and counts. ``streams.decode.decode_records`` (what the pipeline calls per message)
must never raise, and must account for every record: each is a valid record or a dead letter
with a reason code (or the whole message is one dead letter). The last test sends a few hundred
such messages, mixed with good ones, through a real worker: it keeps going, every good event is
stored, and the dead-letter topic holds exactly one letter per bad input.
"""

from __future__ import annotations

import copy
import random
import re
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from schemas import INTERACTION, INTERACTION_BATCH, SCHEMA_HEADER, SNAPSHOT, VERSION_HEADER, codec
from schemas.validate import (
    KINDS,
    MAX_AHEAD_MS,
    MAX_TEXT,
    MIN_TS_MS,
    NEEDS_TARGET,
    Rejection,
    validate_event,
    validate_snapshot,
)
from streams import kafka_clients
from streams.config import load_settings
from streams.decode import decode_records
from streams.topics import ensure_topics
from streams.worker import WorkerProcess
from tests.kafka_read import read_topic
from tests.test_spine import chdb_rows, worker_env

NOW = 1_700_000_000_000
LONG = 2**63
REASON_CODE = re.compile(r"[a-z][a-z0-9_]{2,40}")
FUZZ = settings(
    deadline=None,
    database=None,  # nothing written into the repository; a failure prints its reproduction
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Headers = list[tuple[Any, Any]] | dict[Any, Any] | None
Message = tuple[bytes | None, Headers]


# --- building blocks shared by the properties and the real-Kafka run


def event(event_id: str, **changes: Any) -> dict[str, Any]:
    base = {
        "event_id": event_id, "kind": "REPLY", "actor": "alice", "target": "bob",
        "ts": NOW - 60_000, "in_reply_to": None, "conversation_id": None, "text": "hi",
        "urls": [], "platform": "fuzz", "followers": None, "following": None, "posts": None,
    }  # fmt: skip
    return {**base, **changes}


def snapshot(snapshot_id: str, **changes: Any) -> dict[str, Any]:
    base = {
        "snapshot_id": snapshot_id, "account": "alice", "ts": NOW - 60_000, "followers": 10,
        "following": 20, "posts": 30, "created_at": None, "platform": "fuzz",
    }  # fmt: skip
    return {**base, **changes}


def envelope(events: list[dict[str, Any]], batch: bool) -> Message:
    """Events as the publisher sends them: one per message, or a batch envelope."""
    if batch:
        return codec.encode_batch(events), schemas.kafka_headers(INTERACTION_BATCH)
    return codec.encode(events[0]), schemas.kafka_headers(INTERACTION)


def damage(value: bytes, how: str, at: int, byte: int) -> bytes:
    """Byte-level damage at ``at`` (taken modulo the length): cut, overwrite, insert, append."""
    i = at % (len(value) + 1)
    if how == "truncate":
        return value[:i]
    if how == "overwrite":
        return value[:i] + bytes([byte]) + value[i + 1 :]
    if how == "insert":
        return value[:i] + bytes([byte]) + value[i:]
    if how == "append":
        return value + bytes([byte]) * (1 + at % 7)
    return value


DAMAGES = ("truncate", "overwrite", "insert", "append")
MARK = "\x7fMARK\x7f"  # an encoded placeholder whose bytes are swapped for raw junk


def poison(value: bytes, junk: bytes) -> bytes:
    """Swap the placeholder's bytes for ``junk`` of the same length (invalid UTF-8, NUL)."""
    mark = MARK.encode()
    return value.replace(mark, (junk * len(mark))[: len(mark)])


def _writer(name: str) -> dict[str, Any]:
    return copy.deepcopy(schemas.current_schema(name))


def foreign_write(records: list[dict[str, Any]], writer: dict[str, Any], batch: bool) -> bytes:
    """Records written with another schema (as a stranger's producer might), no validation."""
    fo = BytesIO()
    if batch:
        envelope_schema = {
            "type": "record", "name": "InteractionBatch", "namespace": "rapport",
            "fields": [{"name": "events", "type": {"type": "array", "items": writer}}],
        }  # fmt: skip
        schemaless_writer(fo, parse_schema(envelope_schema), {"events": records})
    else:
        schemaless_writer(fo, parse_schema(writer), records[0])
    return fo.getvalue()


# Avro types a wrong writer may use, each with values of that type.
longs = st.integers(-LONG, LONG - 1)
short_texts = st.text(max_size=5)
FOREIGN_TYPES: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "string": ("string", st.text(max_size=30)),
    "long": ("long", longs),
    "int": ("int", st.integers(-(2**31), 2**31 - 1)),
    "double": ("double", st.floats(allow_nan=True)),
    "boolean": ("boolean", st.booleans()),
    "bytes": ("bytes", st.binary(max_size=30)),
    "null": ("null", st.none()),
    "longs": ({"type": "array", "items": "long"}, st.lists(longs, max_size=4)),
    "map": ({"type": "map", "values": "string"}, st.dictionaries(short_texts, short_texts)),
    "optional_long": (["null", "long"], st.none() | longs),
}


def retype(writer: dict[str, Any], field: int, avro_type: Any, name: str | None = None) -> None:
    """Change a field's type in place, or insert an unknown field before it (``name``)."""
    fields = writer["fields"]
    i = field % (len(fields) + (name is not None))  # an unknown field may come last
    if name is None:
        fields[i] = {"name": fields[i]["name"], "type": avro_type}
    else:
        fields.insert(i, {"name": name, "type": avro_type})


# --- what every outcome must satisfy


def _good_event(e: dict[str, Any]) -> None:
    assert type(e["ts"]) is int and MIN_TS_MS <= e["ts"] <= NOW + MAX_AHEAD_MS
    for name in ("event_id", "actor"):
        assert type(e[name]) is str and e[name].strip() and "\x00" not in e[name]
    assert e["kind"] in KINDS and (e["target"] or e["kind"] not in NEEDS_TARGET)
    assert e["text"] is None or len(e["text"]) <= MAX_TEXT
    assert all(e[c] is None or 0 <= e[c] < LONG for c in ("followers", "following", "posts"))


def _good_snapshot(s: dict[str, Any]) -> None:
    assert type(s["ts"]) is int and MIN_TS_MS <= s["ts"] <= NOW + MAX_AHEAD_MS
    assert s["snapshot_id"].strip() and s["account"].strip() and "\x00" not in s["account"]
    assert all(0 <= s[c] < LONG for c in ("followers", "following", "posts"))


GOOD_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    INTERACTION: _good_event,
    SNAPSHOT: _good_snapshot,
}


def check(expected: str, value: bytes | None, headers: Headers) -> tuple[list[Any], list[Any]]:
    """Decode as the pipeline does; assert nothing raised and every record is accounted for."""
    good, letters = decode_records(expected, "in", 3, 77, value, headers, NOW)
    for letter in letters:
        assert REASON_CODE.fullmatch(letter["reason_code"]), letter
        assert letter["source"] == "in/3/77" and letter["reason"].strip()
        codec.encode(letter, schemas.DEAD_LETTER)  # the worker publishes it in Avro
    for record in good:
        GOOD_CHECKS[expected](record)
        codec.encode(record, expected)  # and re-publishes valid events (by-actor topic)
    try:
        name, records = codec.decode_message(value, headers)
    except codec.DecodeError:
        name, records = "", []
    if name != expected:  # undecodable, or another schema: the message is one dead letter
        assert good == [] and [letter["line"] for letter in letters] == [0]
    else:
        lines = [letter["line"] for letter in letters]
        assert len(good) + len(letters) == len(records)
        assert lines == sorted(set(lines)) and all(0 <= n < len(records) for n in lines)
    return good, letters


# --- strategies

texts = st.text(max_size=16)
huge = st.sampled_from([MAX_TEXT, MAX_TEXT + 1, 100_000]).map(lambda n: "x" * n)
ids = st.one_of(texts, st.sampled_from(["", " ", "\t", "a\x00b", MARK]), huge)
timestamps = st.one_of(
    longs,
    st.sampled_from([0, -1, MIN_TS_MS - 1, MIN_TS_MS, NOW, NOW + MAX_AHEAD_MS,
                     NOW + MAX_AHEAD_MS + 1, LONG - 1, -LONG, NOW // 1000]),
)  # fmt: skip
counts = st.none() | longs
junk = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xfe\xff", b"\x80"])


optional_ids = st.none() | ids
hostile_events = st.builds(
    event,
    ids,
    kind=st.sampled_from(sorted(KINDS)),
    actor=ids,
    target=optional_ids,
    ts=timestamps,
    in_reply_to=optional_ids,
    conversation_id=st.none() | texts,
    text=st.none() | texts | huge | st.just(MARK),
    urls=st.lists(texts | st.just(MARK), max_size=3),
    platform=texts,
    followers=counts,
    following=counts,
    posts=counts,
    unknown_field=texts,  # not in the schema: the writer leaves it out
)
hostile_snapshots = st.builds(
    snapshot,
    ids,
    account=ids,
    ts=timestamps,
    followers=longs,
    following=longs,
    posts=longs,
    created_at=counts,
    platform=texts,
)


header_keys = st.sampled_from(
    [SCHEMA_HEADER, VERSION_HEADER, SCHEMA_HEADER.encode(), VERSION_HEADER.encode(),
     "rapport-control", "x-other"]
)  # fmt: skip
header_values = st.one_of(
    st.none(),
    st.binary(max_size=12),
    st.sampled_from([*schemas.CURRENT, "Interaction", "interaction ", "", "0", "1", "2", "-1",
                     "1.0", "01", " 1", "²", "١", "Ⅻ", "9" * 5000]).map(str.encode),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=4).map(
        str.encode
    ),
    st.integers(-10, 10**20).map(lambda v: str(v).encode()),
)  # fmt: skip
right_headers = st.sampled_from(
    [schemas.kafka_headers(name) for name in schemas.CURRENT]
    + [dict(schemas.kafka_headers(INTERACTION_BATCH))]  # Faust may hand over a mapping
)
any_headers = st.one_of(
    st.none(), right_headers, st.lists(st.tuples(header_keys, header_values), max_size=5)
)


@st.composite
def damaged(draw: st.DrawFn, value: bytes) -> bytes:
    how = draw(st.sampled_from(("none", *DAMAGES)))
    return damage(value, how, draw(st.integers(0, 10_000)), draw(st.integers(0, 255)))


encodings = st.one_of(
    st.binary(max_size=400),
    st.builds(envelope, st.lists(hostile_events, min_size=1, max_size=3), st.booleans()).map(
        lambda message: message[0]
    ),
    hostile_snapshots.map(lambda snap: codec.encode(snap, SNAPSHOT)),
)


# --- the properties: 2,400 + 2,000 + 1,800 + 2,600 + 1,200 = 10,000 cases


@settings(FUZZ, max_examples=2_400)
@given(
    expected=st.sampled_from([INTERACTION, SNAPSHOT]),
    value=st.none() | encodings.flatmap(damaged),
    headers=any_headers,
)
def test_any_bytes_under_any_headers(expected: str, value: bytes | None, headers: Headers) -> None:
    check(expected, value, headers)


@settings(FUZZ, max_examples=2_000)
@given(
    events=st.lists(hostile_events, min_size=1, max_size=3),
    batch=st.booleans(),
    data=st.data(),
    poison_with=junk,
)
def test_hostile_events_in_valid_envelopes(
    events: list[dict[str, Any]], batch: bool, data: st.DataObject, poison_with: bytes
) -> None:
    value, headers = envelope(events, batch)
    good, letters = check(INTERACTION, value, headers)
    assert len(good) + len(letters) == (len(events) if batch else 1)  # nothing lost or made up
    check(INTERACTION, data.draw(damaged(poison(value, poison_with))), headers)


@settings(FUZZ, max_examples=1_800)
@given(
    base=hostile_events,
    field=st.integers(0, 20),
    foreign=st.sampled_from(sorted(FOREIGN_TYPES)),
    unknown=st.none() | st.just("unknown_field"),
    batch=st.booleans(),
    data=st.data(),
)
def test_records_written_with_a_strangers_schema(
    base: dict[str, Any], field: int, foreign: str, unknown: str | None, batch: bool,
    data: st.DataObject,
) -> None:  # fmt: skip
    writer = _writer(INTERACTION)
    avro_type, values = FOREIGN_TYPES[foreign]
    name = unknown or writer["fields"][field % len(writer["fields"])]["name"]
    retype(writer, field, avro_type, unknown)
    record = {**base, name: data.draw(values)}
    headers = schemas.kafka_headers(INTERACTION_BATCH if batch else INTERACTION)
    check(
        INTERACTION, foreign_write([record, record] if batch else [record], writer, batch), headers
    )


@settings(FUZZ, max_examples=2_600)
@given(snap=hostile_snapshots, data=st.data())
def test_hostile_snapshots(snap: dict[str, Any], data: st.DataObject) -> None:
    value = codec.encode(snap, SNAPSHOT)
    good, letters = check(SNAPSHOT, value, schemas.kafka_headers(SNAPSHOT))
    assert len(good) + len(letters) == 1
    check(SNAPSHOT, data.draw(damaged(value)), schemas.kafka_headers(SNAPSHOT))


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.binary(max_size=10) | huge | timestamps,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_texts, inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
field_names = st.sampled_from(
    sorted({*schemas.field_names(INTERACTION), *schemas.field_names(SNAPSHOT), "extra"})
)


@settings(FUZZ, max_examples=1_200)
@given(
    changes=st.dictionaries(field_names, anything, max_size=6),
    drop=st.lists(field_names, max_size=3),
)
def test_validation_of_any_values(changes: dict[str, Any], drop: list[str]) -> None:
    """What other readers (importers, a future schema version) may hand to validation."""
    for validate, record, accept in (
        (validate_event, {**event("e"), **changes}, _good_event),
        (validate_snapshot, {**snapshot("s"), **changes}, _good_snapshot),
    ):
        for name in drop:
            record.pop(name, None)
        result = validate(record, NOW)
        if isinstance(result, Rejection):
            assert REASON_CODE.fullmatch(result.reason_code) and result.reason
        else:
            accept(result)


# --- the real thing: a worker on Kafka and chDB, bad messages mixed with good ones


def good_event(event_id: str, **changes: Any) -> dict[str, Any]:
    accounts = {"actor": f"a{len(event_id) % 7}", "target": f"t{len(event_id) % 5}"}
    return event(event_id, **{**accounts, **changes})


INVALID_CHANGES: list[dict[str, Any]] = [
    {"ts": 0}, {"ts": LONG - 1}, {"ts": NOW // 1000}, {"actor": "a\x00b"}, {"text": "y" * 200_000},
    {"event_id": " "}, {"target": None, "kind": "LIKE"}, {"followers": -5},
]  # fmt: skip
FOREIGN_FIELDS: list[tuple[Any, Any]] = [
    ("string", "s"), ("double", 1.5), ("boolean", True), ({"type": "array", "items": "long"}, [1]),
]  # fmt: skip
BAD_HEADERS: list[list[tuple[str, bytes]]] = [
    [],  # none
    [(SCHEMA_HEADER, b"interaction-batch")],  # no version
    [(SCHEMA_HEADER, b"interaction-batch"), (VERSION_HEADER, "²".encode())],
    [(SCHEMA_HEADER, b"interaction-batch"), (VERSION_HEADER, b"9" * 5000)],
    schemas.kafka_headers(SNAPSHOT),  # another schema on this topic
]


def bad_message(rng: random.Random, n: int) -> Message:
    """One bad input of a kind ``rng`` picks; each makes exactly one dead letter."""
    kind = rng.randrange(5)
    if kind == 0:  # one invalid event among valid ones in an envelope
        events = [good_event(f"mixed-{n}-{i}") for i in range(rng.randrange(4))]
        events.insert(
            rng.randrange(len(events) + 1),
            {**good_event(f"bad-{n}"), **rng.choice(INVALID_CHANGES)},
        )
        return envelope(events, batch=True)
    if kind == 1:  # cut short
        value, headers = envelope([good_event(f"cut-{n}")], batch=rng.random() < 0.5)
        return value[: rng.randrange(len(value))], headers
    if kind == 2:  # raw junk in a string
        value, headers = envelope([good_event(f"junk-{n}", text=MARK)], batch=False)
        return poison(value, rng.choice([b"\xff", b"\xed\xa0\x80", b"\x00"])), headers
    if kind == 3:  # a stranger's schema: an unknown field after the known ones, or a wrong type
        writer = _writer(INTERACTION)
        avro_type, example = rng.choice(FOREIGN_FIELDS)
        if rng.random() < 0.5:
            retype(writer, len(writer["fields"]), avro_type, "unknown_field")
            record = {**good_event(f"stranger-{n}"), "unknown_field": example}
        else:
            retype(writer, 4, "string")  # ts
            record = good_event(f"stranger-{n}", ts=rng.choice(["yesterday", "1700000000000"]))
        return foreign_write([record], writer, batch=False), schemas.kafka_headers(INTERACTION)
    value = envelope([good_event(f"headers-{n}")], batch=True)[0]
    return value, rng.choice(BAD_HEADERS)


def test_worker_survives_bad_messages(kafka_bootstrap: str, run_id: str, tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'chdb'}"
    env = worker_env(kafka_bootstrap, url, run_id, tmp_path / "var")
    config = load_settings(env=env, cwd=tmp_path)
    ensure_topics(config)
    rng = random.Random(20240611)
    messages = [bad_message(rng, n) for n in range(300)]
    messages += [envelope([good_event(f"good-{m}-{i}") for i in range(5)], True) for m in range(40)]
    now = time.time_ns() // 1_000_000
    edges = [  # valid, if odd: they must be stored like any other
        good_event("edge-2000", ts=MIN_TS_MS),
        good_event("edge-almost-tomorrow", ts=now + MAX_AHEAD_MS - 60_000),
        good_event("edge-text", text="é" * MAX_TEXT, urls=["https://x.example/🙂"] * 20),
        good_event("edge-counts", followers=LONG - 1, following=0, posts=LONG - 1),
        good_event("edge-🙂", actor="ünï\u200bcode", target="🙂", kind="MENTION"),
    ]
    messages.append(envelope(edges, batch=True))
    rng.shuffle(messages)
    topic = config.topic("interactions")
    good_ids: set[str] = set()
    bad = 0
    producer = kafka_clients.producer(config, acks="all", max_request_size=2**21)
    for i, (value, headers) in enumerate(messages):  # expected: what the worker's decode says
        good, letters = decode_records(INTERACTION, topic, 0, i, value, headers, now)
        good_ids |= {e["event_id"] for e in good}
        bad += len(letters)
        producer.send(topic, value=value, headers=list(headers or []), partition=i % 4)
    producer.flush()
    producer.close()
    assert bad == 300 and len(good_ids) > 200

    log = tmp_path / "worker.log"
    worker = WorkerProcess(config, env, log).start()
    try:
        worker.wait_drained([topic], timeout=120)
        assert worker.alive()
    finally:
        assert worker.stop() == 0, log.read_text()[-3000:]
    stored = chdb_rows(url, "SELECT event_id FROM rapport.interactions FINAL")
    assert {str(r[0]) for r in stored} == good_ids
    assert chdb_rows(url, "SELECT count() FROM rapport.dead_letters FINAL") == [[bad]]
    assert len(read_topic(config, config.topic("dead-letters"))) == bad
