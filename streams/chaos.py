"""``make chaos``: the pipeline under faults gives the figures of an undisturbed run.

Each scenario processes the same simulated workload in a fresh run (own topics and database,
``streams.analyze.start_run``) while something goes wrong at points of its progress: workers
SIGKILLed and restarted, workers added and removed (rebalances), the broker restarted, the
ClickHouse server down for a minute, every event published twice. Its raw rows, aggregates and
alerts are then compared with one uninterrupted worker's. Faults that stop services use
private ones (own ports and directories), never the shared local stack.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from streams import kafka_clients
from streams.analyze import drop_run, free_port, kill_and_restart, start_run
from streams.config import Settings, load_settings
from streams.errors import RapportError
from streams.query import LocalQuerier
from streams.reports import Reports, Scope
from streams.simulate import Simulation, import_runs, simulate
from streams.stack.clickhouse import ClickHouseServerService
from streams.stack.kafka import KafkaService
from streams.worker import WorkerProcess, consumer_lag

EVENTS_PER_ACCOUNT_DAY = 15  # what the simulator produces, to size a workload by events
DAYS = 2.0

# Order-independent checksums of the emitted aggregates (FINAL collapses replays).
_WINDOWS = ("count(), sum(cityHash64(account, window_ms, window_start, kafka_partition, "
            "requester_tier, inbound, answered, pending, unanswered, answered_15m, "
            "answered_1h, answered_24h, answered_in_thread, conversation_starts, late)) "
            "FROM {db}.window_aggregates FINAL WHERE {cond}")  # fmt: skip
AGGREGATE_SQL = {
    "window_aggregates": _WINDOWS.replace("{cond}", "requester_tier = 'all'"),
    "window_aggregates by requester tier": _WINDOWS.replace("{cond}", "requester_tier != 'all'"),
    "pair_counts": "count(), sum(cityHash64(window_ms, window_start, src, dst, n)) "
    "FROM {db}.pair_counts FINAL",
    "tier_mixing": "count(), sum(cityHash64(window_ms, window_start, kafka_partition, src_tier, "
    "dst_tier, n)) FROM {db}.tier_mixing FINAL",
}


def workload(events: int, seed: int) -> Simulation:
    """A simulated network of about ``events`` interactions over two days."""
    return simulate(max(50, round(events / (EVENTS_PER_ACCOUNT_DAY * DAYS))), DAYS, seed)


@dataclass
class Run:
    """A fresh run: its settings and its workers (the first one started by ``start_run``)."""

    settings: Settings
    workers: list[WorkerProcess]
    published: int = 0  # events, every copy
    messages: int = 0  # input messages: snapshots, envelopes and end markers, every copy
    peak_rss_mb: float | None = None

    @classmethod
    def start(cls, settings: Settings) -> Run:
        settings, worker = start_run(settings, "chaos", lambda _: None)
        return cls(settings, [worker])

    def publish(self, sim: Simulation, copies: int) -> None:
        """Snapshots then events, ``copies`` times, each a new producer session as a user's."""
        from kafka import TopicPartition

        from streams.publish import Publisher

        for _ in range(copies):
            with Publisher(self.settings) as publisher:
                for run in import_runs(sim):
                    publisher.run(run)
                publisher.end_of_input()
            self.published += len(sim.events)
        consumer = kafka_clients.consumer(self.settings)
        try:
            parts = [TopicPartition(t, p) for t in self.inputs()
                     for p in consumer.partitions_for_topic(t) or ()]  # fmt: skip
            self.messages = sum(consumer.end_offsets(parts).values())
        finally:
            consumer.close()

    def inputs(self) -> list[str]:
        return [self.settings.topic("interactions"), self.settings.topic("snapshots")]

    def progress(self) -> float:
        """Share of the input messages stored and committed."""
        return 1 - consumer_lag(self.settings, self.inputs()) / max(1, self.messages)

    def add_worker(self) -> None:
        """Another worker in the group (own web port and log): the partitions are rebalanced."""
        first = self.workers[0]
        env = {**first.env, "RAPPORT_WORKER__WEB_PORT": str(free_port())}
        log = first.log.with_suffix(f".{len(self.workers)}.log")
        self.workers.append(WorkerProcess(self.settings, env, log).start())

    def remove_worker(self) -> None:
        """Stop the newest worker cleanly: its partitions move to the others."""
        self.workers.pop().stop()

    def kill_and_restart(self, timeout: float = 120) -> None:
        """SIGKILL the first worker, restart it, and wait until the new one commits, so the
        next fault strikes a working worker, not one still starting."""
        before = self.progress()
        self.workers[0] = kill_and_restart(self.workers[0])
        deadline = time.monotonic() + timeout
        while self.progress() <= before < 1 and time.monotonic() < deadline:
            time.sleep(0.2)

    def sample_rss(self) -> None:
        for w in self.workers:
            if w.alive() and w.proc is not None:
                status = Path(f"/proc/{w.proc.pid}/status").read_text()
                kb = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS"))
                self.peak_rss_mb = max(self.peak_rss_mb or 0.0, kb / 1024)

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


