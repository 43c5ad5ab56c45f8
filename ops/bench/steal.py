"""How much of the machine a virtual machine's hypervisor took: CPU steal, from /proc/stat.

On this 2-core VM the hypervisor ran other guests for 0.56 of a core on average during an
alert bench run, up to 1.3 cores for seconds at a time (session 16), while the worker's event
loop thread sat runnable without running: its slowest bursts (5–6.5 s) fell in those seconds,
those of a steal-free stretch took 0.3 s. A latency figure means little without the steal it
was measured under, so the benches print it. Linux only (elsewhere: no samples, no figures).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from typing import Self

STEAL = 7  # field of the aggregate ``cpu`` line (user nice system idle iowait irq softirq steal)


def steal_seconds() -> float | None:
    """CPU seconds stolen from this machine since boot (all cores), None where unknown."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    return int(fields[1 + STEAL]) / os.sysconf("SC_CLK_TCK") if len(fields) > 1 + STEAL else None


class Sampler:
    """Calls ``sample`` every ``every`` seconds in a daemon thread (until it returns None),
    keeping its figures with their ``time.time()``; ``around(t0, t1)``: the indexes of the
    samples that bracket an interval."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.times: list[float] = []
        self.samples: list[tuple[float, ...]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> tuple[float, ...] | None:
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            figures = self.sample()
            if figures is None:
                return
            self.times.append(time.time())
            self.samples.append(figures)
            if self._stop.wait(self.every):
                return

    def around(self, t0: float, t1: float) -> tuple[int, int] | None:
        """The samples just before ``t0`` and just after ``t1`` (at least two apart by one);
        None without two samples."""
        if len(self.times) < 2:
            return None
        lo = max(0, bisect.bisect_right(self.times, t0) - 1)
        hi = min(len(self.times) - 1, max(lo + 1, bisect.bisect_left(self.times, t1)))
        return lo, hi


class StealSampler(Sampler):
    """Samples steal every ``every`` seconds; ``cores(t0, t1)``: the mean number of cores
    stolen between two ``time.time()`` instants."""

    def __init__(self, every: float = 0.25) -> None:
        super().__init__(every)

    def sample(self) -> tuple[float, ...] | None:
        stolen = steal_seconds()
        return None if stolen is None else (stolen,)

    def cores(self, t0: float, t1: float) -> float | None:
        """Mean cores stolen in ``[t0, t1]``, from the samples around it (None: no samples)."""
        span = self.around(t0, t1)
        if span is None:
            return None
        lo, hi = span
        return (self.samples[hi][0] - self.samples[lo][0]) / (self.times[hi] - self.times[lo])
