"""The event contract: schemas and their history, the codec, interop, validation."""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import fastavro
import fastavro.utils
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from schemas import codec
from schemas.codec import DecodeError, EncodeError
from schemas.validate import (
    MAX_TEXT,
    MIN_TS_MS,
    Rejection,
    dead_letter,
    validate_event,
    validate_snapshot,
)

NOW = 1_700_000_000_000  # 2023-11-14

EVENT: dict[str, Any] = {
    "event_id": "e1", "kind": "REPLY", "actor": "alice", "target": "bob", "ts": 1_520_874_045_567,
    "in_reply_to": "e0", "conversation_id": "e0", "text": "héllo ✓", "urls": ["https://x.y/a"],
    "platform": "twitter", "followers": 10, "following": 700, "posts": 3,
}
MINIMAL = {"event_id": "e2", "kind": "POST", "actor": "carol", "ts": 1_520_874_045_000}
SNAPSHOT = {
    "snapshot_id": "s1", "account": "alice", "ts": NOW, "followers": 5, "following": 900,
    "posts": 40, "created_at": 1_175_857_102_000, "platform": "twitter",
}
ALERT = {
    "alert_id": "R1:alice:1520870400000", "rule": "R1", "actor": "alice", "severity": "HIGH",
    "window_start": 1_520_870_400_000, "window_end": 1_520_874_000_000,
    "evidence": {"counts": {"targets": 12, "new_targets": 11}, "sample_event_ids": ["e1", "e2"],
                 "url": "https://spam.example/x", "text_sample": None, "detail": "12 targets"},
    "first_seen": 1_520_870_500_000, "last_seen": 1_520_873_900_000,
}
DEAD = {
    "source": "interactions/0/42", "line": None, "reason_code": "bad_avro", "reason": "garbage",
    "raw": b"\x00\xff", "raw_size": 2, "schema": "interaction", "ts": NOW,
}
SAMPLES = {"interaction": EVENT, "snapshot": SNAPSHOT, "alert": ALERT, "dead-letter": DEAD,
           "interaction-batch": {"events": [EVENT, EVENT | {"event_id": "e9"}]}}


def full(event: dict[str, Any]) -> dict[str, Any]:
    """An event with every schema default filled, as the codec returns it."""
    defaults = {f["name"]: f.get("default") for f in schemas.schema("interaction")["fields"]}
    return defaults | event


# --- schemas and their history --------------------------------------------------------------

def test_headers_name_schema_and_version() -> None:
    assert schemas.kafka_headers("interaction") == [
        ("rapport-schema", b"interaction"), ("rapport-schema-version", b"1")
    ]
    assert schemas.kafka_headers("interaction-batch", 1)[0] == ("rapport-schema",
                                                                 b"interaction-batch")
    assert set(schemas.CURRENT) == {
        "interaction", "interaction-batch", "snapshot", "alert", "dead-letter"
    }


@pytest.mark.parametrize("name", list(schemas.CURRENT))
def test_current_schema_is_its_published_version(name: str) -> None:
    current, published = schemas.current_schema(name), schemas.schema(name)
    assert current == published, (
        f"{name}.avsc differs from history version {schemas.CURRENT[name]}: published versions "
        f"are immutable; bump CURRENT[{name!r}] and run schemas.publish({name!r})"
    )
    assert schemas.CURRENT[name] == max(schemas.versions(name))


@pytest.mark.parametrize("name,version", list(schemas.all_versions()))
def test_current_schema_reads_every_published_version(name: str, version: int) -> None:
    """Backward compatibility: data written by any historical version decodes into the
    current shape. Fails as soon as a schema change breaks an old writer."""
    writer = schemas.schema(name, version)
    reader_fields = {f["name"] for f in schemas.schema(name)["fields"]}
    random.seed(f"{name}{version}")
    for record in fastavro.utils.generate_many(writer, 50):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(writer), record)
        decoded = codec.decode(buf.getvalue(), name, version)
        assert set(decoded) == reader_fields
        if version == schemas.CURRENT[name]:
            assert decoded == record
        for field in reader_fields & set(record):
            if not isinstance(record[field], (dict, list)):  # nested ones may have changed
                assert decoded[field] == record[field]


def test_schema_name_errors() -> None:
    with pytest.raises(KeyError):
        schemas.schema("nope")
    with pytest.raises(KeyError):
        schemas.schema("interaction", 99)
    with pytest.raises(FileExistsError):
        schemas.publish("interaction")


