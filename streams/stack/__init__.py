"""The local stack without Docker: `rapport stack up | down | status`.

Kafka always; the ClickHouse server when its binary is installed (or when named explicitly).
A second ``up`` is harmless and ``down`` stops only what ``up`` started.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from streams.config import Settings
from streams.errors import StackError
from streams.stack.clickhouse import ClickHouseServerService
from streams.stack.kafka import KafkaService

Service = KafkaService | ClickHouseServerService
NAMES = ("kafka", "clickhouse")


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running | stopped | not installed
    address: str
    pid: int | None
    uptime: float | None
    log: str


def services(settings: Settings, names: tuple[str, ...] = ()) -> list[Service]:
    """The services to act on: those named, or all that are installed."""
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise StackError(f"unknown service {unknown[0]!r}; the stack has: {', '.join(NAMES)}")
    every: list[Service] = [KafkaService(settings), ClickHouseServerService(settings)]
    if names:
        return [s for s in every if s.name in names]
    return [s for s in every if s.installed()]


def up(settings: Settings, names: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Start each service in turn, yielding (name, what happened) as it goes."""
    for s in services(settings, names):
        yield s.name, s.up()


def down(settings: Settings, names: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    for s in reversed(services(settings, names or NAMES)):
        yield s.name, "stopped" if s.down() else "was not running"


def status(settings: Settings) -> list[ServiceStatus]:
    result = []
    for s in services(settings, NAMES):
        pid = s.process.pid()
        if not s.installed():
            state = "not installed"
        elif pid is None:
            state = "stopped"
        else:
            state = "running" if s.ready() else "starting (not answering yet)"
        result.append(
            ServiceStatus(s.name, state, s.address, pid, s.process.uptime(), str(s.process.logfile))
        )
    return result
