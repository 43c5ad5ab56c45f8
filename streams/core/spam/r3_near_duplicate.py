"""R3 near-duplicate text: one actor sends ≥ 5 near-duplicate texts to different targets or
threads within 1 h.

Texts are those of addressing events to another account. When a text arrives, its group is the
text plus the actor's earlier texts in the window that are its near-duplicates (``minhash``:
word-bigram Jaccard ≥ 0.5); the rule fires when the group reaches ≥ 5 distinct targets, or ≥ 5
distinct threads (``conversation_id``, else ``in_reply_to``). Someone sending one message five
times to one friend in one thread does not fire it.

Texts are kept raw and sketched only once their actor has enough texts in the window to fire:
most accounts never do, and sketching is most of the cost. An actor's sketched texts are also
held as arrays (``BandIndex``), so a new text's candidates are one vectorised comparison: the
window's sketches were re-stacked per text, quadratic in an account's texts per hour (41% of
the worker's time with 500 accounts each texting twice a second).
"""

from __future__ import annotations

from collections import Counter, deque
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np

from streams.core.batch import I64, Bools
from streams.core.changes import Tracked, is_saving_changes
from streams.core.spam.alerts import Alert, AlertLog, Evidence
from streams.core.spam.config import SpamConfig
from streams.core.spam.frame import Frame
from streams.core.spam.minhash import U32, U64, MinHasher, near_duplicates
from streams.core.spam.spans import Expiry, Packed, expire_keys
from streams.core.windows import HOUR_MS, NO_TIME

RULE = "R3"
ALERT_WINDOW_MS = HOUR_MS


Sketch = tuple[U32, U64]  # LSH band keys, sorted distinct shingles
Keys = list[int]  # a text's band keys as one int per (band, key): see ``band_keys``


class Text(NamedTuple):
    """One sent text: raw until its actor could fire, then sketched (``text`` dropped). A
    tuple: the garbage collector stops tracking tuples of atoms."""

    ts: int
    event_id: str
    target: str
    thread: str | None
    text: str | None
    sketch: Sketch | None


class BandIndex:
    """An actor's sketched texts: band keys (a row each), times and shingles, in the order
    added. Rows out of the window are skipped by time and dropped once they are half.

    ``keys`` counts the rows holding each (band, key): a text's LSH candidates number at most
    the sum of its keys' counts, so a text that could not be grouped with enough others is
    told in a few dict lookups instead of an exact comparison (nearly every text of an
    ordinary account shares no band with its others: 22,002 of 22,031 judged in the
    simulator's mix)."""

    __slots__ = ("bands", "ts", "texts", "shingles", "keys")

    def __init__(self, width: int) -> None:
        self.bands: U32 = np.zeros((8, width), np.uint32)
        self.ts: I64 = np.zeros(8, np.int64)
        self.texts: list[Text] = []
        self.shingles: list[U64] = []
        self.keys: Counter[int] = Counter()

    def add(self, text: Text, edge: int, keys: Keys | None = None) -> None:
        """Add a sketched text (``keys``: its ``band_keys``, if known); rows at or before
        ``edge`` may be dropped to make room."""
        assert text.sketch is not None
        if len(self.texts) == len(self.ts):
            self.alive(edge)
        n = len(self.texts)
        if n == len(self.ts):
            self.bands = np.concatenate([self.bands, np.zeros_like(self.bands)])
            self.ts = np.concatenate([self.ts, np.zeros_like(self.ts)])
        self.bands[n], self.ts[n] = text.sketch[0], text.ts
        self.texts.append(text)
        self.shingles.append(text.sketch[1])
        self.keys.update(band_keys(text.sketch[0]).tolist() if keys is None else keys)

    def sharing(self, keys: Keys) -> int:
        """At most how many rows share one of a text's band ``keys``: a row counts once per
        band it shares, and rows out of the window count until they are dropped."""
        return sum(map(self.keys.get, keys, repeat(0)))

    def alive(self, edge: int) -> Bools:
        """Which rows are in the window (time > ``edge``), after dropping the rest if they are
        at least half."""
        n = len(self.texts)
        alive = self.ts[:n] > edge
        live = int(np.count_nonzero(alive))
        if live * 2 <= n and n > 8:
            keep = np.flatnonzero(alive)
            self.bands[:live], self.ts[:live] = self.bands[keep], self.ts[keep]
            self.texts = [self.texts[i] for i in keep.tolist()]
            self.shingles = [self.shingles[i] for i in keep.tolist()]
            self.keys = Counter(band_keys(self.bands[:live]).ravel().tolist())
            return np.ones(live, np.bool_)
        return alive


