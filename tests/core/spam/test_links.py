"""R1 same link to many, R2 link campaign, R5 pitch-and-link endings."""

from __future__ import annotations

from streams.core.spam import alert_id
from streams.core.windows import window_bounds
from tests.core.helpers import DAY, HOUR, MIN, T0, ev
from tests.core.spam.builders import CANON, URL, names, only, pitches, run, sends

# --- R1 ---------------------------------------------------------------------------------------


def test_r1_same_link_to_ten_strangers() -> None:
    # the link is dressed up differently each time: only canonicalisation makes it one
    stream = [
        dict(e, urls=[URL.replace("c7", f"c{i}").upper().replace("/OFFER", "/offer")])
        for i, e in enumerate(sends("spam", names("t", 12), T0 + 5 * MIN))
    ]
    alerts = run(stream, only("R1"))
    assert len(alerts) == 1
    a = alerts[0]
    tenth = T0 + 14 * MIN
    assert (a.rule, a.actor, a.severity) == ("R1", "spam", "high")
    assert (a.window_start, a.window_end) == window_bounds(tenth, HOUR)
    assert a.alert_id == alert_id("R1", "spam", a.window_start)
    assert (a.first_seen, a.last_seen) == (T0 + 5 * MIN, tenth)
    assert a.evidence.counts == {"targets": 10, "new_targets": 10}
    assert a.evidence.sample_event_ids == tuple(f"spam:{i}" for i in range(5))
    assert a.evidence.url == CANON
    assert a.evidence.detail == "targets 10 >= 10; new share 1.00 >= 0.80"


def test_r1_near_misses() -> None:
    cfg = only("R1")
    assert run(sends("spam", names("t", 9), T0, urls=[URL]), cfg) == []  # 9 targets
    # 10 targets, but the first and the tenth are an hour apart: never 10 within 1 h
    assert run(sends("spam", names("t", 10), T0, 400_000, urls=[URL]), cfg) == []
    # 10 messages to 5 targets
    assert run(sends("spam", names("t", 5) * 2, T0, urls=[URL]), cfg) == []
    # 10 targets, 10 different links
    stream = sends("spam", names("t", 10), T0)
    for i, e in enumerate(stream):
        e["urls"] = [f"https://e.com/{i}"]
    assert run(stream, cfg) == []
    # a SHARE addresses nobody
    assert run(sends("spam", names("t", 10), T0, kind="SHARE", urls=[URL]), cfg) == []


def test_r1_share_of_new_targets() -> None:
    def stream(known: int) -> list[dict[str, object]]:
        # ``known`` of the 10 targets interacted with the actor three days before
        before = [ev(f"old{i}", f"t{i}", "spam", T0 - 3 * DAY, "LIKE") for i in range(known)]
        return before + sends("spam", names("t", 10), T0, urls=[URL])

    assert len(run(stream(2), only("R1"))) == 1  # 80% new: fires
    assert run(stream(3), only("R1")) == []  # 70% new
    got = run(stream(2), only("R1"))[0].evidence
    assert got.counts == {"targets": 10, "new_targets": 8}


def test_r1_newsletter_to_subscribers_is_not_spam() -> None:
    subscribers = names("sub", 40)
    stream = [
        ev(f"f{i}", s, "news", T0 - 20 * DAY + i, "FOLLOW")  # they follow it
        for i, s in enumerate(subscribers[:30])
    ]
    stream += [
        ev(f"r{i}", "news", s, T0 - 7 * DAY + i)  # last week's issue
        for i, s in enumerate(subscribers[30:])
    ]
    stream += sends("news", subscribers, T0, 10_000, "MESSAGE", tag="issue", urls=[URL])
    assert run(stream, only("R1")) == []


def test_r1_contacts_count_one_way_for_follows_and_expire() -> None:
    # the spammer following its targets first does not make them contacts ...
    stream = [ev(f"f{i}", "spam", t, T0 - DAY + i, "FOLLOW") for i, t in enumerate(names("t", 10))]
    assert len(run(stream + sends("spam", names("t", 10), T0, urls=[URL]), only("R1"))) == 1
    # ... and a contact older than the 30-day horizon is forgotten
    stream = [ev(f"o{i}", t, "spam", T0 - 31 * DAY + i) for i, t in enumerate(names("t", 10))]
    assert len(run(stream + sends("spam", names("t", 10), T0, urls=[URL]), only("R1"))) == 1


def test_r1_popular_account_mentioned_by_many() -> None:
    stream = [
        ev(f"m{i}", f"fan{i}", "star", T0 + i * 1000, "MENTION", urls=[URL]) for i in range(200)
    ]
    assert run(stream, only("R1", "R2", "R5", "R7")) == []


