"""The detector as a whole: batch cuts, checkpoints, dedup, expiry, flags, config, records."""

from __future__ import annotations

import copyreg
import io
import pickle
from typing import Any

import numpy as np
import pytest

from schemas import codec
from streams.core import AccountIndex, EventBatch
from streams.core.spam import RULES, SpamConfig, SpamDetector, alert_id
from streams.core.spam.spans import Packed
from tests.core.helpers import DAY, HOUR, MIN, T0, ev
from tests.core.spam.builders import (
    URL,
    BeforeColumns,
    churns,
    follows,
    names,
    near_duplicates,
    only,
    pitches,
    posts,
    run,
    sends,
)

SPAMMERS = {
    ("R1", "link"), *(("R2", f"camp{i}") for i in range(6)), ("R3", "dup"), ("R4", "fs"),
    ("R4", "churn"), ("R5", "pitch"), ("R6", "bot"), ("R7", "burst"), ("R8", "fake"),
}  # fmt: skip
HONEST = ("news", "newsletter", "star", *(f"u{i}" for i in range(40)))


def mixed_stream(seed: int = 11) -> list[dict[str, Any]]:
    """Two days: 40 ordinary accounts talking with their friends (whom they knew the day
    before), a popular account mentioned by many, a news account posting every 30 min, a
    newsletter mailing its followers personal texts, and one spammer per rule; arrival order
    shuffled by up to 90 s (under the 10 min lateness)."""
    rng = np.random.default_rng(seed)
    users = names("u", 40)
    friends = [(i, (i + k) % 40) for i in range(40) for k in (1, 2, 3, 5, 8)]
    out = [
        ev(f"k{j}", users[a], users[b], T0 - DAY + j, "LIKE") for j, (a, b) in enumerate(friends)
    ]
    kinds = ["MESSAGE", "REPLY", "MENTION", "LIKE", "SHARE", "COMMENT"]
    for i in range(3000):
        a, b = friends[int(rng.integers(len(friends)))][:: 1 if rng.random() < 0.5 else -1]
        kind = kinds[int(rng.integers(len(kinds)))]
        text = " ".join(f"w{k}" for k in rng.integers(0, 400, int(rng.integers(0, 12))))
        urls = [f"https://blog.example/{i}"] if rng.random() < 0.1 else []
        out.append(
            ev(
                f"n{i}",
                users[a],
                users[b],
                T0 + int(rng.integers(0, 2 * DAY)),
                kind,
                text=text,
                urls=urls,
                followers=int(rng.integers(50, 5000)),
                following=int(rng.integers(10, 500)),
            )
        )
    out += [
        ev(f"m{i}", users[i % 40], "star", T0 + HOUR + i * 2000, "MENTION", urls=[URL])
        for i in range(120)
    ]
    out += posts("news", 96, T0, 30 * MIN)
    subs = names("u", 30)
    out += [ev(f"s{i}", s, "newsletter", T0 + i, "FOLLOW") for i, s in enumerate(subs)]
    letters = [
        f"Hello {s}, this week: {' '.join(f'w{k}' for k in rng.integers(0, 400, 8))}" for s in subs
    ]
    out += [
        dict(e, text=t)
        for e, t in zip(
            sends("newsletter", subs, T0 + 10 * HOUR, 2 * MIN, "MESSAGE", urls=[URL]),
            letters,
            strict=True,
        )
    ]
    # spammers
    out += sends("link", names("v", 12), T0 + 3 * HOUR, 2 * MIN, urls=[URL])
    for i in range(6):
        out += sends(
            f"camp{i}",
            [f"w{i}a", f"w{i}b"],
            T0 + 5 * HOUR + i * 3 * MIN,
            MIN,
            urls=["https://promo.example/deal?utm_medium=x"],
        )
    out += [
        dict(e, text=t)
        for e, t in zip(
            sends("dup", names("d", 6), T0 + 7 * HOUR, 3 * MIN, "REPLY"),
            near_duplicates(6),
            strict=True,
        )
    ]
    out += follows("fs", 110, T0 + 9 * HOUR, 2 * MIN, followers=4)
    out += churns("churn", 55, T0 + 11 * HOUR, hold=5 * HOUR)
    out += pitches("pitch", names("p", 5), T0 + 13 * HOUR)
    out += posts("bot", 70, T0 + 15 * HOUR, 5 * MIN, jitter=0.02)
    out += sends("burst", names("b", 35), T0 + 20 * HOUR, 5_000)
    out.append(ev("fake:1", "fake", "u1", T0 + 22 * HOUR, "LIKE", followers=2, following=800))
    arrival = np.array([e["ts"] for e in out]) + rng.integers(0, 90_000, len(out))
    return [out[i] for i in np.argsort(arrival, kind="stable")]