class Sent(Packed):
    """An actor's texts in the trailing window, in arrival order. Derived from ``texts`` (not
    pickled): ``index``, the sketched ones (rebuilt when first needed), and ``raw``, how many
    are kept raw (at most: the window drops some). Checkpoints pickle the rule's ``Sent`` s
    together as columns (``_columns``); one pickled alone is ``(top, texts)``."""

    __slots__ = ("top", "texts", "index", "raw")
    _pickled = ("top", "texts")

    def __init__(self) -> None:
        self.top = NO_TIME
        self.texts: list[Text] = []
        self.index: BandIndex | None = None
        self.raw = 0

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state)
        self.index = None
        self.raw = sum(1 for t in self.texts if t.sketch is None)

    def sketched(self, width: int, window_ms: int) -> BandIndex:
        if self.index is None:
            self.index = BandIndex(width)
            for t in self.texts:
                if t.sketch is not None:
                    self.index.add(t, self.top - window_ms)
        return self.index


class NearDuplicateRule:
    """Per actor: texts sent in the trailing window, sketched when they could matter."""

    rule = RULE
    keyed = ("actors",)

    def __init__(self, config: SpamConfig, log: AlertLog) -> None:
        self.window_ms = config.r3_window_ms
        self.min_texts = config.r3_min_texts
        self.min_jaccard = config.r3_min_jaccard
        self.samples = config.samples
        self.hasher = MinHasher(config.r3_bands, config.r3_rows)
        self.log = log
        self.actors: dict[str, Sent] = Sents()
        self._expiry = Expiry(self.window_ms)

    def process(self, frame: Frame) -> list[Alert]:
        b = frame.batch
        rows = frame.addressing
        texts = b.field("text", rows)
        keep = [i for i, x in enumerate(texts) if isinstance(x, str) and x]
        if not keep:
            return []
        rows = rows[keep]
        texts = [texts[i] for i in keep]
        convs = b.field("conversation_id", rows)
        parents = b.field("in_reply_to", rows)
        actors = [b.actor[r] for r in rows.tolist()]
        busy = self._busy(actors)
        if busy:
            self._sketch(busy, actors, texts)
        out: list[Alert] = []
        ts, eids, targets, window = frame.ts_list, b.event_id, b.target, self.window_ms
        for i, row in enumerate(rows.tolist()):
            actor, t = actors[i], ts[row]
            pending = busy.get(actor)
            sketch, keys = (None, None) if pending is None else pending.popleft()
            sent = self.actors.get(actor)
            if sent is None:
                sent = self.actors[actor] = Sent()
            elif t <= sent.top - window:  # before the window (lateness > window)
                continue
            if t > sent.top:
                sent.top = t
                if sent.texts and sent.texts[0].ts <= t - window:
                    sent.texts = [x for x in sent.texts if x.ts > t - window]
            thread = convs[i] if convs[i] is not None else parents[i]
            if sketch is None:  # cannot fire yet: keep the text raw
                sent.texts.append(Text(t, eids[row], str(targets[row]), thread, texts[i], None))
                sent.raw += 1
                continue
            assert keys is not None
            text = Text(t, eids[row], str(targets[row]), thread, None, sketch)
            index = sent.sketched(self.hasher.bands, window)
            sent.texts.append(text)
            # judging is the costly part: not when too few texts share a band key with this
            # one to make a group, nor when an alert was raised for this window already (the
            # same guard as R6 and R7)
            if (
                len(sent.texts) >= self.min_texts
                and index.sharing(keys) + 1 >= self.min_texts
                and not self.log.raised_for(RULE, actor, sent.top, ALERT_WINDOW_MS)
            ):
                alert = self._judge(row, actor, sent, index, text, texts[i])
                if alert is not None:
                    out.append(alert)
            index.add(text, sent.top - window, keys)
        return out

    def _busy(self, actors: list[str]) -> dict[str, deque[tuple[Sketch, Keys]]]:
        """Actors with enough texts (window + batch) to fire, each with an empty sketch queue."""
        busy: dict[str, deque[tuple[Sketch, Keys]]] = {}
        for actor, n in Counter(actors).items():
            sent = self.actors.get(actor)
            if n + (len(sent.texts) if sent is not None else 0) >= self.min_texts:
                busy[actor] = deque()
        return busy

    def _sketch(
        self, busy: dict[str, deque[tuple[Sketch, Keys]]], actors: list[str], texts: list[str]
    ) -> None:
        """Sketch the busy actors' unsketched kept texts (in place) and new texts (into
        ``busy``, in arrival order, with their band keys), in one vectorised pass."""
        kept = [
            (sent, j)
            for a in busy
            if (sent := self.actors.get(a)) is not None and sent.raw
            for j, t in enumerate(sent.texts)
            if t.sketch is None
        ]
        raw = [sent.texts[j].text or "" for sent, j in kept]
        new = [i for i, a in enumerate(actors) if a in busy]
        sk = self.hasher.sketch(raw + [texts[i] for i in new])
        keys: list[Keys] = band_keys(sk.bands).tolist()
        for k, (sent, j) in enumerate(kept):
            sent.raw = 0
            sent.texts[j] = sent.texts[j]._replace(text=None, sketch=(sk.bands[k], sk.shingles[k]))
            if sent.index is not None:
                sent.index.add(sent.texts[j], sent.top - self.window_ms, keys[k])
        for j, i in enumerate(new, len(kept)):
            busy[actors[i]].append(((sk.bands[j], sk.shingles[j]), keys[j]))

    def _judge(
        self, row: int, actor: str, sent: Sent, index: BandIndex, text: Text, raw: str
    ) -> Alert | None:
        alive = index.alive(sent.top - self.window_ms)
        if int(np.count_nonzero(alive)) + 1 < self.min_texts or text.sketch is None:
            return None
        hit = near_duplicates(
            *text.sketch, index.bands[: len(alive)], index.shingles, self.min_jaccard, alive,
            at_least=self.min_texts - 1,
        )  # fmt: skip
        if len(hit) + 1 < self.min_texts:
            return None
        group = [text, *(index.texts[j] for j in hit.tolist())]
        targets = len({t.target for t in group})
        threads = len({t.thread for t in group if t.thread is not None})
        if max(targets, threads) < self.min_texts:
            return None
        group.sort(key=_text_order)
        evidence = Evidence(
            {"near_duplicates": len(group), "targets": targets, "threads": threads},
            tuple(t.event_id for t in group[: self.samples]),
            f"near-duplicates to distinct targets {targets} or threads {threads} >= "
            f"{self.min_texts}; Jaccard >= {self.min_jaccard:.2f}",
            text_sample=raw,
        )
        return self.log.emit(
            row, RULE, actor, sent.top, ALERT_WINDOW_MS, evidence, group[0].ts, group[-1].ts
        )

    def expire(self, now: int) -> None:
        if self._expiry.due(now):
            expire_keys(self.actors, now - self.window_ms)

    def __getstate__(self) -> dict[str, Any]:
        if is_saving_changes():  # the dict, pickled as its changes (``streams.core.changes``)
            return self.__dict__
        state = {k: v for k, v in self.__dict__.items() if k != "actors"}
        return {**state, "columns": _columns(self.actors)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "columns" in state:  # else a checkpoint from before the columns (``actors`` a dict)
            state["actors"] = _sents(state.pop("columns"))  # or of changes (``Sents``)
        if not isinstance(state["actors"], Sents):
            state["actors"] = Sents(state["actors"])
        self.__dict__.update(state)

    def state_size(self) -> int:
        return sum(len(s.texts) for s in self.actors.values()) + len(self.actors)


def _columns(actors: dict[str, Sent]) -> dict[str, Any]:
    """Every actor's texts as columns, sketches stacked in two arrays: a sketch is two small
    arrays, and pickling them one by one took 6 µs a text. R3 was 1.8 of the 2.6 CPU-s of a
    by-actor checkpoint at the alert bench's pace (78k sketched texts): seconds in which the
    forked child's copy-on-write pages slow the worker down."""
    texts = [t for s in actors.values() for t in s.texts]
    columns = list(zip(*texts, strict=True)) or [()] * len(Text._fields)
    sketches = [s for s in columns[-1] if s is not None]  # those whose text is None
    return {
        "names": list(actors),
        "tops": [s.top for s in actors.values()],
        "counts": [len(s.texts) for s in actors.values()],
        **dict(zip(Text._fields[:-1], columns, strict=False)),
        "bands": np.concatenate([s[0] for s in sketches]).reshape(len(sketches), -1)
        if sketches else None,
        "lengths": np.fromiter((len(s[1]) for s in sketches), np.int64, len(sketches)),
        "shingles": np.concatenate([s[1] for s in sketches]) if sketches else None,
    }


def _sents(c: dict[str, Any]) -> dict[str, Sent]:
    """``_columns`` back into one ``Sent`` per actor (sketches as views of the stacked arrays)."""
    ends = np.cumsum(c["lengths"]).tolist()
    shingles = [c["shingles"][a:b] for a, b in zip([0, *ends], ends, strict=False)]
    sketches = iter(zip(c["bands"], shingles, strict=True) if shingles else ())
    rows = zip(*(c[f] for f in Text._fields[:-1]), strict=True)
    texts = [Text._make((*r, None if r[-1] is not None else next(sketches))) for r in rows]
    actors, at = {}, 0
    for name, top, n in zip(c["names"], c["tops"], c["counts"], strict=True):
        sent = actors[name] = Sent.__new__(Sent)
        sent.__setstate__((top, texts[at : at + n]))  # as if pickled alone
        at += n
    return actors


class Sents(Tracked[str, Sent]):
    """The rule's texts per actor, their changes saved as columns too."""

    __slots__ = ()
    pack, unpack = staticmethod(_columns), staticmethod(_sents)


_BAND_NUMBERS = np.arange(256, dtype=np.int64) << 32


def band_keys(bands: U32) -> I64:
    """One int per (band, key) of a text's band keys (the last axis: one text, or a row
    per text)."""
    return bands | _BAND_NUMBERS[: bands.shape[-1]]


def _text_order(t: Text) -> tuple[int, str]:
    return t.ts, t.event_id