# --- R2 ---------------------------------------------------------------------------------------


def campaign(actors: int, start: int = T0, step: int = 5 * MIN) -> list[dict[str, object]]:
    """``actors`` accounts each send the link to two accounts of their own, ``step`` apart."""
    out: list[dict[str, object]] = []
    for i in range(actors):
        out += sends(f"bot{i}", [f"x{i}a", f"x{i}b"], start + i * step, MIN, urls=[URL])
    return out


def test_r2_campaign_alerts_every_actor() -> None:
    alerts = run(campaign(6), only("R2"))
    # the fifth actor's first message fires for the five; the sixth joins while it holds
    assert [a.actor for a in alerts] == [f"bot{i}" for i in range(6)]
    a0, a5 = alerts[0], alerts[5]
    assert a0.severity == "high" and a0.evidence.url == CANON
    assert a0.evidence.counts == {"actors": 5, "targets": 9}
    assert a0.evidence.sample_event_ids == ("bot0:1", "bot1:1", "bot2:1", "bot3:1", "bot4:0")
    assert a0.evidence.detail == "actors 5 >= 5; targets 9 >= 5"
    assert (a0.first_seen, a0.last_seen) == (T0 + MIN, T0 + 20 * MIN)
    assert a5.evidence.counts == {"actors": 6, "targets": 11}
    assert a5.evidence.sample_event_ids[0] == "bot5:0"


def test_r2_near_misses() -> None:
    assert run(campaign(4), only("R2")) == []
    # bot0's last message and bot4's first are 1 h apart
    assert run(campaign(5, step=15 * MIN + 16_000), only("R2")) == []
    # five fans answering one popular account with a link to its own page: one target
    fans = [ev(f"m{i}", f"fan{i}", "star", T0 + i * MIN, "REPLY", urls=[URL]) for i in range(5)]
    assert run(fans, only("R2")) == []
    # five actors, four targets
    few = [ev(f"m{i}", f"bot{i}", f"x{i % 4}", T0 + i * MIN, urls=[URL]) for i in range(5)]
    assert run(few, only("R2")) == []


def test_r2_campaign_goes_on_next_hour() -> None:
    stream = campaign(5) + campaign(5, start=T0 + HOUR + 10 * MIN)
    for i, e in enumerate(stream):
        e["event_id"] = f"e{i}"
    alerts = run(stream, only("R2"))
    # once per actor and hour: at 01:10 the window still holds 5 actors, so all go again
    assert len(alerts) == 10
    assert {a.window_start for a in alerts} == {T0, T0 + HOUR}


# --- R5 ---------------------------------------------------------------------------------------


def test_r5_pitch_and_link_endings() -> None:
    alerts = run(pitches("pitch", names("c", 6), T0), only("R5"))
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.rule, a.actor, a.severity) == ("R5", "pitch", "high")
    assert (a.window_start, a.window_end) == window_bounds(T0, DAY)
    assert a.evidence.counts == {"conversations": 5}
    assert a.evidence.sample_event_ids == tuple(f"pitch:link{i}" for i in range(5))
    assert a.evidence.url == CANON
    assert (a.first_seen, a.last_seen) == (T0 + 2 * MIN, T0 + 42 * MIN)


def test_r5_near_misses() -> None:
    cfg = only("R5")
    assert run(pitches("pitch", names("c", 4), T0), cfg) == []
    assert run(pitches("pitch", names("c", 5), T0, 6 * HOUR), cfg) == []  # 24 h apart
    # one counterpart had liked the actor's post the week before: four new conversations
    known = [ev("old", "c0", "pitch", T0 - 7 * DAY, "LIKE")]
    assert run(known + pitches("pitch", names("c", 5), T0), cfg) == []
    # the first conversation goes on after the link: its last message has none ...
    stream = pitches("pitch", names("c", 5), T0)
    stream.insert(3, ev("more", "pitch", "c0", T0 + 5 * MIN))
    assert run(stream, cfg) == []
    stream.insert(4, ev("again", "pitch", "c0", T0 + 6 * MIN, urls=[URL]))  # ... until a link
    assert len(run(stream, cfg)) == 1


def test_r5_a_later_conversation_with_a_contact_is_not_new() -> None:
    # talked to c0..c4 two days ago (old conversations ended), now links to them all
    old = [ev(f"old{i}", "pitch", c, T0 - 2 * DAY + i) for i, c in enumerate(names("c", 5))]
    stream = old + sends("pitch", names("c", 5), T0, tag="l", urls=[URL])
    assert run(stream, only("R5")) == []
