"""What a worker process was doing, second by second, from /proc: so that a slow alert can be
lined up with what held it.

Sampled every ``every`` seconds in a daemon thread (Linux only; elsewhere: no samples): its
event-loop (main) thread's user and system CPU, minor page faults and time spent runnable but
not running (``schedstat``); the CPU of its other threads (chDB's, the Kafka consumer's); its
checkpoint children (alive or not, their CPU); and how many of the machine's cores were busy.
Session 18 (alert bench, 2,833 events/s): every burst slower than 1 s waited while a checkpoint
child lived; the loop thread then took 50–90k minor faults a second (5–10k otherwise: each first
write to a page after the fork copies it), 0.15–0.25 of a core in system time (0.01–0.03), and
the machine had 1.9 of its 2 cores busy (1.0 otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

from steal import Sampler

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# cumulative figures per sample; ``child`` is 1 while a checkpoint child lives (a share, not a
# rate, once averaged), ``busy`` CPU seconds of the whole machine
FIGURES = ("loop_user", "loop_system", "loop_faults", "loop_waiting", "threads", "children",
           "child", "busy")  # fmt: skip


def _stat(path: Path) -> list[str]:
    return path.read_text().rsplit(")", 1)[1].split()


class WorkerSampler(Sampler):
    """Samples process ``pid`` every ``every`` seconds; ``rates(t0, t1)``: per-second figures
    between two ``time.time()`` instants (``child``: the share of samples with a child)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(every)
        self.proc = Path(f"/proc/{pid}")
        self.main = self.proc / "task" / str(pid)
        self.child_seen = 0

    def sample(self) -> tuple[float, ...] | None:
        try:
            loop, whole = _stat(self.main / "stat"), _stat(self.proc / "stat")
            waiting = int((self.main / "schedstat").read_text().split()[1]) / 1e9
            kids = (self.main / "children").read_text().split()
            with open("/proc/stat") as f:
                cpu = [int(x) for x in f.readline().split()[1:]]
        except (OSError, IndexError, ValueError):
            return None  # the worker is gone (or no /proc)
        user, system = int(loop[11]) / TICK, int(loop[12]) / TICK
        threads = (int(whole[11]) + int(whole[12])) / TICK - user - system
        live = 0.0
        for kid in kids:
            try:
                k = _stat(Path(f"/proc/{kid}/stat"))
                live += (int(k[11]) + int(k[12])) / TICK
            except (OSError, IndexError):
                pass  # ended meanwhile: counted among the ended below, next sample
        ended = (int(whole[13]) + int(whole[14])) / TICK
        self.child_seen += 1 if kids else 0
        busy = (sum(cpu[:8]) - cpu[3] - cpu[4]) / TICK  # all but idle and iowait
        return (user, system, int(loop[7]), waiting, threads, ended + live,
                self.child_seen * self.every, busy)  # fmt: skip

    def rates(self, t0: float, t1: float) -> dict[str, float] | None:
        """Per second over ``[t0, t1]`` (widened to the samples around it): each figure's
        increase over the time; None without two samples."""
        span = self.around(t0, t1)
        if span is None:
            return None
        lo, hi = span
        a, b = self.samples[lo], self.samples[hi]
        return {name: (b[i] - a[i]) / (self.times[hi] - self.times[lo])
                for i, name in enumerate(FIGURES)}  # fmt: skip
