"""A stop that hangs ends the process after ``worker.stop_timeout_seconds``, saying why."""

from __future__ import annotations

import subprocess
import sys
import time


def test_a_hanging_stop_ends_the_process_with_a_reason() -> None:
    code = ("import time\nfrom streams.worker import stop_watchdog\n"
            "stop_watchdog(0.5)\ntime.sleep(30)\n")  # fmt: skip
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=20)  # fmt: skip
    took = time.monotonic() - started
    assert out.returncode == 0
    assert 0.5 <= took < 10
    assert "the stop did not finish in 0.5 s" in out.stderr
    assert "replays what was not acknowledged" in out.stderr


def test_a_stop_that_finishes_is_not_cut_short() -> None:
    code = ("import sys\nfrom streams.worker import stop_watchdog\n"
            "stop_watchdog(5)\nprint('done')\nsys.exit(3)\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=20)  # fmt: skip
    assert (out.returncode, out.stdout.strip(), out.stderr) == (3, "done", "")
