"""A part of the worker that fails stops the worker with a reason and exit status 70 (it used to
be restarted by Faust and sit idle for good); the next start resumes from the checkpoints and
stores every event once."""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

from streams.config import load_settings
from streams.publish import Publisher
from streams.topics import ensure_topics
from streams.worker import EXIT_CRASHED, WorkerProcess
from tests.core.helpers import ev
from tests.test_spine import chdb_rows, worker_env

REPO = Path(__file__).resolve().parents[1]
# loaded by the worker's interpreter at start (``sitecustomize``): the spam rules fail on the
# events of one account, like a bug would
FAULT = """
from streams.core import actors

judge = actors.ActorEngine.process

def process(self, messages):
    if any(e["actor"] == "boom" for m in messages for e in m.events):
        raise RuntimeError("injected fault")
    return judge(self, messages)

actors.ActorEngine.process = process
"""


def test_a_failing_agent_stops_the_worker_and_a_restart_resumes(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    url = f"chdb://{tmp_path / 'chdb'}"
    env = {**worker_env(kafka_bootstrap, url, run_id, tmp_path / "var"),
           "RAPPORT_WORKER__STOP_TIMEOUT_SECONDS": "10"}  # fmt: skip
    settings = load_settings(env=env, cwd=tmp_path)
    ensure_topics(settings)
    events = [ev(f"c{i}", f"u{i % 17}", f"u{i % 11}", 1_600_000_000_000 + i * 1000)
              for i in range(300)]  # fmt: skip
    events.insert(150, ev("fault", "boom", "u1", 1_600_000_150_500))
    with Publisher(settings) as publisher:
        for e in events:
            publisher.event(e)
        publisher.end_of_input()

    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(textwrap.dedent(FAULT))
    log = tmp_path / "worker.log"
    faulty = WorkerProcess(settings, {**env, "PYTHONPATH": f"{inject}:{REPO}"}, log).start()
    assert faulty.proc is not None
    try:
        code = faulty.proc.wait(timeout=150)
    except subprocess.TimeoutExpired as exc:
        faulty.stop()
        raise AssertionError(f"no stop on the fault:\n{log.read_text()[-3000:]}") from exc
    text = log.read_text()
    assert code == EXIT_CRASHED, text[-3000:]
    assert "the agent reading by-actor failed: RuntimeError: injected fault" in text
    assert "exit status 70: the next start resumes from the last checkpoints" in text

    started = time.monotonic()
    worker = WorkerProcess(settings, env, log).start()
    try:
        worker.wait_drained([settings.topic("interactions"), settings.topic("by-actor")], 180)
    finally:
        assert worker.stop() == 0
    assert time.monotonic() - started < 200
    sql = "SELECT count(), uniqExact(event_id) FROM rapport.interactions"
    ((rows, unique),) = chdb_rows(url, sql)
    assert rows == unique == len(events)