STREAM = mixed_stream()


@pytest.fixture(scope="module")
def whole() -> list[Any]:
    return run(STREAM)


def test_mixed_stream_alerts_spammers_only(whole: list[Any]) -> None:
    got = [(a.rule, a.actor) for a in whole]
    # besides, by definition: each of the link spammer's messages is a new conversation
    # ending in a link (R5)
    assert sorted(got) == sorted(SPAMMERS | {("R5", "link")})
    assert not {actor for _, actor in got} & set(HONEST)


def test_alerts_do_not_depend_on_batch_cuts(whole: list[Any]) -> None:
    rng = np.random.default_rng(0)
    n = len(STREAM)
    for cuts in (range(1, n), range(97, n, 97), sorted(rng.choice(n, 60, replace=False))):
        assert run(STREAM, cuts=cuts) == whole


def test_checkpoint_midstream(whole: list[Any]) -> None:
    d = SpamDetector()
    half = len(STREAM) // 2
    got = d.process(STREAM[:half])
    d = pickle.loads(pickle.dumps(d))
    assert got + d.process(STREAM[half:]) == whole


class _BeforePacked(BeforeColumns):
    """Pickles per-key states the way checkpoints did before ``Packed``: a dict of slots (the
    rest as before the columns)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Packed):
            slots = {name: getattr(obj, name) for name in obj._pickled}
            return copyreg.__newobj__, (type(obj),), (None, slots)
        return super().reducer_override(obj)


@pytest.mark.parametrize("older", [_BeforePacked, BeforeColumns])
def test_checkpoint_midstream_of_an_older_worker(
    whole: list[Any], older: type[pickle.Pickler]
) -> None:
    d = SpamDetector()
    half = len(STREAM) // 2
    got = d.process(STREAM[:half])
    buf = io.BytesIO()
    older(buf, protocol=5).dump(d)
    d = pickle.loads(buf.getvalue())
    assert got + d.process(STREAM[half:]) == whole


def test_state_shrinks_as_stream_time_passes() -> None:
    d = SpamDetector()
    d.process(STREAM)
    busy = d.state_size()
    assert all(busy[r] > 0 for r in RULES) and busy["contacts"] > 0
    # a quiet hour after the last window: every trailing window has passed
    d.process([ev("later", "x", "y", T0 + 5 * DAY)])
    mid = d.state_size()
    assert all(mid[r] < busy[r] for r in ("R1", "R2", "R3", "R4", "R5", "R6", "R7"))
    assert mid["R8"] == busy["R8"]  # flagged accounts are remembered for good
    d.process([ev("much-later", "x", "y", T0 + 40 * DAY)])
    late = d.state_size()
    # what is left is the last event's: its conversations both ways (R5), its sender state
    # (R7: actor, event, hour count) and contacts both ways
    assert late == {"R1": 0, "R2": 0, "R3": 0, "R4": 0, "R5": 2, "R6": 0, "R7": 3, "R8": 1,
                    "contacts": 2, "alerts": 0}  # fmt: skip


def test_one_alert_per_rule_actor_and_window() -> None:
    # 100 targets in 50 minutes, the same link: one R1 alert; going on in the next hour, one
    # more, raised by its first event (the trailing hour then holds the 50 latest targets)
    stream = sends("link", names("t", 100), T0 + 5 * MIN, 30_000, urls=[URL])
    stream += sends("link", names("s", 20), T0 + HOUR + 30 * MIN, 30_000, tag="b", urls=[URL])
    alerts = run(stream, only("R1"))
    assert [(a.window_start, a.evidence.counts["targets"]) for a in alerts] == [
        (T0, 10),
        (T0 + HOUR, 50),
    ]


def test_late_events_are_counted_not_judged() -> None:
    d = SpamDetector(only("R1"))
    d.process([ev("now", "x", "y", T0 + HOUR)])
    late = sends("link", names("t", 12), T0, 1000, urls=[URL])  # 1 h behind stream time
    assert d.process(late) == [] and d.late == 12
    assert d.process(sends("link", names("t", 12), T0 + 55 * MIN, 1000, urls=[URL])) != []


def test_rules_switch_off_one_by_one() -> None:
    for rule in RULES:
        rest = tuple(r for r in RULES if r != rule)
        alerts = run(STREAM, SpamConfig(enabled=rest))
        assert rule not in {a.rule for a in alerts}
        assert rule not in SpamDetector(SpamConfig(enabled=rest)).state_size()
    assert SpamDetector(only("R2", "R3")).state_size() == {
        "R2": 0,
        "R3": 0,
        "alerts": 0,
    }


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown spam rules"):
        SpamConfig(enabled=("R9",))
    with pytest.raises(ValueError, match="severity"):
        SpamConfig(severity=(("R1", "urgent"),))
    with pytest.raises(ValueError, match="r1_min_targets"):
        SpamConfig(r1_min_targets=0)
    with pytest.raises(ValueError, match="share"):
        SpamConfig(r1_min_new_share=1.5)
    assert SpamConfig(lateness_ms=0).lateness_ms == 0  # in-order input: nothing is late
    cfg = SpamConfig(severity=tuple((r, "low") for r in RULES))
    (a,) = run(
        sends("link", names("t", 10), T0, MIN, urls=[URL]),
        SpamConfig(enabled=("R1",), severity=cfg.severity),
    )
    assert a.severity == "low"


def test_alert_record_fits_the_schema(whole: list[Any]) -> None:
    for a in whole:
        record = a.to_record()
        assert codec.decode(codec.encode(record, "alert"), "alert") == record
    r1 = next(a for a in whole if a.rule == "R1").to_record()
    assert r1["severity"] == "HIGH" and r1["evidence"]["url"] == "https://spam.example/offer"
    assert r1["evidence"]["text_sample"] is None and r1["evidence"]["detail"]
    # ids are fixed functions of (rule, actor, window start): no per-process salt
    assert alert_id("R1", "alice", 1_520_870_400_000) == "a6479c419133e7c7d7eaae0c4ac7d00f"


def test_event_batches_with_any_account_index() -> None:
    stream = sends("link", names("t", 10), T0, MIN, urls=[URL])
    shared = AccountIndex()
    mine = SpamDetector(only("R1"), accounts=shared).process(EventBatch(stream, shared))
    other = SpamDetector(only("R1")).process(EventBatch(stream, AccountIndex()))
    assert mine == other == run(stream, only("R1"))
    assert SpamDetector().process([]) == []


def test_pitch_conversations_from_before_the_columns_load(whole: list[Any]) -> None:
    d = SpamDetector()
    half = len(STREAM) // 2
    got = d.process(STREAM[:half])
    (pitch,) = [r for r in d.rules if r.rule == "R5"]
    assert pitch.conversations and isinstance(pitch.__getstate__()["conversations"], tuple)
    older = dict(vars(pitch))  # what a worker before the columns pickled
    vars(pitch).clear()
    pitch.__setstate__(older)
    d = pickle.loads(pickle.dumps(d))
    assert got + d.process(STREAM[half:]) == whole