@pytest.fixture
def older_interaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """A history where interaction v1 is a hand-made smaller schema and v2 is today's."""
    old = {
        "type": "record", "name": "Interaction", "namespace": "rapport",
        "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "kind", "type": {"type": "enum", "name": "Kind",
                                      "symbols": ["POST", "REPLY", "MENTION"]}},
            {"name": "actor", "type": "string"},
            {"name": "target", "type": ["null", "string"], "default": None},
            {"name": "ts", "type": "long"},
            {"name": "score", "type": "int"},  # dropped since
        ],
    }
    history = tmp_path / "history"
    history.mkdir()
    for path in schemas.HISTORY.glob("*.avsc"):
        (history / path.name).write_bytes(path.read_bytes())
    (history / "interaction.v1.avsc").write_text(json.dumps(old))
    (history / "interaction.v2.avsc").write_text(json.dumps(schemas.current_schema("interaction")))
    monkeypatch.setattr(schemas, "HISTORY", history)
    monkeypatch.setitem(schemas.CURRENT, "interaction", 2)
    for cached in (schemas._published, codec._parsed, codec._resolve):
        cached.cache_clear()
    yield old
    for cached in (schemas._published, codec._parsed, codec._resolve):
        cached.cache_clear()


def test_older_version_resolves_into_current(older_interaction: dict[str, Any]) -> None:
    buf = io.BytesIO()
    record = {"event_id": "old1", "kind": "MENTION", "actor": "a", "target": "b",
              "ts": 1_520_874_045_567, "score": 7}
    fastavro.schemaless_writer(buf, fastavro.parse_schema(older_interaction), record)
    name, records = codec.decode_message(buf.getvalue(), schemas.kafka_headers("interaction", 1))
    assert name == "interaction"
    assert records == [full({k: v for k, v in record.items() if k != "score"})]
    assert validate_event(records[0], NOW) == records[0]
    # and today's writer still round-trips as v2
    assert codec.decode_message(codec.encode(EVENT), schemas.kafka_headers("interaction"))[1] == [
        EVENT
    ]


# --- codec --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["interaction", "snapshot", "alert", "dead-letter"])
def test_round_trip_single(name: str) -> None:
    record = SAMPLES[name]
    value = codec.encode(record, name)
    assert codec.decode(value, name) == record
    assert codec.decode_message(value, schemas.kafka_headers(name)) == (name, [record])


def test_round_trip_minimal_event_fills_defaults() -> None:
    assert codec.decode(codec.encode(MINIMAL)) == full(MINIMAL)


def test_round_trip_envelope() -> None:
    events = [EVENT | {"event_id": f"e{i}", "ts": EVENT["ts"] + i} for i in range(500)]
    value = codec.encode_batch(events)
    assert codec.decode_batch(value) == events
    assert codec.decode_message(value, schemas.kafka_headers("interaction-batch")) == (
        "interaction", events
    )
    assert len(value) < sum(len(codec.encode(e)) for e in events) + 10


def test_decode_messages_keeps_going_past_bad_ones() -> None:
    good = codec.encode(EVENT)
    headers = schemas.kafka_headers("interaction")
    results = codec.decode_messages([
        (good, headers),
        (good[:-3], headers),
        (good, None),
        (codec.encode_batch([EVENT, MINIMAL]), dict(schemas.kafka_headers("interaction-batch"))),
    ])
    assert results[0] == ("interaction", [EVENT])
    assert isinstance(results[1], DecodeError) and results[1].reason_code == "truncated"
    assert isinstance(results[2], DecodeError) and results[2].reason_code == "wrong_header"
    assert results[3] == ("interaction", [EVENT, full(MINIMAL)])


@pytest.mark.parametrize(
    "headers,code",
    [
        (None, "wrong_header"),
        ([], "wrong_header"),
        ([("rapport-schema", b"interaction")], "wrong_header"),
        ([("rapport-schema", b"interaction"), ("rapport-schema-version", b"one")],
         "wrong_header"),
        ([("rapport-schema", b"tweet"), ("rapport-schema-version", b"1")], "unknown_schema"),
        ([("rapport-schema", b"interaction"), ("rapport-schema-version", b"2")],
         "unknown_schema_version"),
    ],
)
def test_header_errors(headers: Any, code: str) -> None:
    with pytest.raises(DecodeError) as err:
        codec.decode_message(codec.encode(EVENT), headers)
    assert err.value.reason_code == code


