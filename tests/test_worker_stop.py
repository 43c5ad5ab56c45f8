"""A stop that hangs ends the process after ``worker.stop_timeout_seconds``, saying why; a
stop that can finish saves and acknowledges everything first."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from streams.publish import Publisher
from streams.worker import consumer_lag
from tests.core.helpers import ev
from tests.live_worker import start_worker
from tests.test_metrics import scrape, total
from tests.test_spine import chdb_rows


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


def test_a_stop_saves_and_acknowledges_what_was_taken_then_exits(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    """Checkpoints and acks far apart (only the stop can save): the stop itself saves every
    state and acknowledges every message taken, so it ends on its own and nothing is left to
    replay (it used to wait for acks no checkpoint would give until the stop timeout)."""
    settings, worker, base = start_worker(kafka_bootstrap, run_id, tmp_path, {
        "RAPPORT_WORKER__CHECKPOINT_SECONDS": "3600", "RAPPORT_WORKER__BATCH_SECONDS": "3600",
        "RAPPORT_WORKER__STOP_TIMEOUT_SECONDS": "40",
    })  # fmt: skip
    topic = settings.topic("interactions")
    n = 1_200
    start = int(time.time() * 1000) - 3_600_000
    with Publisher(settings) as publisher:  # no end-of-input marker: nothing pauses the input
        for i in range(n):
            publisher.event(ev(f"{run_id}-{i}", f"u{i % 17}", f"u{i % 11}", start + i * 1000))
    deadline = time.monotonic() + 90
    while total(scrape(base), "rapport_events_in_total", topic=topic) < n:
        assert worker.alive() and time.monotonic() < deadline, "the worker did not take them all"
        time.sleep(0.3)
    assert consumer_lag(settings, [topic]) > 0  # taken, not acknowledged: no checkpoint yet

    code = worker.stop()
    log = (tmp_path / "worker.log").read_text()
    assert code == 0, log[-3000:]
    assert "the stop did not finish" not in log
    assert consumer_lag(settings, [topic]) == 0
    sql = "SELECT count(), uniqExact(event_id) FROM rapport.interactions"
    assert chdb_rows(f"chdb://{tmp_path / 'chdb'}", sql) == [[n, n]]
