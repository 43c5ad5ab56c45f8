"""Publishing real files to a real broker: every row is accounted for, good events read back
decoded, bad rows in the dead-letter topic with their reasons."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from schemas import codec
from streams.config import Settings, load_settings
from streams.publish import partition_for
from tests.conftest import SHARED
from tests.kafka_read import read_topic

COLLEGE = SHARED / "data" / "CollegeMsg" / "CollegeMsg.txt"
SE_DUMP = SHARED / "data" / "stackexchange-quantumcomputing"


def settings_for(kafka: str, run_id: str, tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    env = {
        "RAPPORT_KAFKA": kafka,
        "RAPPORT_KAFKA__TOPIC_PREFIX": run_id,
        "RAPPORT_VAR": str(tmp_path / "var"),
    }
    return load_settings(env=env, cwd=tmp_path), env


def rapport(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def decoded_events(settings: Settings, topic: str) -> list[dict]:
    events: list[dict] = []
    for value, headers in read_topic(settings, settings.topic(topic)):
        _, records = codec.decode_message(value, headers)
        events.extend(records)
    return events


def test_collegemsg_publishes_every_event(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    settings, env = settings_for(kafka_bootstrap, run_id, tmp_path)
    out = rapport(["publish", "--format", "snap", str(COLLEGE), "--json"], env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["published"] == 59_835 and summary["rejected"] == {}
    events = decoded_events(settings, "interactions")
    assert len(events) == 59_835
    assert len({e["event_id"] for e in events}) == 59_835
    lines = COLLEGE.read_text().splitlines()
    assert sorted((e["actor"], e["target"], e["ts"]) for e in events) == sorted(
        (a, b, int(t) * 1000) for a, b, t in (line.split() for line in lines)
    )
    # a conversation pair stays in one partition, in file order
    for value, headers in read_topic(settings, settings.topic("interactions"))[:5]:
        _, batch = codec.decode_message(value, headers)
        assert len({partition_for(e["actor"], e["target"], 4) for e in batch}) == 1

    again = rapport(["publish", "--format", "snap", str(COLLEGE), "--json"], env)
    assert again.returncode == 0
    ids = [e["event_id"] for e in decoded_events(settings, "interactions")]
    assert len(ids) == 2 * 59_835 and len(set(ids)) == 59_835  # same ids: the pipeline drops them


def test_stackexchange_counts_per_kind_and_skip_reason(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    settings, env = settings_for(kafka_bootstrap, run_id, tmp_path)
    out = rapport(["publish", "--format", "stackexchange", str(SE_DUMP)], env)
    assert out.returncode == 0, out.stderr
    assert "by kind: COMMENT" in out.stdout and "skipped:" in out.stdout
    events = decoded_events(settings, "interactions")
    kinds = Counter(e["kind"] for e in events)
    for kind, n in kinds.items():
        assert f"{kind} {n:,}" in out.stdout
    assert set(kinds) == {"POST", "REPLY", "COMMENT"}
    replies = [e for e in events if e["kind"] == "REPLY"]
    assert all(e["in_reply_to"] and e["conversation_id"] == e["in_reply_to"] for e in replies)


def make_mixed_file(path: Path, n: int = 1000, seed: int = 7) -> tuple[int, Counter[str]]:
    """n lines, about a third broken in known ways; returns (good, expected reason counts)."""
    rng = random.Random(seed)
    good, reasons = 0, Counter[str]()
    base = {"kind": "MESSAGE", "actor": "a", "target": "b", "ts": 1_600_000_000_000}
    with path.open("wb") as fh:
        for i in range(n):
            event = {**base, "event_id": f"e{i}", "actor": f"u{i % 50}"}
            choice = rng.randrange(9)
            if choice == 0:
                line, reason = b'{"event_id": "x", "kind": ', "malformed_line"
            elif choice == 1:
                line, reason = json.dumps({**event, "ts": 5}).encode(), "ts_too_old"
            elif choice == 2:
                line, reason = json.dumps({**event, "kind": "SHOUT"}).encode(), "bad_kind"
            elif choice == 3:
                del event["actor"]
                line, reason = json.dumps(event).encode(), "missing_field"
            elif choice == 4:
                line = json.dumps({**event, "text": "caf"}).encode()[:-2] + b'\xff"}'
                reason = "invalid_utf8"
            else:
                line, reason = json.dumps(event).encode(), ""
            fh.write(line + b"\n")
            if reason:
                reasons[reason] += 1
            else:
                good += 1
    return good, reasons


def test_mixed_file_good_to_topic_bad_to_dead_letters(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    settings, env = settings_for(kafka_bootstrap, run_id, tmp_path)
    path = tmp_path / "mixed.jsonl"
    good, reasons = make_mixed_file(path)
    out = rapport(["publish", "--format", "jsonl", str(path), "--json"], env)
    assert out.returncode == 0, out.stderr  # bad rows never fail a publish without --strict
    events = decoded_events(settings, "interactions")
    assert len(events) == good
    letters = [
        codec.decode(value, "dead-letter")
        for value, _ in read_topic(settings, settings.topic("dead-letters"))
    ]
    assert Counter(d["reason_code"] for d in letters) == reasons
    assert sum(reasons.values()) + good == 1000
    assert all(d["source"].endswith("mixed.jsonl") and d["line"] and d["reason"] for d in letters)
    strict = rapport(["publish", "--format", "jsonl", str(path), "--strict"], env)
    assert strict.returncode == 1


def test_options_that_do_not_apply_are_refused(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    _, env = settings_for(kafka_bootstrap, run_id, tmp_path)
    out = rapport(["publish", "--format", "snap", str(COLLEGE), "--map", "a=b"], env)
    assert out.returncode == 2 and "--map does not apply to format snap" in out.stderr
