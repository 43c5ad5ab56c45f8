"""The worker's log lines carry the run and, inside a partition's processing, the partition;
SIGUSR1 logs where every task waits."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import os
import signal
from collections.abc import Iterator
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from streams import logs
from streams.config import load_settings
from streams.errors import ConfigError


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def emit(log_format: str) -> list[str]:
    out = io.StringIO()
    with redirect_stderr(out):
        logging.config.dictConfig(logs.config("run-7", log_format, "info"))
        log = logging.getLogger("rapport.test")
        log.info("outside")
        token = logs.partition.set(3)
        try:
            log.warning("inside %s", "p3")
        finally:
            logs.partition.reset(token)
    return out.getvalue().splitlines()


def test_json_lines_have_run_and_partition(restore_logging: None) -> None:
    outside, inside = (json.loads(line) for line in emit("json"))
    assert (outside["run"], outside["partition"], outside["message"]) == ("run-7", None, "outside")
    assert (inside["run"], inside["partition"], inside["message"]) == ("run-7", 3, "inside p3")
    assert inside["level"] == "WARNING" and inside["logger"] == "rapport.test"


def test_text_lines_have_run_and_partition(restore_logging: None) -> None:
    outside, inside = emit("text")
    assert "[run=run-7 p=-]" in outside and outside.endswith("rapport.test: outside")
    assert "[run=run-7 p=3]" in inside and "[WARNING]" in inside


def test_log_format_is_a_setting(tmp_path: Path) -> None:
    env = {"RAPPORT_WORKER__LOG_FORMAT": "json"}
    assert load_settings(env=env, cwd=tmp_path).worker.log_format == "json"
    assert load_settings(env={}, cwd=tmp_path).worker.log_format == "text"
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(env={"RAPPORT_WORKER__LOG_FORMAT": "xml"}, cwd=tmp_path)


def test_sigusr1_logs_every_task_down_its_chain_of_awaits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def inner(ready: asyncio.Event) -> None:
        await ready.wait()

    async def outer(ready: asyncio.Event) -> None:
        await inner(ready)

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(outer(ready), name="the-waiter")
        logs.dump_tasks_on_sigusr1(lambda: "consumer state here")
        await asyncio.sleep(0)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.sleep(0.1)  # the handler runs in the loop
        ready.set()
        await task

    with caplog.at_level(logging.WARNING, "streams.tasks"):
        asyncio.run(main())
    dump = next(r.getMessage() for r in caplog.records if "the-waiter" in r.getMessage())
    assert dump.index(" in outer") < dump.index(" in inner") < dump.index(" in wait")
    assert "state: consumer state here" in caplog.text