Fault = Callable[[Run], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: list[tuple[float, Fault]] = field(default_factory=list)  # (progress, fault)
    copies: int = 1
    workers: int = 1
    kafka: KafkaService | None = None  # a private broker the faults may stop
    clickhouse: ClickHouseServerService | None = None  # a private server the faults may stop


@dataclass(frozen=True)
class Outcome:
    scenario: str
    events_in: int
    unique_in: int
    rows_out: int  # distinct event ids stored
    duplicated: int  # rows beyond one per event id, after FINAL
    figures: dict[str, Any]
    alerts: frozenset[str]
    seconds: float
    peak_rss_mb: float | None
    stuck: str = ""  # why the run did not finish (empty when it did)

    @property
    def lost(self) -> int:
        return self.unique_in - self.rows_out


def measure(settings: Settings) -> tuple[int, int, dict[str, Any], frozenset[str]]:
    """(stored event ids, duplicate rows, report figures and checksums, alert ids)."""
    q = LocalQuerier(settings)
    try:
        db = q.database
        ((rows, unique),) = q.query(
            f"SELECT count(), uniqExact(event_id) FROM {db}.interactions FINAL"
        )
        reports = Reports(q, settings.engine_config())
        s = reports.responsiveness(Scope()).summary
        r = reports.reciprocity(Scope()).summary
        figures: dict[str, Any] = {
            k: s.get(k) for k in ("inbound", "answered", "pending", "unanswered", "rate",
                                  "p50_s", "p90_s", "spam_inbound", "spam_adjusted_rate",
                                  "spam_adjusted_p50_s")
        }  # fmt: skip
        figures |= {k: r[k] for k in ("directed_pairs", "mutual_pairs", "r", "rho")}
        for name, sql in AGGREGATE_SQL.items():
            figures[name] = tuple(q.query("SELECT " + sql.format(db=db))[0])
        alerts = frozenset(a for (a,) in q.query(f"SELECT alert_id FROM {db}.spam_alerts FINAL"))
    finally:
        q.close()
    return int(unique), int(rows) - int(unique), figures, alerts


def run_scenario(
    settings: Settings,
    sim: Simulation,
    scenario: Scenario,
    timeout: float = 1800,
    keep: bool = False,
) -> Outcome:
    """Process ``sim`` in a fresh run while the scenario's faults strike; measure the result
    (also when the workers do not finish within ``timeout``: what they stored by then)."""
    if scenario.kafka is not None:
        settings = _with_env(settings, {"RAPPORT_KAFKA": scenario.kafka.address})
    if scenario.clickhouse is not None:
        settings = _with_env(settings, {"RAPPORT_CLICKHOUSE": scenario.clickhouse.address})
    started = time.monotonic()
    run = Run.start(settings)
    stuck = ""
    try:
        for _ in range(scenario.workers - 1):
            run.add_worker()
        run.publish(sim, scenario.copies)
        for at, fault in sorted(scenario.faults, key=lambda f: f[0]):
            while run.progress() < at:
                if not all(w.alive() for w in run.workers):
                    raise click.ClickException(f"a worker exited; see {run.workers[0].log}")
                time.sleep(0.2)
            fault(run)
        # the spam rules' input is complete once the first stage is
        for topics in (run.inputs(), [run.settings.topic("by-actor")]):
            run.workers[0].wait_drained(topics, max(1.0, started + timeout - time.monotonic()))
    except RapportError as exc:
        stuck = str(exc)
    finally:
        seconds = time.monotonic() - started
        run.stop()
    rows, duplicated, figures, alerts = measure(run.settings)
    if keep:  # for a post-mortem: the run's database and topics stay
        click.echo(
            f"  {scenario.name}: kept database {run.settings.clickhouse_target.database}, "
            f"topics {run.settings.topic('*')}",
            err=True,
        )
    else:
        drop_run(run.settings)
    return Outcome(scenario.name, run.published, len(sim.events), rows, duplicated, figures,
                   alerts, seconds, run.peak_rss_mb, stuck)  # fmt: skip


def _with_env(settings: Settings, env: dict[str, str]) -> Settings:
    """``settings`` with Kafka or ClickHouse moved to another address."""
    moved = load_settings(env=env)
    if "RAPPORT_KAFKA" in env:
        return dataclasses.replace(settings, kafka=moved.kafka)
    return dataclasses.replace(settings, clickhouse=moved.clickhouse)


# --- faults ---


def add_worker(run: Run) -> None:
    run.add_worker()


def remove_worker(run: Run) -> None:
    run.remove_worker()


def sigkill(run: Run) -> None:
    run.kill_and_restart()


def restart_broker(broker: KafkaService, down_s: float) -> Fault:
    def fault(run: Run) -> None:
        broker.down()
        time.sleep(down_s)
        broker.up()

    return fault


def clickhouse_outage(server: ClickHouseServerService, down_s: float) -> Fault:
    """Stop the server for ``down_s``, sampling the workers' memory meanwhile."""

    def fault(run: Run) -> None:
        run.sample_rss()
        server.down()
        deadline = time.monotonic() + down_s
        while time.monotonic() < deadline:
            run.sample_rss()
            time.sleep(0.5)
        server.up()

    return fault


@contextmanager
def private_kafka(var: Path) -> Iterator[KafkaService]:
    """A broker of its own (the stack's jars, own ports and data) that a fault may restart."""
    env = {"RAPPORT_VAR": str(var), "RAPPORT_STACK__KAFKA_PORT": str(free_port()),
           "RAPPORT_STACK__KAFKA_CONTROLLER_PORT": str(free_port()),
           "RAPPORT_STACK__KAFKA_HEAP": "512m"}  # fmt: skip
    broker = KafkaService(load_settings(env=env, cwd=var))
    try:
        broker.up()
        yield broker
    finally:
        broker.down()


@contextmanager
def private_clickhouse(var: Path) -> Iterator[ClickHouseServerService]:
    """A ClickHouse server of its own that a fault may stop."""
    env = {"RAPPORT_VAR": str(var), "RAPPORT_STACK__CLICKHOUSE_TCP_PORT": str(free_port()),
           "RAPPORT_STACK__CLICKHOUSE_HTTP_PORT": str(free_port())}  # fmt: skip
    server = ClickHouseServerService(load_settings(env=env, cwd=var))
    try:
        server.up()
        yield server
    finally:
        server.down()


def scenarios(
    rng: random.Random, var: Path, outage_s: float, wanted: Callable[[str], bool]
) -> Iterator[Scenario]:
    """The issue's scenarios that are ``wanted``; private services start only for them."""
    kills = sorted(rng.uniform(0.1, 0.9) for _ in range(3))
    plain = [
        Scenario("sigkill x3 + restart", [(k, sigkill) for k in kills]),
        Scenario("2 workers, +1, -1", [(0.3, add_worker), (0.6, remove_worker)], workers=2),
        Scenario("published twice", copies=2),
    ]
    yield from (s for s in plain if wanted(s.name))
    if wanted("broker restart"):
        with private_kafka(var / "kafka") as broker:
            yield Scenario("broker restart", [(0.4, restart_broker(broker, 10))], kafka=broker)
    name = f"clickhouse down {outage_s:.0f} s"
    if wanted(name):
        with private_clickhouse(var / "clickhouse") as server:
            fault = clickhouse_outage(server, outage_s)
            yield Scenario(name, [(0.4, fault)], clickhouse=server)


def row(o: Outcome, ref: Outcome) -> list[str]:
    return [o.scenario, f"{o.events_in:,}", f"{o.rows_out:,}", f"{o.lost:,}",
            f"{o.duplicated:,}", "yes" if o.figures == ref.figures else "no",
            "yes" if o.alerts == ref.alerts else "no",
            f"{o.seconds:.0f}" + (" STUCK" if o.stuck else ""),
            "-" if o.peak_rss_mb is None else f"{o.peak_rss_mb:.0f}"]  # fmt: skip


HEADER = ["scenario", "events in", "rows out", "lost", "duplicated", "aggregates equal",
          "alerts equal", "seconds", "peak RSS MB"]  # fmt: skip


def print_row(cells: list[str]) -> None:
    widths = [22, 10, 10, 6, 10, 16, 12, 9, 11]
    click.echo("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))))  # fmt: skip


def differences(o: Outcome, ref: Outcome) -> list[str]:
    """What differs from the reference, to print under the table."""
    out = [f"  {o.scenario}: {o.stuck}"] if o.stuck else []
    out += [f"  {o.scenario}: {k} {ref.figures[k]!r} -> {o.figures[k]!r}"
           for k in ref.figures if o.figures.get(k) != ref.figures[k]]  # fmt: skip
    if o.alerts != ref.alerts:
        out.append(f"  {o.scenario}: alerts missing {sorted(ref.alerts - o.alerts)[:5]}, "
                   f"extra {sorted(o.alerts - ref.alerts)[:5]}")  # fmt: skip
    return out


@click.command()
@click.option("--events", default=500_000, show_default=True, help="workload size (about)")
@click.option("--seed", default=1, show_default=True)
@click.option("--outage", default=60.0, show_default=True, help="seconds ClickHouse is down")
@click.option("--only", multiple=True, help="run only scenarios whose name contains this")
@click.option("--timeout", default=900.0, show_default=True, help="seconds a scenario may take")
@click.option("--keep", is_flag=True, help="keep each run's database (post-mortems)")
def main(
    events: int, seed: int, outage: float, only: tuple[str, ...], timeout: float, keep: bool
) -> None:
    """Run every scenario on the local stack (ClickHouse server sink) and print the table."""
    settings = load_settings()
    if settings.clickhouse_target.kind == "chdb":  # several workers need a shared server
        settings = _with_env(settings, {"RAPPORT_CLICKHOUSE": ClickHouseServerService(
            settings).address})  # fmt: skip
    sim = workload(events, seed)
    click.echo(f"workload: {len(sim.events):,} events, {len(sim.snapshots):,} accounts, "
               f"seed {seed}; sink {settings.clickhouse_target.display()}")  # fmt: skip
    print_row(HEADER)
    ref = run_scenario(settings, sim, Scenario("reference (1 worker)"), keep=keep)
    print_row(row(ref, ref))
    with tempfile.TemporaryDirectory(prefix="rapport-chaos-") as var:

        def wanted(name: str) -> bool:
            return not only or any(o in name for o in only)

        for scenario in scenarios(random.Random(seed), Path(var), outage, wanted):
            outcome = run_scenario(settings, sim, scenario, timeout, keep)
            print_row(row(outcome, ref))
            for line in differences(outcome, ref):
                click.echo(line)


if __name__ == "__main__":
    main()
