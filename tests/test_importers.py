"""Importers on the real data sets and on generated broken input."""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import fastavro
import pytest

import schemas
from schemas import codec
from streams.errors import RapportError
from streams.importers import (
    FORMATS,
    ImportRun,
    Rejected,
    csvfile,
    higgs,
    read,
    snap,
    snapshots,
    stackexchange,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared: required, never skipped
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOW = 1_700_000_000_000  # 2023-11-14
COLLEGE = DATA / "CollegeMsg" / "CollegeMsg.txt"
SE = DATA / "stackexchange-quantumcomputing"
BAS = DATA / "cresci-2015-bas-users" / "bas_users.csv"


def split(run: ImportRun) -> tuple[list[dict[str, Any]], list[Rejected]]:
    good, bad = [], []
    for item in run:
        (bad if isinstance(item, Rejected) else good).append(item)
    assert run.stats.accounted() == run.stats.rows
    return good, bad  # type: ignore[return-value]


# --- SNAP -----------------------------------------------------------------------------------

def test_collegemsg_gives_every_event_with_stable_ids() -> None:
    first, bad = split(snap.read(COLLEGE, now_ms=NOW))
    assert len(first) == 59_835 and bad == []
    assert all(e["kind"] == "MESSAGE" for e in first)
    ids = [e["event_id"] for e in first]
    assert len(set(ids)) == len(ids)
    assert ids == [e["event_id"] for e in snap.read(COLLEGE, now_ms=NOW)]
    assert len({e["actor"] for e in first} | {e["target"] for e in first}) == 1_899
    assert first[0] == validate_shape(first[0])
    assert first[0]["ts"] == 1_082_040_961_000 and first[0]["event_id"] == "snap:CollegeMsg.txt:1"


def validate_shape(event: dict[str, Any]) -> dict[str, Any]:
    """An importer's event is exactly what the codec round-trips."""
    return codec.decode(codec.encode(event))


def test_relative_seconds_need_an_offset() -> None:
    path = DATA / "email-Eu-core-temporal-Dept3" / "email-Eu-core-temporal-Dept3.txt"
    run = snap.read(path, now_ms=NOW)
    list(run)
    assert run.stats.rejected == Counter({"ts_too_old": 12_216})
    good, bad = split(snap.read(path, offset_s=1_064_966_400, kind="mention", now_ms=NOW))
    assert len(good) == 12_216 and not bad and good[0]["kind"] == "MENTION"


def test_snap_bad_lines_become_rejections(tmp_path: Path) -> None:
    path = tmp_path / "edges.txt"
    path.write_bytes(
        b"# FromNodeId ToNodeId Timestamp\n"
        b"1 2 1082040961\n"
        b"\n"
        b"1 2\n"
        b"1 2 soon\n"
        b"\xff 2 1082040961\n"
        b"3 4 1082040962 extra\n"
        b"5 6 99\r\n"
        b"7 8 1082040963\r\n"
    )
    good, bad = split(snap.read(path, platform="college", now_ms=NOW))
    assert [(e["event_id"], e["platform"]) for e in good] == [
        ("snap:edges.txt:2", "college"), ("snap:edges.txt:9", "college")
    ]
    assert [(r.line, r.reason_code) for r in bad] == [
        (4, "malformed_line"), (5, "wrong_type"), (6, "invalid_utf8"), (7, "malformed_line"),
        (8, "ts_too_old"),
    ]
    assert bad[2].raw == b"\xff 2 1082040961\n"
    with pytest.raises(RapportError):
        snap.read(path, kind="POKE")


# --- Higgs ----------------------------------------------------------------------------------

def test_higgs_reply_and_its_mention_are_one_event() -> None:
    good, bad = split(higgs.read(FIXTURES / "higgs_sample.txt", now_ms=NOW))
    by_id = {e["event_id"].rsplit(":", 1)[1]: (e["kind"], e["actor"], e["target"]) for e in good}
    assert by_id == {
        "2": ("REPLY", "101", "202"),  # RE then MT, adjacent
        "4": ("SHARE", "303", "404"),
        "5": ("MENTION", "505", "606"),
        "6": ("REPLY", "707", "808"),  # MT, another tweet, then RE: not adjacent
        "7": ("SHARE", "909", "111"),
        "9": ("REPLY", "222", "333"),  # RE and MT a second apart are two tweets
        "10": ("MENTION", "222", "333"),
        "15": ("SHARE", "888", "999"),  # lower-case type
    }
    assert all(e["platform"] == "twitter" for e in good)
    assert [(r.line, r.reason_code) for r in bad] == [
        (11, "bad_kind"), (12, "malformed_line"), (14, "wrong_type")
    ]
    run = higgs.read(FIXTURES / "higgs_sample.txt", now_ms=NOW)
    list(run)
    assert run.stats.skipped == Counter({"same_tweet": 2}) and run.stats.rows == 13


def test_higgs_window_bounds_the_grouping() -> None:
    good, _ = split(higgs.read(FIXTURES / "higgs_sample.txt", window_lines=1, now_ms=NOW))
    kinds = {e["event_id"].rsplit(":", 1)[1]: e["kind"] for e in good}
    assert kinds["2"] == "REPLY" and "3" not in kinds  # adjacent lines still merge
    assert kinds["6"] == "MENTION" and kinds["8"] == "REPLY"  # two lines apart: two events


# --- Stack Exchange -------------------------------------------------------------------------

def expected_stackexchange(folder: Path) -> tuple[Counter[str], Counter[str], int]:
    """Kinds and skip reasons counted straight from the XML, independently of the importer."""
    users = {r.get("Id") for r in ET.parse(folder / "Users.xml").getroot()}
    posts = {r.get("Id"): r.attrib for r in ET.parse(folder / "Posts.xml").getroot()}
    comments = [r.attrib for r in ET.parse(folder / "Comments.xml").getroot()]
    kinds: Counter[str] = Counter()
    skips: Counter[str] = Counter()

    def target_ok(post: dict[str, str] | None) -> str | None:
        if post is None or post["PostTypeId"] not in ("1", "2"):
            return "no_parent"
        return None if post.get("OwnerUserId") in users else "parent_no_owner"

    for p in posts.values():
        if p["PostTypeId"] not in ("1", "2"):
            skips["other_post_type"] += 1
        elif "OwnerUserId" not in p:
            skips["no_owner"] += 1
        elif p["OwnerUserId"] not in users:
            skips["unknown_user"] += 1
        elif p["PostTypeId"] == "1":
            kinds["POST"] += 1
        else:
            question = posts.get(p["ParentId"])
            if question is not None and question["PostTypeId"] != "1":
                question = None
            problem = target_ok(question)
            skips.update([problem]) if problem else kinds.update(["REPLY"])
    for c in comments:
        if "UserId" not in c:
            skips["no_owner"] += 1
        elif c["UserId"] not in users:
            skips["unknown_user"] += 1
        else:
            problem = target_ok(posts.get(c["PostId"]))
            skips.update([problem]) if problem else kinds.update(["COMMENT"])
    return kinds, skips, len(posts) + len(comments)


def test_stackexchange_counts_add_up() -> None:
    run = stackexchange.read(SE, now_ms=NOW)
    good, bad = split(run)
    kinds, skips, rows = expected_stackexchange(SE)
    raw_rows = sum(
        len(re.findall(rb"<row ", (SE / f).read_bytes())) for f in ("Posts.xml", "Comments.xml")
    )
    assert rows == raw_rows == 1_986 + 3_413  # the data set's published sizes
    assert bad == []
    assert run.stats.rows == rows
    assert run.stats.kinds == kinds
    assert run.stats.skipped == +skips
    assert sum(kinds.values()) + sum(skips.values()) == rows
    assert Counter(e["kind"] for e in good) == kinds
    ids = [e["event_id"] for e in good]
    assert len(set(ids)) == len(ids)
    assert ids == [e["event_id"] for e in stackexchange.read(SE, now_ms=NOW)]


def test_stackexchange_threads() -> None:
    good, _ = split(stackexchange.read(SE, now_ms=NOW))
    posts = {r.get("Id"): r.attrib for r in ET.parse(SE / "Posts.xml").getroot()}
    prefix = "se:stackexchange-quantumcomputing:post:"
    events = {e["event_id"]: e for e in good}
    for e in good:
        assert len(e["text"]) <= 10_000 and e["followers"] is None
        if e["kind"] == "POST":
            assert e["target"] is None and e["conversation_id"] == e["event_id"]
        elif e["kind"] == "REPLY":
            question = posts[posts[e["event_id"].removeprefix(prefix)]["ParentId"]]
            assert e["target"] == question["OwnerUserId"]
            assert e["in_reply_to"] == e["conversation_id"] == prefix + question["Id"]
            assert events[e["in_reply_to"]]["kind"] == "POST"
        else:
            parent = posts[e["in_reply_to"].removeprefix(prefix)]
            assert e["target"] == parent["OwnerUserId"]
            root = parent["Id"] if parent["PostTypeId"] == "1" else parent["ParentId"]
            assert e["conversation_id"] == prefix + root
    assert events[prefix + "1"]["urls"][0] == "https://en.wikipedia.org/wiki/Turing_machine"
    assert events[prefix + "1"]["text"].startswith("Can a Turing machine simulate")
    profiles = stackexchange.users(SE)
    assert len(profiles) == 3_461  # the data set's published size
    assert profiles[events[prefix + "1"]["actor"]].reputation > 0


def test_stackexchange_is_merged_in_time_order() -> None:
    good, _ = split(stackexchange.read(SE, now_ms=NOW))
    inversions = sum(1 for a, b in zip(good, good[1:], strict=False) if b["ts"] < a["ts"])

    def file_inversions(name: str) -> int:
        times = re.findall(rb'CreationDate="([^"]+)"', (SE / name).read_bytes())
        return sum(1 for a, b in zip(times, times[1:], strict=False) if b < a)

    # only where the dump itself is out of order (migrated posts), never posts-then-comments
    assert inversions <= file_inversions("Posts.xml") + file_inversions("Comments.xml")


def test_stackexchange_broken_dump(tmp_path: Path) -> None:
    (tmp_path / "Users.xml").write_text('<users>\n  <row Id="1" />\n  <row Id="2" />\n</users>\n')
    (tmp_path / "Posts.xml").write_text(
        '<posts>\n'
        '  <row Id="10" PostTypeId="1" CreationDate="2018-03-12T17:00:45.567" OwnerUserId="1" '
        'Title="Q" Body="&lt;p&gt;hi&lt;/p&gt;" />\n'
        '  <row Id="11" PostTypeId="2" ParentId="10" CreationDate="yesterday" OwnerUserId="2" '
        'Body="a" />\n'
        '  <row Id="12" PostTypeId="2" ParentId="10" CreationDate="2018-03-12T18:00:00" '
        'OwnerUserId="3" Body="deleted user" />\n'
        '  <row Id="13" PostTypeId="2" ParentId="99" CreationDate="2018-03-12T18:00:00" '
        'OwnerUserId="2" Body="orphan" />\n'
        '  <row Id="14" PostTypeId="2" ParentId="10" CreationDate="2018-03-12T18:00:00" '
        'OwnerUserId="2" Body="ok" /> <oops\n'
        '</posts>\n'
    )
    (tmp_path / "Comments.xml").write_bytes(
        b'<comments>\n  <row Id="5" PostId="10" UserId="2" Text="see https://x.io/a."'
        b' CreationDate="2018-03-12T17:30:00" />\n  <row Id="6" Text="\xff" />\n</comments>\n'
    )
    run = stackexchange.read(tmp_path, now_ms=NOW)
    good, bad = split(run)
    assert [(e["kind"], e["event_id"].split(":", 2)[2]) for e in good] == [
        ("POST", "post:10"), ("COMMENT", "comment:5"), ("REPLY", "post:14")
    ]
    assert good[0]["text"] == "Q\n\nhi" and good[1]["urls"] == ["https://x.io/a."]
    assert [(Path(r.source).name, r.line, r.reason_code) for r in bad] == [
        ("Posts.xml", 3, "wrong_type"), ("Comments.xml", 3, "malformed_xml"),
        ("Posts.xml", 7, "malformed_xml"),  # expat notices at the next tag
    ]
    assert run.stats.skipped == Counter({"unknown_user": 1, "no_parent": 1})
    assert b"yesterday" in bad[0].raw


# --- CSV, JSON Lines, Avro ------------------------------------------------------------------

def test_csv_with_mapping(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        b"\xef\xbb\xbfid,from,to,when,type,body,links,followers,note\n"
        b"m1,ann,bob,1520874045567,reply,hello,https://a.b/1 https://a.b/2,12,x\n"
        b'm2,bob,ann,2018-03-12T17:05:00Z,REPLY,"two\nlines, with comma",,,\n'
        b",ann,,2018-03-12 17:10:00,POST,,,,\n"
        b"m4,ann,bob,1520874045567,REPLY,short row\n"
        b"m5,ann,bob,1520874045567,REPLY,caf\xe9,,,\n"
        b"m6,ann,bob,1520874045567,REPLY,x,,many,\n"
        b"m7,ann,,1520874045567,MESSAGE,x,,,\n"
        b"\n"
    )
    mapping = csvfile.parse_mapping(
        ["id=event_id", "from=actor", "to=target", "when=ts", "type=kind", "body=text",
         "links=urls"]
    )
    good, bad = split(csvfile.read(path, mapping=mapping, platform="mail", now_ms=NOW))
    assert good[0] | {} == validate_shape(good[0])
    assert [(e["event_id"], e["kind"], e["ts"]) for e in good] == [
        ("m1", "REPLY", 1_520_874_045_567),
        ("m2", "REPLY", 1_520_874_300_000),
        ("csv:export.csv:5", "POST", 1_520_874_600_000),
    ]
    assert good[0]["urls"] == ["https://a.b/1", "https://a.b/2"] and good[0]["followers"] == 12
    assert good[1]["text"] == "two\nlines, with comma" and good[1]["platform"] == "mail"
    assert [(r.line, r.reason_code) for r in bad] == [
        (6, "malformed_line"), (7, "invalid_utf8"), (8, "wrong_type"), (9, "missing_target")
    ]
    assert bad[1].raw == b"m5,ann,bob,1520874045567,REPLY,caf\xe9,,,\n"


def test_csv_mapping_errors() -> None:
    with pytest.raises(RapportError):
        csvfile.parse_mapping(["from"])
    with pytest.raises(RapportError):
        csvfile.read(FIXTURES / "higgs_sample.txt", mapping={"from": "sender"})


def test_jsonl_thousand_mixed_lines(tmp_path: Path) -> None:
    rng = random.Random(7)
    base = {"kind": "REPLY", "actor": "a", "target": "b", "ts": 1_520_874_045_567}
    good_lines = [
        lambda i: json.dumps(base | {"event_id": f"g{i}"}),
        lambda i: json.dumps(base | {"event_id": f"g{i}", "ts": "2018-03-12T17:00:45.567Z"}),
        lambda i: json.dumps(base | {"event_id": f"g{i}", "kind": "mention", "urls": ["u"]}),
        lambda i: json.dumps(base | {"event_id": f"g{i}", "text": "naïve ✓", "followers": 3}),
        lambda i: json.dumps({k: v for k, v in base.items()}),  # no id: one is made up
    ]
    broken_lines: list[tuple[str, Any]] = [
        ("malformed_line", lambda i: f'{{"event_id": "b{i}", '),
        ("malformed_line", lambda i: "[1, 2, 3]"),
        ("invalid_utf8", lambda i: b'{"event_id": "b\xff"}'),
        ("missing_field", lambda i: json.dumps({"event_id": f"b{i}", "kind": "POST"})),
        ("wrong_type", lambda i: json.dumps(base | {"event_id": f"b{i}", "ts": "yesterday"})),
        ("wrong_type", lambda i: json.dumps(base | {"event_id": f"b{i}", "urls": "u"})),
        ("bad_kind", lambda i: json.dumps(base | {"event_id": f"b{i}", "kind": "POKE"})),
        ("ts_too_old", lambda i: json.dumps(base | {"event_id": f"b{i}", "ts": 1_520_874_045})),
        ("ts_in_future", lambda i: json.dumps(base | {"event_id": f"b{i}", "ts": NOW * 2})),
        ("text_too_long", lambda i: json.dumps(base | {"event_id": f"b{i}", "text": "x" * 10_001})),
        ("nul_byte", lambda i: json.dumps(base | {"event_id": f"b{i}", "text": "a\u0000b"})),
        ("invalid_utf8", lambda i: json.dumps(base | {"event_id": f"b{i}", "text": "\ud800"})),
        ("missing_target", lambda i: json.dumps(base | {"event_id": f"b{i}", "target": None})),
        ("negative_count", lambda i: json.dumps(base | {"event_id": f"b{i}", "followers": -3})),
        ("empty_field", lambda i: json.dumps(base | {"event_id": f"b{i}", "actor": ""})),
    ]
    lines: list[bytes] = []
    expected_good: dict[int, str] = {}  # line -> event_id
    expected_bad: dict[int, str] = {}  # line -> reason code
    for i in range(1_000):
        if rng.random() < 0.05:
            lines.append(b"   ")  # blank: not a row
        n = len(lines) + 1
        if rng.random() < 0.5:
            make = rng.choice(good_lines)
            text = make(i)
            event_id = json.loads(text).get("event_id", f"jsonl:mixed.jsonl:{n}")
            expected_good[n] = event_id
        else:
            code, make = rng.choice(broken_lines)
            text = make(i)
            expected_bad[n] = code
        lines.append(text if isinstance(text, bytes) else text.encode())
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    run = read("jsonl", path, now_ms=NOW)
    good, bad = split(run)
    assert len(good) + len(bad) == 1_000 == run.stats.rows
    assert [e["event_id"] for e in good] == list(expected_good.values())
    assert {r.line: r.reason_code for r in bad} == expected_bad
    assert all(r.raw == lines[r.line - 1] + b"\n" for r in bad)
    assert set(expected_bad.values()) == {code for code, _ in broken_lines}  # all were tried


def test_avro_container_file(tmp_path: Path) -> None:
    parsed = fastavro.parse_schema(schemas.schema("interaction"))
    base = {"kind": "MESSAGE", "actor": "a", "target": "b", "ts": 1_520_874_045_567}
    records = [base | {"event_id": f"e{i}", "ts": base["ts"] + i} for i in range(100)]
    records.append(base | {"event_id": "old", "ts": 1_000})
    path = tmp_path / "events.avro"
    with path.open("wb") as fh:
        fastavro.writer(fh, parsed, records, sync_interval=500)
    good, bad = split(read("avro", path, now_ms=NOW))
    assert [e["event_id"] for e in good] == [f"e{i}" for i in range(100)]
    assert good[5]["ts"] == 1_520_874_045_572  # stays exact epoch ms
    assert [(r.line, r.reason_code) for r in bad] == [(101, "ts_too_old")]

    damaged = tmp_path / "damaged.avro"
    damaged.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    good, bad = split(read("avro", damaged, now_ms=NOW))
    assert 0 < len(good) < 100 and [r.reason_code for r in bad] == ["bad_avro"]
    not_avro = tmp_path / "not.avro"
    not_avro.write_bytes(b"hello")
    good, bad = split(read("avro", not_avro, now_ms=NOW))
    assert good == [] and [(r.line, r.reason_code) for r in bad] == [(1, "bad_avro")]


# --- snapshots ------------------------------------------------------------------------------

def test_cresci_snapshots_and_labels() -> None:
    good, bad = split(snapshots.read(BAS, platform="twitter", now_ms=NOW))
    assert len(good) == 3_900 and bad == []
    first = good[0]
    assert first == {
        "snapshot_id": "snapshot:bas_users.csv:2", "account": "3610511",
        "ts": 1_423_911_289_000,  # updated 2015-02-14 10:54:49
        "followers": 5470, "following": 2385, "posts": 20370,
        "created_at": 1_175_857_102_000,  # Fri Apr 06 10:58:22 +0000 2007
        "platform": "twitter",
    }
    assert codec.decode(codec.encode(first, "snapshot"), "snapshot") == first
    labels = snapshots.labels_from_csv(BAS)
    assert len(labels) == 3_900
    fake = Counter(snapshots.is_fake(label) for label in labels.values())
    assert fake == Counter({True: 1_950, False: 1_950})


def test_snapshots_without_a_time_column_use_now(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(
        "user,followers,following,posts,created_at\n"
        "u1,3,900,10,2012-06-23T20:46:05Z\n"
        "u2,-3,900,10,\n"
        "u3,3,900,10,someday\n"
    )
    good, bad = split(snapshots.read(path, mapping={"user": "account"}, now_ms=NOW))
    assert good == [{
        "snapshot_id": "snapshot:accounts.csv:2", "account": "u1", "ts": NOW, "followers": 3,
        "following": 900, "posts": 10, "created_at": 1_340_484_365_000, "platform": "",
    }]
    assert [(r.line, r.reason_code) for r in bad] == [(3, "negative_count"), (4, "wrong_type")]


# --- registry and errors --------------------------------------------------------------------

def test_registry() -> None:
    assert set(FORMATS) == {
        "jsonl", "csv", "avro", "snap", "higgs", "stackexchange", "snapshots"
    }
    assert {f.schema for f in FORMATS.values()} == {"interaction", "snapshot"}
    with pytest.raises(RapportError, match="unknown format"):
        read("xml", FIXTURES / "higgs_sample.txt")
    with pytest.raises(RapportError, match="unexpected keyword"):
        read("higgs", FIXTURES / "higgs_sample.txt", windows=3)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_missing_input_is_a_clear_error(fmt: str, tmp_path: Path) -> None:
    with pytest.raises(RapportError, match="no such"):
        read(fmt, tmp_path / "absent")


def test_stackexchange_damaged_users_file(tmp_path: Path) -> None:
    (tmp_path / "Users.xml").write_text('<users>\n<row Id="1" />\n<row Id="2" <\n</users>\n')
    (tmp_path / "Posts.xml").write_text(
        '<posts>\n<row Id="1" PostTypeId="1" OwnerUserId="1" CreationDate="2018-03-12" />\n'
        '<row Id="2" PostTypeId="1" OwnerUserId="2" CreationDate="2018-03-12" />\n</posts>\n'
    )
    (tmp_path / "Comments.xml").write_text("<comments />")
    run = stackexchange.read(tmp_path, now_ms=NOW)
    good, bad = split(run)
    assert [e["actor"] for e in good] == ["1"]
    assert [(Path(r.source).name, r.reason_code) for r in bad] == [("Users.xml", "malformed_xml")]
    assert run.stats.skipped == Counter({"unknown_user": 1})


def test_stackexchange_folder_must_have_its_files(tmp_path: Path) -> None:
    (tmp_path / "Posts.xml").write_text("<posts />")
    with pytest.raises(RapportError, match="Comments.xml, Users.xml"):
        stackexchange.read(tmp_path)


def test_rejections_become_dead_letters() -> None:
    _, bad = split(higgs.read(FIXTURES / "higgs_sample.txt", now_ms=NOW))
    letter = bad[0].dead_letter("interaction", NOW)
    assert letter["line"] == 11 and letter["reason_code"] == "bad_kind"
    assert letter["raw"] == b"444 555 1341101020 XX\n"
    assert codec.decode(codec.encode(letter, "dead-letter"), "dead-letter") == letter
