"""Keeps embedded ClickHouse's background threads behind the worker's event loop.

chDB runs ClickHouse's merges, moves and schedule pools as threads of the worker's own process,
at its priority: on a 2-core machine at half load the event loop thread was seen runnable but
getting 0.16–0.44 of a core while ``MergeMutate`` threads took up to 0.4 (session 15; much of
it turned out to be the hypervisor's CPU steal, and no change of the event → alert p99 could be
shown against it). Linux gives each thread its own nice value, so these threads are reniced —
raising a nice value needs no privilege; inserts take as long as before (nothing the caller
waits for runs niced). ClickHouse starts pool threads on demand, so the threads are looked for
again every ``every_seconds`` (cheap: a listing of /proc/self/task). Threads that run a query
the worker waits for (``ThreadPool``, the caller's own) keep their priority: slowing them would
slow the loop. Elsewhere than Linux this does nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
NICENESS = 10
# thread names (``comm``) ClickHouse gives its background pools
BACKGROUND = ("MergeMutate", "Move", "Fetch", "Common", "BgSchPool", "BgStrmSchPool",
              "BgBufSchPool", "BgDistSchPool", "BgMBSchPool")  # fmt: skip
TASKS = "/proc/self/task"


class BackgroundThreads:
    """Renices this process's ClickHouse background threads; call ``tend`` now and then."""

    def __init__(
        self, every_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every_seconds = every_seconds
        self.clock = clock
        self.last: float | None = None
        self.niced: set[int] = set()  # thread ids already reniced (ids of exited ones pruned)

    def tend(self) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.every_seconds:
            return
        self.last = now
        try:
            tids = {int(t) for t in os.listdir(TASKS)}
        except OSError:
            return  # no /proc: not Linux
        self.niced &= tids
        for tid in tids - self.niced:
            try:
                with open(f"{TASKS}/{tid}/comm") as f:
                    name = f.read().strip()
                if name.startswith(BACKGROUND):
                    os.setpriority(os.PRIO_PROCESS, tid, NICENESS)
                    self.niced.add(tid)
            except OSError as exc:  # exited meanwhile, or renicing refused
                log.debug("cannot renice thread %d: %s", tid, exc)
