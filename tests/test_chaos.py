"""Short versions of `make chaos` (streams/chaos.py): a small simulated network through the real
broker, workers and ClickHouse server, disturbed, must give the rows, aggregates (spam-adjusted
figures included) and alerts of one undisturbed worker."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streams.chaos import (
    Outcome,
    Scenario,
    add_worker,
    clickhouse_outage,
    differences,
    private_clickhouse,
    private_kafka,
    remove_worker,
    restart_broker,
    run_scenario,
    sigkill,
)
from streams.config import Settings, load_settings
from streams.simulate import Simulation, simulate

ACCOUNTS, DAYS, SEED = 600, 1.0, 3
TIMEOUT_S = 150  # a guard: each run takes 10–75 s here


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(ACCOUNTS, DAYS, SEED)


@pytest.fixture(scope="module")
def settings(
    kafka_bootstrap: str, clickhouse_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    tmp = tmp_path_factory.mktemp("chaos")
    env = {"RAPPORT_KAFKA": kafka_bootstrap, "RAPPORT_CLICKHOUSE": clickhouse_server_url,
           "RAPPORT_VAR": str(tmp / "var")}  # fmt: skip
    return load_settings(env=env, cwd=tmp)


@pytest.fixture(scope="module")
def reference(settings: Settings, sim: Simulation) -> Outcome:
    return check_complete(run_scenario(settings, sim, Scenario("reference"), TIMEOUT_S), sim)


def check_complete(o: Outcome, sim: Simulation) -> Outcome:
    assert not o.stuck, o.stuck
    assert (o.rows_out, o.lost, o.duplicated) == (len(sim.events), 0, 0)
    return o


def check_same(o: Outcome, ref: Outcome, sim: Simulation) -> None:
    check_complete(o, sim)
    assert (o.figures, o.alerts) == (ref.figures, ref.alerts), differences(o, ref)
    assert ref.alerts, "the workload fires no alert: nothing to compare"


def test_published_twice_changes_no_figure(
    settings: Settings, sim: Simulation, reference: Outcome
) -> None:
    o = run_scenario(settings, sim, Scenario("twice", copies=2), TIMEOUT_S)
    assert o.events_in == 2 * len(sim.events)
    check_same(o, reference, sim)


def test_sigkill_three_times_changes_no_figure(
    settings: Settings, sim: Simulation, reference: Outcome
) -> None:
    kills = sorted(random.Random(SEED).uniform(0.2, 0.8) for _ in range(3))
    o = run_scenario(settings, sim, Scenario("sigkill", [(k, sigkill) for k in kills]), TIMEOUT_S)
    check_same(o, reference, sim)


def test_two_workers_then_one_more_then_one_less_change_no_figure(
    settings: Settings, sim: Simulation, reference: Outcome
) -> None:
    """The third worker is often stopped while it is still joining the group: the other two
    wait for it one session timeout (``worker.session_timeout_seconds``), then go on."""
    scenario = Scenario("scale", [(0.3, add_worker), (0.6, remove_worker)], workers=2)
    check_same(run_scenario(settings, sim, scenario, TIMEOUT_S), reference, sim)


def test_a_broker_restart_changes_no_figure(
    settings: Settings, sim: Simulation, reference: Outcome, tmp_path: Path
) -> None:
    with private_kafka(tmp_path / "kafka") as broker:
        scenario = Scenario("broker", [(0.4, restart_broker(broker, 5))], kafka=broker)
        check_same(run_scenario(settings, sim, scenario, TIMEOUT_S), reference, sim)


def test_clickhouse_down_for_20_s_changes_no_figure(
    settings: Settings, sim: Simulation, reference: Outcome, tmp_path: Path
) -> None:
    with private_clickhouse(tmp_path / "clickhouse") as server:
        scenario = Scenario("clickhouse", [(0.4, clickhouse_outage(server, 20))], clickhouse=server)
        o = run_scenario(settings, sim, scenario, TIMEOUT_S)
    check_same(o, reference, sim)
    assert o.peak_rss_mb is not None and o.peak_rss_mb < 1024  # bounded while the sink is down
