"""Run the Faust worker in the foreground, or supervise one as a child process.

The child form serves the demo, ``analyze`` and the tests: start it, wait until its consumer
group has committed everything on the input topics (commits follow stores, so committed means
stored), stop it cleanly or kill it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from streams import kafka_clients
from streams.config import Settings
from streams.errors import RapportError

EXIT_CRASHED = 70  # EX_SOFTWARE: a part of the worker failed (its log says which and why)


def stop_watchdog(seconds: float, code: Callable[[], int] = lambda: 0) -> None:
    """End the process if it is still here ``seconds`` from now (a stop that hangs). Exit code
    ``code()``, 0 unless the worker crashed: what was not acknowledged is replayed at the next
    start, nothing is lost."""

    def give_up() -> None:
        print(f"rapport worker: the stop did not finish in {seconds:g} s (Faust waits for "
              "messages no agent will take); exiting, the next start replays what was not "
              "acknowledged", file=sys.stderr, flush=True)  # fmt: skip
        os._exit(code())

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


def group_id(settings: Settings) -> str:
    return f"{settings.kafka.topic_prefix}-worker"


def run_foreground(settings: Settings, loglevel: str = "info") -> None:
    """Build the app, install the agents and run until SIGTERM/SIGINT, or until a part fails:
    then stop (crash-only) and exit with ``EXIT_CRASHED``, for a supervisor (systemd, Compose's
    restart policy, Kubernetes) to start it again from the last checkpoints."""
    from faust.worker import Worker

    from sinks.backends import connect
    from sinks.migrations import migrate
    from streams import agents, logs, web
    from streams.app import create_app
    from streams.topics import ensure_changelog, ensure_topics

    ensure_topics(settings)
    app = create_app(settings)
    backend = connect(settings.clickhouse_target)
    migrate(backend, settings.clickhouse.cluster or None)
    crashed: list[str] = []

    def crash(reason: str) -> None:
        if not crashed:
            crashed.append(reason)
            print(f"rapport worker: {reason}; stopping, exit status {EXIT_CRASHED}: the "
                  "next start resumes from the last checkpoints", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

    changelog = agents.install(app, settings, backend, crash).store.table.changelog_topic
    ensure_changelog(settings, changelog.get_topic_name(), dict(changelog.config or {}))
    web.install(app, settings, backend)
    log_format = settings.worker.log_format
    stop_seconds = settings.worker.stop_timeout_seconds

    class BoundedStopWorker(Worker):
        """Faust's worker, whose stop on a signal takes at most ``stop_timeout_seconds``."""

        def _schedule_shutdown(self, sig: signal.Signals) -> None:
            if not self._signal_stop_time:
                stop_watchdog(stop_seconds, lambda: EXIT_CRASHED if crashed else 0)
            super()._schedule_shutdown(sig)

    code = 0
    try:
        BoundedStopWorker(
            app, loglevel=loglevel, redirect_stdouts=False,
            logging_config=logs.config(settings.kafka.topic_prefix, log_format, loglevel),
            quiet=log_format == "json",  # the banner and spinner are not JSON lines
        ).execute_from_commandline()  # fmt: skip
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        backend.close()
    if crashed:
        code = EXIT_CRASHED
    # Leave without running native libraries' exit-time destructors: chDB's can crash when
    # client threads (Kafka, aiohttp) are still winding down, turning a clean stop into SIGSEGV.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def consumer_lag(settings: Settings, topics: Iterable[str], timeout: float = 60.0) -> int:
    """Messages on ``topics`` not yet committed by the worker's consumer group.

    Retries while the broker cannot tell yet (a fresh broker's group coordinator is loading).
    """
    from kafka import TopicPartition
    from kafka.errors import RetriableError

    admin = kafka_clients.admin(settings)
    consumer = kafka_clients.consumer(settings)
    group = group_id(settings)
    deadline = time.monotonic() + timeout
    try:
        partitions = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not partitions:
            return 0
        ends = consumer.end_offsets(partitions)
        while True:
            try:
                committed = admin.list_group_offsets({group: partitions}).get(group, {})
                break
            except RetriableError as exc:
                if time.monotonic() > deadline:
                    raise RapportError(
                        f"Kafka cannot report offsets of group {group}: {exc}"
                    ) from exc
                time.sleep(0.5)
        lag = 0
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(0, ends[tp] - done)
        return lag
    finally:
        consumer.close()
        admin.close()


class WorkerProcess:
    """``rapport worker`` as a child process with its log in a file."""

    def __init__(self, settings: Settings, env: dict[str, str], log: Path) -> None:
        self.settings = settings
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env={**os.environ, **self.env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_drained(self, topics: Iterable[str], timeout: float = 120.0) -> None:
        """Block until the group has committed every message on ``topics``."""
        topics = list(topics)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RapportError(f"the worker exited; see its log {self.log}")
            if consumer_lag(self.settings, topics) == 0:
                return
            time.sleep(0.5)
        raise RapportError(f"the worker did not drain {topics} in {timeout:.0f} s; see {self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
