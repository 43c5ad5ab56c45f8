"""R3 near-duplicate texts to different targets or threads."""

from __future__ import annotations

import pickle

import numpy as np

from streams.core.spam import MinHasher, SpamDetector
from streams.core.spam import near_duplicates as near_duplicates_of
from streams.core.spam.r3_near_duplicate import BandIndex, NearDuplicateRule, Text, band_keys
from streams.core.windows import window_bounds
from tests.core.helpers import HOUR, MIN, T0, ev
from tests.core.spam.builders import names, near_duplicates, only, run, sends

CFG = only("R3")


def texted(events: list[dict[str, object]], texts: list[str]) -> list[dict[str, object]]:
    return [dict(e, text=t) for e, t in zip(events, texts, strict=True)]


def test_r3_five_near_duplicates_to_five_targets() -> None:
    texts = near_duplicates(6)
    alerts = run(texted(sends("dup", names("t", 6), T0 + MIN, 2 * MIN, "REPLY"), texts), CFG)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.rule, a.actor, a.severity) == ("R3", "dup", "medium")
    assert (a.window_start, a.window_end) == window_bounds(T0 + 9 * MIN, HOUR)
    assert a.evidence.counts == {"near_duplicates": 5, "targets": 5, "threads": 0}
    assert a.evidence.sample_event_ids == tuple(f"dup:{i}" for i in range(5))
    assert a.evidence.text_sample == texts[4]
    assert (a.first_seen, a.last_seen) == (T0 + MIN, T0 + 9 * MIN)


def test_r3_one_target_many_threads() -> None:
    stream = texted(sends("dup", ["t"] * 5, T0, MIN, "REPLY"), near_duplicates(5))
    for i, e in enumerate(stream):
        e["conversation_id"] = f"thread{i}"
    (a,) = run(stream, CFG)
    assert a.evidence.counts == {"near_duplicates": 5, "targets": 1, "threads": 5}


def test_r3_near_misses() -> None:
    assert run(texted(sends("dup", names("t", 4), T0), near_duplicates(4)), CFG) == []
    # the same message five times to one friend, in one thread
    same = texted(sends("dup", ["t"] * 5, T0, kind="REPLY"), [near_duplicates(1)[0]] * 5)
    for e in same:
        e["in_reply_to"] = "root"
    assert run(same, CFG) == []
    # five copies to five targets, first and fifth an hour apart
    assert run(texted(sends("dup", names("t", 5), T0, 15 * MIN), near_duplicates(5)), CFG) == []
    # five unrelated texts
    rng = np.random.default_rng(2)
    other = [" ".join(f"w{k}" for k in rng.integers(0, 500, 12)) for _ in range(5)]
    assert run(texted(sends("dup", names("t", 5), T0), other), CFG) == []
    # posts are not sent to anyone
    posts = [
        ev(f"p{i}", "dup", None, T0 + i * MIN, "POST", text=t)
        for i, t in enumerate(near_duplicates(5))
    ]
    assert run(posts, CFG) == []


def test_r3_newsletter_mail_merge_is_not_near_duplicate() -> None:
    rng = np.random.default_rng(5)
    texts = [
        f"Hello friend, this week: {' '.join(f'w{k}' for k in rng.integers(0, 300, 8))}"
        for _ in range(40)
    ]
    assert run(texted(sends("news", names("sub", 40), T0, 10_000, "MESSAGE"), texts), CFG) == []


def test_r3_texts_kept_before_the_actor_was_busy_are_sketched_later() -> None:
    # three copies in one batch, two more (plus one unrelated) in the next: the first three
    # were kept raw and are sketched when the actor can reach five
    texts = near_duplicates(5)
    stream = texted(
        sends("dup", names("t", 6), T0, MIN), [*texts[:3], "unrelated words here", *texts[3:]]
    )
    assert len(run(stream, CFG, cuts=[3])) == len(run(stream, CFG)) == 1


def test_r3_a_text_before_the_window_is_skipped_in_place() -> None:
    # with a lateness allowance longer than the window, a text can arrive before its actor's
    # window: it is left out, and the texts after it keep their own sketches
    texts = near_duplicates(5)
    stream = texted(sends("dup", names("t", 5), T0 + 2 * HOUR, MIN), texts)
    stream.insert(2, ev("old", "dup", "z", T0, "MENTION", text="a very old unrelated text"))
    (a,) = run(stream, only("R3", lateness_ms=3 * HOUR))
    assert a.evidence.counts == {"near_duplicates": 5, "targets": 5, "threads": 0}
    assert a.evidence.text_sample == texts[4]


