"""A background service that `rapport stack up` started and only it stops.

Each service has a run directory under ``var/`` holding its pidfile and log. A pid counts as
ours only while that process is alive and its command line names the run directory, so a
recycled pid or a service someone else started is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.errors import StackError


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64_000))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ManagedProcess:
    name: str
    run_dir: Path
    _child: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running process, or None."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return None
        if state == "Z" or str(self.run_dir) not in cmdline:
            return None
        return pid

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.run_dir,
                env=env,
                start_new_session=True,
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        self._child = proc
        return proc.pid

    def _alive(self) -> bool:
        if self._child is not None:  # started by us, maybe not yet exec'd: ask the handle
            return self._child.poll() is None
        return self.pid() is not None

    def wait_ready(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``probe()`` is true; fail with the log's tail if the process dies or hangs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return
            if not self._alive():
                raise StackError(
                    f"{what} exited during start-up; last lines of {self.logfile}:\n"
                    f"{tail(self.logfile)}"
                )
            time.sleep(0.5)
        raise StackError(
            f"{what} did not answer within {timeout:.0f} s (raise stack.start_timeout if the "
            f"machine is slow); last lines of {self.logfile}:\n{tail(self.logfile)}"
        )

    def stop(self, timeout: float = 60.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; True when something was stopped."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.killpg(pid, signal.SIGKILL)
            while self.pid() is not None:
                time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)
        return True

    def uptime(self) -> float | None:
        pid = self.pid()
        if pid is None:
            return None
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return time.time() - (boot + start_ticks / os.sysconf("SC_CLK_TCK"))
