"""Checkpoint bytes: made by a forked child (``streams.agents.forked``), compressed
(``streams.agents.checkpoints``)."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import threading

import numpy as np
import pyarrow as pa
import pytest

from streams.agents.checkpoints import CODEC, dump_state, load_state
from streams.agents.forked import ForkedPickles


def test_the_pickles_hold_the_objects_as_they_were_at_the_fork() -> None:
    counts = {i: i * i for i in range(50_000)}
    big = list(range(300_000))

    async def run() -> list[bytes]:
        pickles = ForkedPickles([counts, big])
        assert pickles.pid is not None and pickles.pid != os.getpid()
        counts[-1] = 1  # the parent goes on; the child saw the objects before this
        big.clear()
        return await pickles.result()

    blobs = asyncio.run(run())
    assert pickle.loads(blobs[0]) == {i: i * i for i in range(50_000)}
    assert pickle.loads(blobs[1]) == list(range(300_000))


def test_the_childs_cpu_and_copied_pages_are_told() -> None:
    """Pickling touches every object, so the child copies the pages holding them (each write
    to a reference count faults): 2M ints are ~56 MB, ~14k pages."""
    numbers = [i * 7 for i in range(2_000_000)]
    pickles = ForkedPickles([numbers])
    asyncio.run(pickles.result())
    assert pickles.cpu_seconds > 0.01
    assert pickles.faults > 5_000


def test_a_child_that_cannot_pickle_fails_the_checkpoint_with_its_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    async def run() -> list[bytes]:
        return await ForkedPickles([{"fine": 1}, {"lock": threading.Lock()}]).result()

    with pytest.raises(RuntimeError, match=r"exit status 1, 1 of 2 pickles"):
        asyncio.run(run())
    assert "cannot pickle '_thread.lock' object" in capfd.readouterr().err


def test_where_fork_is_refused_the_objects_are_pickled_in_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse() -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", refuse)
    state = {"a": [1, 2, 3]}
    with caplog.at_level(logging.WARNING):
        pickles = ForkedPickles([state])
    state["a"].append(4)
    assert pickles.pid is None
    assert [pickle.loads(b) for b in asyncio.run(pickles.result())] == [{"a": [1, 2, 3]}]
    assert "cannot fork to pickle" in caplog.text
    assert pickles.faults == 0 and pickles.cpu_seconds >= 0  # no child, no copy


def test_checkpoint_bytes_are_compressed_and_older_plain_pickles_still_load() -> None:
    state = {"counts": list(range(100_000)), "names": ["account"] * 10_000}
    blob = dump_state(state)
    plain = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) < 0.8 * len(plain)
    assert load_state(blob, CODEC) == state
    assert load_state(plain, None) == state  # a manifest without a codec: written before


def test_arrays_come_back_equal_and_writable_and_zstd_checkpoints_still_load() -> None:
    rng = np.random.default_rng(2)
    ts = 1_767_000_000_000 + rng.integers(0, 86_400_000, 50_000)  # ms within one day
    state = {"ts": ts, "ids": rng.integers(0, 20_000, 50_000).astype(np.int32),
             "flags": ts % 2 == 0, "grid": np.arange(12.0).reshape(3, 4), "text": "x"}  # fmt: skip
    back = load_state(dump_state(state), CODEC)
    assert back.keys() == state.keys() and back["text"] == "x"
    for k in ("ts", "ids", "flags", "grid"):
        assert back[k].dtype == state[k].dtype and (back[k] == state[k]).all()
    back["ts"][0] = 1  # engines update their arrays in place after a restore
    # byte-shuffled, the timestamps' high bytes compress away (plain zstd: 16% more bytes)
    plain = pickle.dumps(state, protocol=5)
    older = len(plain).to_bytes(8, "big") + pa.compress(plain, codec="zstd", asbytes=True)
    assert len(dump_state(state)) < 0.9 * len(older)
    assert (load_state(older, "zstd")["ts"] == ts).all()  # a checkpoint from before shuffling


def test_a_forked_child_dumps_with_the_given_function() -> None:
    state = {"a": list(range(1000))}
    (blob,) = asyncio.run(ForkedPickles([state], dump_state).result())
    assert load_state(blob, CODEC) == state
