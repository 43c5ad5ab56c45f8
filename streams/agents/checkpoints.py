"""Analytics state in a Faust table: per input partition, its ``PartitionEngine`` (interactions)
or ``ActorEngine`` (by-actor), pickled.

A state's bytes (``dump_state``) are its pickle, numpy arrays byte-shuffled, compressed with zstd
(~3× smaller, ~4 ms a MB, made off the event loop by ``forked``); checkpoints written before
compression or shuffling still load.
One coarse write per partition per checkpoint (not one changelog message per event): the pickle
is cut into chunks that fit a Kafka message, written under a generation that alternates, and a
manifest (offset covered, generation, chunk count, digest) written last. A crash half-way
through a checkpoint leaves the previous generation and its manifest intact.

Most of an engine's state changes little between saves: a by-actor engine is per-key state of
which a few percent changes, an interactions engine holds two minutes of events for reordering
of which a few seconds' come and go. So most saves hold only what changed since the save
before (``streams.core.changes``: keys, the held events that left and came) and the rest of the
engine whole: a chain of changes after a whole save, in the generation of that save, each
listed in the manifest once written. Restoring loads the whole save and applies the changes
in order. The next save is whole once the chain's bytes reach the whole save's, one whole save
per checkpoint (``kinds``): a restore reads at most four times a whole save.

Keys live in the table partition of the input partition's number (both topics have as many
partitions, and Faust assigns equal numbers together), so after a rebalance the worker that
owns input partition P recovers P's state from the changelog like any Faust table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import faust
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from faust.streams import _current_event

from streams.config import Settings
from streams.core.actors import ActorEngine
from streams.core.changes import applying, saving_changes
from streams.core.engine import PartitionEngine

log = logging.getLogger(__name__)
CHUNK_BYTES = 512 * 1024
CODEC = "zstd-shuffled"
_SIZE = 8  # bytes of the raw length before the compressed bytes
_HEADER = np.dtype("<u8")


def dump_state(state: object) -> bytes:
    """A state's checkpoint bytes: its pickle with the numpy arrays' bytes taken out of band
    and byte-shuffled (the k-th byte of every item together, as Blosc does: timestamps, ids and
    counts share their high bytes, so zstd compresses them ~20% better), compressed whole."""
    buffers: list[pickle.PickleBuffer] = []
    raw = pickle.dumps(state, protocol=5, buffer_callback=buffers.append)
    views = [memoryview(b) for b in buffers]
    header = np.array([len(raw), len(views), *(x for v in views for x in (v.itemsize, v.nbytes))],
                      _HEADER)  # fmt: skip
    parts = [header.tobytes(), raw, *(_shuffled(v) for v in views)]
    body = b"".join(parts)
    return len(body).to_bytes(_SIZE, "big") + pa.compress(body, codec="zstd", asbytes=True)


def load_state(blob: bytes, codec: str | None) -> object:
    if codec is None:  # written before compression
        return pickle.loads(blob)
    size = int.from_bytes(blob[:_SIZE], "big")
    body = pa.decompress(blob[_SIZE:], size, codec="zstd", asbytes=True)
    if codec == "zstd":  # written before the shuffled arrays
        return pickle.loads(body)
    n_raw, n_buf = np.frombuffer(body, _HEADER, 2).tolist()
    sizes = np.frombuffer(body, _HEADER, 2 * n_buf, 16).reshape(-1, 2).tolist()
    at = 16 + 16 * n_buf
    raw, at = body[at : at + n_raw], at + n_raw
    buffers = []
    for itemsize, nbytes in sizes:
        buffers.append(_unshuffled(body[at : at + nbytes], itemsize))
        at += nbytes
    return pickle.loads(raw, buffers=buffers)


def _shuffled(view: memoryview) -> bytes:
    data = np.frombuffer(view.cast("B"), np.uint8)
    k = view.itemsize
    return data.reshape(-1, k).T.tobytes() if k > 1 else data.tobytes()


def _unshuffled(data: bytes, itemsize: int) -> npt.NDArray[np.uint8]:
    """Writable: the arrays restored on it are updated in place."""
    a = np.frombuffer(data, np.uint8)
    return a.reshape(itemsize, -1).T.copy() if itemsize > 1 else a.copy()


State = PartitionEngine | ActorEngine  # what is checkpointed per input partition
Chain = tuple[int, int]  # bytes of a partition's last whole save, of the changes saved since
# changes saved since a whole save, in times its bytes: from this one the next save is whole
# (a whole save costs a child ~8 saves of changes of a by-actor engine: these are rarer) ...
DUE_CHAIN = 2
LONGEST_CHAIN = 4  # ... or, while another state's whole save goes first, at most this one


class Save(NamedTuple):
    """A state to save, whole or (``changes``) the keys changed since its last save."""

    state: State
    changes: bool


def dump_save(save: Save) -> bytes:
    if save.changes:
        with saving_changes(save.state.tracked()):
            return dump_state(save.state)
    return dump_state(save.state)


def restore(blobs: Sequence[bytes], codec: str | None) -> State:
    """A state from its whole save and the saves of its changes since, in order; it tracks
    the keys changed from then on."""
    state = load_state(blobs[0], codec)
    for more in blobs[1:]:
        assert isinstance(state, PartitionEngine | ActorEngine)
        with applying(state.tracked()):
            state = load_state(more, codec)
    assert isinstance(state, PartitionEngine | ActorEngine)
    state.track()
    return state


class EngineStore:
    """Save and load engines through a changelog-backed Faust table (store from settings)."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.table = app.Table(
            "engine-state",
            key_type=bytes,  # bytes ⇒ raw serializers, in writes and in recovery alike
            value_type=bytes,
            partitions=settings.kafka.partitions,
            # compact eagerly: only the latest generation matters, recovery reads the rest
            extra_topic_configs={
                "segment.ms": "60000", "min.cleanable.dirty.ratio": "0.01",
                "delete.retention.ms": "60000",
            },
        )  # fmt: skip
        self.chains: dict[tuple[str, int], Chain] = {}

    def kinds(self, states: Sequence[State]) -> list[bool]:
        """Per state of one checkpoint, whether its save is of its changes: it is when its
        last save is in the changelog and the changes saved since its whole save are fewer
        than ``DUE_CHAIN`` times its bytes. A whole save costs the child several times a save
        of changes, so one checkpoint makes one whole save of a state saved before (the most
        overdue), and the others' chains grow, up to ``LONGEST_CHAIN`` times their whole
        save."""
        chains = [self.chains.get((s.topic, s.partition)) for s in states]
        out = [c is not None and c[1] < DUE_CHAIN * c[0] for c in chains]
        overdue = sorted((c[1] / max(1, c[0]), i) for i, c in enumerate(chains)
                         if c is not None and not out[i])  # fmt: skip
        for _, i in overdue[:-1]:
            base, changes = chains[i] or (0, 0)
            out[i] = changes < LONGEST_CHAIN * base
        return out

    def load(self, topic: str, partition: int, event: faust.types.EventT) -> State | None:
        """The state last saved for ``topic``'s ``partition`` (None if none); ``event`` is any
        event of that partition (Faust's stores pick the partition from the current event)."""
        _current_event.set(weakref.ref(event))
        self.chains.pop((topic, partition), None)
        raw = self.table.get(_key(topic, partition, "manifest"))
        if raw is None:
            return None
        manifest = json.loads(raw)
        gen, listed = manifest["gen"], manifest.get("changes", [])
        blobs = [self._read(topic, partition, f"{gen}", manifest["chunks"], manifest["sha256"])]
        for k, c in enumerate(listed):
            blobs.append(self._read(topic, partition, f"{gen}/c{k}", c["chunks"], c["sha256"]))
        state = restore(blobs, manifest.get("codec"))
        size, changes = len(blobs[0]), sum(map(len, blobs[1:]))
        log.info("%s:%d: state restored at offset %d (%d bytes, %d saves of changes since: %d "
                 "bytes)", topic, partition, state.offset, size, len(listed), changes)  # fmt: skip
        self.chains[(topic, partition)] = (size, changes)
        return state

    def _read(self, topic: str, partition: int, name: str, chunks: int, digest: str) -> bytes:
        parts = [self.table.get(_key(topic, partition, f"{name}/{i}")) for i in range(chunks)]
        if any(c is None for c in parts):
            raise RuntimeError(f"checkpoint {name} of partition {partition} is missing chunks")
        blob = b"".join(c for c in parts if c is not None)
        if hashlib.sha256(blob).hexdigest() != digest:
            raise RuntimeError(f"checkpoint {name} of partition {partition} is corrupt (digest)")
        return blob

    def write(self, save: Save, offset: int, blob: bytes, event: faust.types.EventT) -> None:
        """Write ``blob``, ``dump_save(save)`` covering offsets ≤ ``offset``, after the saves
        written before. Durable once the producer has flushed."""
        topic, p = save.state.topic, save.state.partition
        _current_event.set(weakref.ref(event))
        previous: dict[str, Any] = json.loads(self.table.get(_key(topic, p, "manifest")) or "{}")
        digest = hashlib.sha256(blob).hexdigest()
        if save.changes:
            base, changes = self.chains[(topic, p)]
            gen, listed = previous["gen"], previous.get("changes", [])
            n = self._chunks(topic, p, f"{gen}/c{len(listed)}", blob, 0)
            manifest = {
                **previous, "offset": offset,
                "changes": [*listed, {"chunks": n, "sha256": digest, "offset": offset}],
            }  # fmt: skip
            self.chains[(topic, p)] = (base, changes + len(blob))
        else:
            gen = 1 - int(previous.get("gen", 1))
            n = self._chunks(topic, p, f"{gen}", blob, int(previous.get(f"chunks_{gen}", 0)))
            for k, c in enumerate(previous.get(f"changes_{gen}", [])):  # an older chain's
                for i in range(c):
                    self.table.pop(_key(topic, p, f"{gen}/c{k}/{i}"), None)
            manifest = {
                **previous, "gen": gen, "chunks": n, f"chunks_{gen}": n, "offset": offset,
                "codec": CODEC, "sha256": digest, "changes": [],
            }  # fmt: skip
            self.chains[(topic, p)] = (len(blob), 0)
        manifest[f"changes_{gen}"] = [c["chunks"] for c in manifest["changes"]]
        self.table[_key(topic, p, "manifest")] = json.dumps(manifest).encode()

    def _chunks(self, topic: str, p: int, name: str, blob: bytes, stale: int) -> int:
        """Write ``blob`` in chunks under ``name``, delete those of ``stale`` beyond; how many."""
        n = max(1, -(-len(blob) // CHUNK_BYTES))
        for i, at in enumerate(range(0, max(1, len(blob)), CHUNK_BYTES)):
            self.table[_key(topic, p, f"{name}/{i}")] = blob[at : at + CHUNK_BYTES]
        for i in range(n, stale):
            self.table.pop(_key(topic, p, f"{name}/{i}"), None)
        return n


def _key(topic: str, partition: int, name: str) -> bytes:
    return f"{topic}/{partition}/{name}".encode()