def test_r3_a_heavy_texter_is_judged_on_its_window_only() -> None:
    # 400 unrelated texts over 3 h 20 min (the index drops rows as the window slides), then
    # near-duplicates: four early ones fall out of the window before the fifth and sixth come;
    # the last five, within an hour, fire once, however the stream is cut or checkpointed
    rng = np.random.default_rng(9)
    chatter = [" ".join(f"w{k}" for k in rng.integers(0, 5000, 10)) for _ in range(400)]
    dups = near_duplicates(9, seed=3)
    stream = texted(sends("heavy", names("t", 400), T0, 30_000), chatter)
    stream += texted(sends("heavy", names("d", 4), T0 + 200 * MIN, MIN, tag="a"), dups[:4])
    stream += texted(sends("heavy", names("e", 5), T0 + 290 * MIN, MIN, tag="b"), dups[4:])
    alerts = run(stream, CFG)
    assert [(a.rule, a.evidence.counts["near_duplicates"]) for a in alerts] == [("R3", 5)]
    assert alerts[0].evidence.sample_event_ids[0].startswith("heavyb:")
    assert run(stream, CFG, cuts=range(7, len(stream), 37)) == alerts
    d = SpamDetector(CFG)
    first = d.process(stream[:405])
    restored = pickle.loads(pickle.dumps(d))
    assert first + restored.process(stream[405:]) == alerts


def texts_of(rule: NearDuplicateRule) -> dict[str, tuple[int, int, list[tuple[object, ...]]]]:
    """Each actor's top, raw count and texts, sketches as lists (arrays compare per item)."""
    return {
        actor: (sent.top, sent.raw, [
            (*t[:-1], None if t.sketch is None else (t.sketch[0].tolist(), t.sketch[1].tolist()))
            for t in sent.texts
        ])
        for actor, sent in rule.actors.items()
    }  # fmt: skip


def test_r3_state_pickles_as_columns_and_older_states_still_load() -> None:
    # actors with sketched texts (near-duplicates), raw ones (too few to fire) and both (raw
    # until the fifth), and a text without shingles; the state is the same after a round trip,
    # also from a checkpoint written before the columns (each actor's ``Sent`` pickled alone)
    stream = texted(sends("dup", names("t", 7), T0, MIN), near_duplicates(7))
    stream += texted(sends("few", names("u", 2), T0 + 30, MIN), ["hello there", "see you"])
    stream += texted(sends("mix", names("v", 4), T0 + 60, MIN), near_duplicates(4, seed=2))
    stream.sort(key=lambda e: (e["ts"], e["event_id"]))
    stream += texted(sends("mix", ["w"], T0 + 9 * MIN, MIN, tag="x"), ["!"])
    d = SpamDetector(CFG)
    d.process(stream)
    (rule,) = d.rules
    assert isinstance(rule, NearDuplicateRule)
    before = texts_of(rule)
    assert {a: r for a, (_, r, _) in before.items()} == {"dup": 0, "few": 2, "mix": 0}
    assert pickle.loads(pickle.dumps(rule)).actors.keys() == rule.actors.keys()
    assert texts_of(pickle.loads(pickle.dumps(rule))) == before
    older = NearDuplicateRule.__new__(NearDuplicateRule)
    older.__setstate__(pickle.loads(pickle.dumps(dict(rule.__dict__))))
    assert texts_of(older) == before
    empty = SpamDetector(CFG).rules[0]
    assert texts_of(pickle.loads(pickle.dumps(empty))) == {}


def test_r3_band_key_counts_bound_the_candidates_as_rows_come_and_go() -> None:
    # the cheap test that skips judging a text must never skip one with enough candidates:
    # after every add, over rows in and out of the window and after the index drops rows
    rng = np.random.default_rng(4)
    vocabulary = [f"w{k}" for k in range(8)]  # few words: many texts share band keys
    texts = [" ".join(rng.choice(vocabulary, 4)) for _ in range(300)]
    texts += near_duplicates(20, seed=5)
    rng.shuffle(texts)
    hasher = MinHasher(42, 3)
    sk = hasher.sketch(texts)
    index = BandIndex(42)
    shared_some = 0
    for i in range(len(texts)):
        ts, edge = T0 + i * MIN, T0 + (i - 60) * MIN  # a 60-text window sliding on
        alive = index.alive(edge)
        n = len(alive)
        candidates = np.flatnonzero((index.bands[:n] == sk.bands[i]).any(axis=1) & alive)
        hits = near_duplicates_of(sk.bands[i], sk.shingles[i], index.bands[:n], index.shingles,
                                  0.5, alive)  # fmt: skip
        assert index.sharing(band_keys(sk.bands[i]).tolist()) >= len(candidates) >= len(hits)
        shared_some += len(candidates) > 0
        index.add(Text(ts, f"e{i}", "t", None, None, (sk.bands[i], sk.shingles[i])), edge)
    assert shared_some > 100  # the bound was tested where it matters, not only at zero
    assert len(index.texts) < len(texts)  # and across drops
