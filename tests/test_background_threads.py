"""chDB's background threads are reniced; the caller's threads and query threads are not."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sinks import background
from sinks.backends import ChdbBackend
from sinks.background import BackgroundThreads
from sinks.url import ClickHouseTarget
from tests.conftest import chdb_dir

PR_SET_NAME = 15


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


@contextmanager
def thread_named(name: str) -> Iterator[int]:
    """A thread whose kernel name (``comm``) is ``name``, alive inside the block; its id."""
    named, stop = threading.Event(), threading.Event()
    tids: list[int] = []

    def run() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, name.encode(), 0, 0, 0)
        tids.append(threading.get_native_id())
        named.set()
        stop.wait()

    thread = threading.Thread(target=run)
    thread.start()
    named.wait()
    try:
        yield tids[0]
    finally:
        stop.set()
        thread.join()
        # a joined thread's kernel task may be listed a moment longer: wait until it is gone
        deadline = time.monotonic() + 5.0
        while os.path.exists(f"/proc/self/task/{tids[0]}") and time.monotonic() < deadline:
            time.sleep(0.001)


def test_background_threads_reniced_others_kept_and_new_ones_found_on_the_next_beat() -> None:
    now = [0.0]
    threads = BackgroundThreads(every_seconds=5.0, clock=lambda: now[0])
    own = nice_of(threading.get_native_id())
    with thread_named("MergeMutate") as merge, thread_named("ThreadPool") as query:
        threads.tend()
        assert nice_of(merge) == background.NICENESS
        assert nice_of(query) == own
        assert nice_of(threading.get_native_id()) == own
        with thread_named("BgSchPool") as later:
            now[0] = 4.9
            threads.tend()  # not yet: the listing is done every 5 s
            assert nice_of(later) == own
            now[0] = 5.0
            threads.tend()
            assert nice_of(later) == background.NICENESS
    now[0] = 10.0  # exited threads are forgotten on the next beat
    threads.tend()
    assert not threads.niced & {merge, later}


def test_chdb_merge_threads_reniced_by_the_backend_inserts(run_id: str) -> None:
    database = f"bg_{run_id}"
    backend = ChdbBackend(ClickHouseTarget(kind="chdb", path=chdb_dir(), database=database))
    try:
        own = nice_of(threading.get_native_id())
        backend.execute("CREATE TABLE t (a UInt64) ENGINE = MergeTree ORDER BY a")
        for i in range(20):  # parts to merge
            backend.insert("t", ["a"], [(i,), (i + 100,)])
        backend._background.last = None  # the next insert looks again, whatever the time
        backend.insert("t", ["a"], [(0,)])
        names = {}
        for tid in map(int, os.listdir("/proc/self/task")):
            with open(f"/proc/self/task/{tid}/comm") as f:
                names[tid] = f.read().strip()
        merges = [tid for tid, name in names.items() if name.startswith("MergeMutate")]
        assert merges, f"no MergeMutate thread among {sorted(set(names.values()))}"
        assert {nice_of(tid) for tid in merges} == {background.NICENESS}
        assert nice_of(threading.get_native_id()) == own
        assert backend.execute("SELECT count() FROM t") == [(41,)]
    finally:
        backend.execute(f"DROP DATABASE IF EXISTS {database}")
        backend.close()
