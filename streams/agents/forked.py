"""Pickles made by a forked child: a checkpoint holds the event loop for a fork, not a pickle.

Pickling the engines on the event loop held it 0.2–0.5 s a save (a few MB of small objects),
time in which no event was judged and no alert sent. ``os.fork`` copies the worker's page
tables (milliseconds; the pages themselves are shared copy-on-write), so the child sees the
objects exactly as they were at the fork, pickles them on another core and streams the bytes
back through a pipe while the worker goes on with new input. A child that fails exits non-zero
with its traceback on the worker's stderr, and ``result`` raises. Where the system refuses the
fork (no ``os.fork``, or no memory to map the copy) the objects are pickled in-process.
``dump`` makes an object's bytes (default: its pickle; checkpoints also compress them).
``cpu_seconds`` and ``faults`` say what the pickling cost once ``result`` returned: the child's
CPU (user and system) and its minor page faults, each a page it copied from the worker's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import resource
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Generic, NoReturn, TypeVar

log = logging.getLogger(__name__)
_SIZE = 8  # bytes of the length before each pickle in the pipe
T = TypeVar("T")
# the child yields the CPU to the worker (and the broker, on a small machine): its seconds of
# pickling made the alerts of those seconds wait (event → alert p99 1.5–2.5 s at 2.5k events/s)
CHILD_NICENESS = 10


def pickled(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


class ForkedPickles(Generic[T]):
    """``objects`` pickled as they are at construction, by a child process when possible."""

    def __init__(self, objects: Sequence[T], dump: Callable[[T], bytes] = pickled) -> None:
        self.count = len(objects)
        self.pid: int | None = None
        self.done: list[bytes] | None = [] if not objects else None
        self.cpu_seconds = 0.0
        self.faults = 0
        if not objects:
            return
        read, write = os.pipe()
        try:
            pid = os.fork()
        except (AttributeError, OSError) as exc:
            os.close(read)
            os.close(write)
            log.warning("cannot fork to pickle (%s); pickling on the event loop", exc)
            started = time.process_time()
            self.done = [dump(o) for o in objects]
            self.cpu_seconds = time.process_time() - started
            return
        if pid == 0:
            os.close(read)
            _child(objects, dump, write)
        os.close(write)
        self.pid, self.fd = pid, read

    async def result(self) -> list[bytes]:
        """The pickles, in order (waits for the child)."""
        if self.done is None:
            assert self.pid is not None
            blobs, usage = await asyncio.to_thread(_collect, self.fd, self.pid, self.count)
            self.cpu_seconds = usage.ru_utime + usage.ru_stime
            self.faults = usage.ru_minflt
            self.done = blobs
        return self.done


def _child(objects: Sequence[T], dump: Callable[[T], bytes], fd: int) -> NoReturn:
    """Pickle and write; never return into the parent's code (``os._exit``: no cleanup, no
    flush of buffers inherited from the parent)."""
    code = 1
    try:
        gc.disable()  # pickling makes no cycles; a collection would only touch shared pages
        os.nice(CHILD_NICENESS)
        signal.set_wakeup_fd(-1)  # a signal to the child must not wake the parent's loop
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        with open(fd, "wb") as out:
            for obj in objects:
                blob = dump(obj)
                out.write(len(blob).to_bytes(_SIZE, "big"))
                out.write(blob)
        code = 0
    except BaseException:
        os.write(2, f"pickling child {os.getpid()}: {traceback.format_exc()}".encode())
    finally:
        os._exit(code)


def _collect(fd: int, pid: int, count: int) -> tuple[list[bytes], resource.struct_rusage]:
    blobs: list[bytes] = []
    with open(fd, "rb") as pipe:
        for _ in range(count):
            head = pipe.read(_SIZE)
            size = int.from_bytes(head, "big")
            blob = pipe.read(size)
            if len(head) < _SIZE or len(blob) < size:
                break
            blobs.append(blob)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or len(blobs) < count:
        raise RuntimeError(
            f"the child process {pid} pickling a checkpoint failed (exit status {code}, "
            f"{len(blobs)} of {count} pickles); its traceback is in the worker's log"
        )
    return blobs, usage
