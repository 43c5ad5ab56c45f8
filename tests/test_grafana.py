"""The Grafana dashboards and the compose services behind them: every dashboard parses, every
ClickHouse panel's SQL runs on the real schema (chDB, after the migrations), every Prometheus
panel asks only for metrics the worker exports, and docker-compose.yml mounts what exists."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sinks.backends import ChdbBackend
from sinks.migrations import migrate
from sinks.url import ClickHouseTarget
from streams.metrics import Metrics
from tests.conftest import REPO, chdb_dir

GRAFANA = REPO / "ops" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def targets(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every panel of every dashboard on a ``kind`` data source."""
    return [
        (panel["title"], target)
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
        if target["datasource"]["type"] == kind
    ]


def exported_metrics() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


@pytest.fixture
def schema() -> Iterator[ChdbBackend]:
    """The sink's tables, empty, in a fresh chDB database."""
    backend = ChdbBackend(
        ClickHouseTarget(kind="chdb", path=chdb_dir(), database=f"g_{uuid.uuid4().hex[:10]}")
    )
    migrate(backend)
    try:
        yield backend
    finally:
        backend.execute(f"DROP DATABASE IF EXISTS {backend.target.database}")
        backend.close()


def runnable(sql: str, database: str) -> str:
    """Grafana's macros and the dashboard variable replaced by what they expand to."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"(\1 >= toDateTime(0) AND \1 <= now())", sql)
    return sql.replace("${database}", database)


def test_dashboards_are_provisioned_with_their_data_sources() -> None:
    assert [p.name for p in DASHBOARDS] == ["analytics.json", "pipeline.json"]
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "rapport.yml").read_text())
    uids = {s["uid"]: s["type"] for s in sources["datasources"]}
    assert uids == {"prometheus": "prometheus", "clickhouse": "grafana-clickhouse-datasource"}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["panels"], path
        for panel in dashboard["panels"]:
            for source in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
                assert uids.get(source["uid"]) == source["type"], (path.name, panel["title"])
    assert len({json.loads(p.read_text())["uid"] for p in DASHBOARDS}) == len(DASHBOARDS)


def test_every_clickhouse_panel_runs_on_the_schema(schema: ChdbBackend) -> None:
    panels = targets("grafana-clickhouse-datasource")
    assert len(panels) >= 5
    for title, target in panels:
        try:
            schema.execute(runnable(target["rawSql"], schema.target.database))
        except Exception as exc:
            raise AssertionError(f"panel {title!r}: {exc}") from exc


def test_every_prometheus_panel_asks_for_exported_metrics() -> None:
    known = exported_metrics()
    panels = targets("prometheus")
    used = {name for _, t in panels for name in re.findall(r"\brapport_\w+", t["expr"])}
    assert used and used <= known, sorted(used - known)
    families = {name.removesuffix(s) for name in used for s in ("_total", "_bucket", "_sum")}
    for family in ("rapport_events_in", "rapport_consumer_lag", "rapport_alerts",
                   "rapport_clickhouse_insert_seconds", "rapport_dead_letters"):  # fmt: skip
        assert any(f.startswith(family) for f in families), family


def test_compose_runs_prometheus_and_grafana_on_these_files() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)
    plugins = services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    assert "grafana-clickhouse-datasource" in plugins
    scrape = yaml.safe_load((REPO / "ops" / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and "worker" in services
    assert str(sd["port"]) in services["worker"]["expose"]
    assert services["worker"]["environment"]["RAPPORT_WORKER__WEB_HOST"] == "0.0.0.0"
