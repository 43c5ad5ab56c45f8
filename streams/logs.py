"""The worker's log lines, as text or one JSON object a line (``worker.log_format``).

Every line carries the run (the topic prefix: several runs share a broker and often a log
collector) and the input partition being processed, when there is one. The partition is a
context variable: each Faust agent runs in its own asyncio task, so what one agent sets is
never seen on another's lines.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import time
import types
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

partition: ContextVar[int | None] = ContextVar("rapport_partition", default=None)
TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] [run=%(run)s p=%(partition)s] " \
    "%(name)s: %(message)s"  # fmt: skip


class RunContext(logging.Filter):
    """Stamps every record with the run and the current partition (``-`` when none)."""

    def __init__(self, run: str) -> None:
        super().__init__()
        self.run = run

    def filter(self, record: logging.LogRecord) -> bool:
        record.run = self.run
        p = partition.get()
        record.partition = "-" if p is None else p
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, run, partition."""

    def format(self, record: logging.LogRecord) -> str:
        p = getattr(record, "partition", "-")
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "run": getattr(record, "run", None),
            "partition": None if p == "-" else p,
            "pid": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def config(run: str, log_format: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the worker (Faust passes it on to ``mode``)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"run": {"()": RunContext, "run": run}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["run"],
                "formatter": "default",
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


def dump_tasks_on_sigusr1(state: Callable[[], str] | None = None) -> None:
    """``kill -USR1 <worker pid>`` logs where every asyncio task of the worker waits, down the
    chain of awaits, and ``state()``: for a worker that looks stuck (call from the running
    loop)."""
    log = logging.getLogger("streams.tasks")

    def dump() -> None:
        tasks = asyncio.all_tasks()
        for task in sorted(tasks, key=lambda t: t.get_name()):
            log.warning("task %s:\n%s", task.get_name(), "\n".join(_awaits(task.get_coro())))
        log.warning("%d asyncio tasks dumped", len(tasks))
        if state is not None:
            log.warning("state: %s", state())
        # agents' coroutines hide behind Faust's wrappers: find ours among live coroutines
        for obj in gc.get_objects():
            if isinstance(obj, types.CoroutineType) and obj.cr_frame is not None and (
                "/streams/" in obj.cr_frame.f_code.co_filename
            ):
                log.warning("coroutine %s:\n%s", obj.__qualname__, "\n".join(_awaits(obj)))

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)


def _awaits(coro: Any) -> list[str]:
    """``file:line in function`` of each coroutine or async generator down the await chain."""
    lines: list[str] = []
    while coro is not None and len(lines) < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(
            coro, "gi_frame", None
        )
        if frame is None:
            lines.append(f"  {coro!r}"[:300])
            break
        lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = (getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
                or getattr(coro, "gi_yieldfrom", None))  # fmt: skip
    return lines