def test_headers_in_any_client_shape() -> None:
    value = codec.encode(EVENT)
    for headers in (
        [("rapport-schema", b"interaction"), ("rapport-schema-version", b"1")],
        [(b"rapport-schema", "interaction"), (b"rapport-schema-version", "1")],
        {"rapport-schema": b"interaction", "rapport-schema-version": b"1", "other": b"x"},
    ):
        assert codec.decode_message(value, headers) == ("interaction", [EVENT])


@pytest.mark.parametrize(
    "mangle,code",
    [
        (lambda v: v[:7], "truncated"),
        (lambda v: v + b"\x00", "bad_avro"),
        (lambda v: b"", "empty_value"),
        (lambda v: b"\x04\xff\xfe" + v[3:], "invalid_utf8"),  # event_id "\xff\xfe..."
        (lambda v: v[:3] + b"\x40" + v[4:], "bad_avro"),  # kind number 32 of 9
        (lambda v: b"\xff" * 20, "truncated"),  # a length that never ends
    ],
)
def test_decode_errors_have_reason_codes(mangle: Any, code: str) -> None:
    with pytest.raises(DecodeError) as err:
        codec.decode(mangle(codec.encode(EVENT)))
    assert err.value.reason_code == code
    assert str(err.value)


def test_unknown_version_and_schema() -> None:
    with pytest.raises(DecodeError) as err:
        codec.decode(codec.encode(EVENT), "interaction", 7)
    assert err.value.reason_code == "unknown_schema_version"
    with pytest.raises(DecodeError) as err:
        codec.decode(codec.encode(EVENT), "tweet")
    assert err.value.reason_code == "unknown_schema"


def test_encode_errors() -> None:
    with pytest.raises(EncodeError) as err:
        codec.encode({"event_id": "x"})
    assert err.value.reason_code == "bad_record"
    with pytest.raises(EncodeError):
        codec.encode(EVENT | {"kind": "POKE"})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=300))
def test_garbage_only_ever_raises_decode_error(noise: bytes, cut: int) -> None:
    """Random bytes and damaged records: a record or a DecodeError, never anything else."""
    value = codec.encode(EVENT)
    for candidate in (noise, value[:cut] + noise, noise + value):
        try:
            codec.decode(candidate)
            codec.decode_batch(candidate)
        except DecodeError:
            pass


# --- interop with avro-python3 ---------------------------------------------------------------

def _apache(name: str) -> Any:
    return avro.schema.parse(json.dumps(schemas.schema(name)))


@pytest.mark.parametrize("name", list(schemas.CURRENT))
def test_avro_python3_writes_rapport_reads(name: str) -> None:
    buf = io.BytesIO()
    avro.io.DatumWriter(_apache(name)).write(SAMPLES[name], avro.io.BinaryEncoder(buf))
    assert codec.decode(buf.getvalue(), name) == SAMPLES[name]


@pytest.mark.parametrize("name", list(schemas.CURRENT))
def test_rapport_writes_avro_python3_reads(name: str) -> None:
    value = codec.encode(SAMPLES[name], name)
    reader = avro.io.DatumReader(_apache(name))
    assert reader.read(avro.io.BinaryDecoder(io.BytesIO(value))) == SAMPLES[name]


# --- validation ---------------------------------------------------------------------------------

def test_valid_event_is_normalised() -> None:
    assert validate_event(EVENT, NOW) == EVENT
    out = validate_event(MINIMAL | {"kind": "post", "text": "", "extra": 1}, NOW)
    assert out == full(MINIMAL)
    assert isinstance(out, dict) and tuple(out) == schemas.field_names("interaction")
    assert validate_event(EVENT | {"target": "alice"}, NOW) == EVENT | {"target": "alice"}


def reason(event: dict[str, Any], **kwargs: Any) -> str:
    result = validate_event(event, NOW, **kwargs)
    assert isinstance(result, Rejection), result
    assert result.reason
    return result.reason_code


EVENT_CASES = {
    "missing_field": [{k: v for k, v in EVENT.items() if k != "actor"}, EVENT | {"ts": None}],
    "wrong_type": [
        EVENT | {"ts": "2018-03-12"}, EVENT | {"ts": 1.5e12}, EVENT | {"ts": True},
        EVENT | {"event_id": 5}, EVENT | {"kind": 3}, EVENT | {"target": 0},
        EVENT | {"text": ["x"]}, EVENT | {"urls": "https://x"}, EVENT | {"urls": [1]},
        EVENT | {"platform": 1}, EVENT | {"followers": "10"}, EVENT | {"posts": 2**63},
    ],
    "empty_field": [EVENT | {"actor": ""}, EVENT | {"event_id": "  "}],
    "bad_kind": [EVENT | {"kind": "POKE"}],
    "ts_too_old": [EVENT | {"ts": MIN_TS_MS - 1}, EVENT | {"ts": 1_520_874_045}],
    "ts_in_future": [EVENT | {"ts": NOW + 86_400_001}],
    "text_too_long": [EVENT | {"text": "x" * (MAX_TEXT + 1)}],
    "invalid_utf8": [EVENT | {"text": "a\ud800b"}, EVENT | {"urls": ["ok", "\udcff"]},
                     EVENT | {"actor": "\ud800"}],
    "nul_byte": [EVENT | {"text": "a\x00b"}, EVENT | {"target": "b\x00"},
                 EVENT | {"event_id": "e\x00"}],
    "missing_target": [EVENT | {"target": None}, EVENT | {"kind": "FOLLOW", "target": ""}],
    "negative_count": [EVENT | {"followers": -1}],
}


@pytest.mark.parametrize(
    "code,event", [(code, e) for code, events in EVENT_CASES.items() for e in events]
)
def test_event_rejections(code: str, event: dict[str, Any]) -> None:
    assert reason(event) == code


def test_limits_are_inclusive_and_configurable() -> None:
    assert isinstance(validate_event(EVENT | {"text": "x" * MAX_TEXT}, NOW), dict)
    assert isinstance(validate_event(EVENT | {"ts": MIN_TS_MS}, NOW), dict)
    assert isinstance(validate_event(EVENT | {"ts": NOW + 86_400_000}, NOW), dict)
    assert reason(EVENT | {"text": "x" * 11}, max_text=10) == "text_too_long"


SNAPSHOT_CASES = {
    "missing_field": [{k: v for k, v in SNAPSHOT.items() if k != "followers"}],
    "wrong_type": [SNAPSHOT | {"following": "9"}, SNAPSHOT | {"created_at": "2007"},
                   SNAPSHOT | {"platform": 3}],
    "empty_field": [SNAPSHOT | {"account": ""}],
    "negative_count": [SNAPSHOT | {"posts": -2}],
    "ts_too_old": [SNAPSHOT | {"ts": 5}, SNAPSHOT | {"created_at": -1}],
    "ts_in_future": [SNAPSHOT | {"ts": NOW + 2 * 86_400_000},
                     SNAPSHOT | {"created_at": NOW + 2 * 86_400_000}],
    "invalid_utf8": [SNAPSHOT | {"platform": "\ud800"}],
    "nul_byte": [SNAPSHOT | {"account": "a\x00"}],
}


@pytest.mark.parametrize(
    "code,snapshot", [(code, s) for code, snaps in SNAPSHOT_CASES.items() for s in snaps]
)
def test_snapshot_rejections(code: str, snapshot: dict[str, Any]) -> None:
    result = validate_snapshot(snapshot, NOW)
    assert isinstance(result, Rejection) and result.reason_code == code, result


def test_valid_snapshot() -> None:
    assert validate_snapshot(SNAPSHOT, NOW) == SNAPSHOT
    bare = {k: v for k, v in SNAPSHOT.items() if k not in ("created_at", "platform")}
    assert validate_snapshot(bare, NOW) == bare | {"created_at": None, "platform": ""}


def test_every_reason_code_in_validate_has_a_test() -> None:
    source = Path(schemas.__file__).with_name("validate.py").read_text()
    codes = set(re.findall(r'Rejection\(\s*"([a-z_0-9]+)"', source))
    codes.add("wrong_type")  # built by _wrong()
    assert codes == set(EVENT_CASES) | set(SNAPSHOT_CASES)


def test_dead_letter_truncates_and_encodes() -> None:
    letter = dead_letter("f.jsonl", 3, Rejection("malformed_line", "not JSON"), b"x" * 100,
                         "interaction", NOW, raw_limit=10)
    assert letter["raw"] == b"x" * 10 and letter["raw_size"] == 100
    assert codec.decode(codec.encode(letter, "dead-letter"), "dead-letter") == letter
