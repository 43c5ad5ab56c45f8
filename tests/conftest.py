"""Find the real services the tests need, in this order: explicit environment variables, a
Docker engine (testcontainers), the local stack (`rapport stack up`).

A test that needs a service and cannot get one fails with what to do; it is never skipped.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sinks.backends import Backend, ChdbBackend, NativeBackend
from sinks.url import ClickHouseTarget, parse_clickhouse_url
from streams.analyze import free_port  # noqa: F401  (tests import it from here)
from streams.config import load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def docker_engine() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # no client config, no socket, no engine: all mean "no Docker"
        return False


def chdb_dir() -> str:
    """One chDB directory per test process: chDB cannot open a second one in a process."""
    path = os.environ.get("RAPPORT_TEST_CHDB_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="rapport-chdb-tests-")
        os.environ["RAPPORT_TEST_CHDB_DIR"] = path
        atexit.register(shutil.rmtree, path, True)
    return path



# the runs tests make: their topics are deleted at the end of the session
TEST_RUN = re.compile(r"(t[0-9a-f]{10}|analyze-[0-9a-f]{10}|demo-[0-9a-f]{10}|"
                      r"chaos-[0-9a-f]{10}|live\d+)[.-]")  # fmt: skip


@contextlib.contextmanager
def topics_deleted_after(bootstrap: str) -> Iterator[None]:
    """Delete the topics of test runs created meanwhile (a broker that kept every test's
    topics held 1,267 of them and took minutes to start)."""
    from kafka import KafkaAdminClient

    def test_topics() -> set[str]:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            return {t for t in admin.list_topics() if TEST_RUN.match(t)}
        finally:
            admin.close()

    before = test_topics()
    yield
    new = sorted(test_topics() - before)
    if new:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
        try:
            admin.delete_topics(new)
        finally:
            admin.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka broker's bootstrap address."""
    if os.environ.get("RAPPORT_TEST_KAFKA"):
        with topics_deleted_after(os.environ["RAPPORT_TEST_KAFKA"]):
            yield os.environ["RAPPORT_TEST_KAFKA"]
        return
    if docker_engine():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.9.1") as kafka:
            yield kafka.get_bootstrap_server()
        return
    from streams.stack.kafka import KafkaService

    local = KafkaService(load_settings())
    if local.ready():
        with topics_deleted_after(local.address):
            yield local.address
        return
    pytest.fail(
        "no Kafka broker for the tests: set RAPPORT_TEST_KAFKA=host:port, start a Docker "
        "engine, or run `rapport stack up` (make up)"
    )


@pytest.fixture(scope="session")
def clickhouse_server_url() -> Iterator[str]:
    """A real ClickHouse server's sink URL (database chosen per test by the caller)."""
    if os.environ.get("RAPPORT_TEST_CLICKHOUSE_URL"):
        yield os.environ["RAPPORT_TEST_CLICKHOUSE_URL"]
        return
    if docker_engine():
        from testcontainers.clickhouse import ClickHouseContainer

        with ClickHouseContainer("clickhouse/clickhouse-server:25.8") as ch:
            port = ch.get_exposed_port(9000)
            host = ch.get_container_host_ip()
            yield f"clickhouse://{ch.username}:{ch.password}@{host}:{port}/rapport_test"
        return
    from streams.stack.clickhouse import ClickHouseServerService

    local = ClickHouseServerService(load_settings())
    if local.ready():
        yield f"clickhouse://default@127.0.0.1:{local.tcp_port}/rapport_test"
        return
    pytest.fail(
        "no ClickHouse server for the tests: set RAPPORT_TEST_CLICKHOUSE_URL, start a Docker "
        "engine, or run `rapport stack up` (make up) with clickhouse-server installed"
    )


@pytest.fixture(params=["chdb", pytest.param("server", marks=pytest.mark.clickhouse_server)])
def fresh_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A sink backend on a new, empty database (chDB, then the server), dropped afterwards."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    opened: Backend
    if request.param == "chdb":
        opened = ChdbBackend(ClickHouseTarget(kind="chdb", path=chdb_dir(), database=database))
    else:
        # Only now: the chDB half must not depend on finding a server.
        url = request.getfixturevalue("clickhouse_server_url")
        opened = NativeBackend(dataclasses.replace(parse_clickhouse_url(url), database=database))
    try:
        yield opened
    finally:
        opened.execute(f"DROP DATABASE IF EXISTS {database}")
        opened.close()


@pytest.fixture
def run_id() -> str:
    """A fresh topic prefix / database suffix so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"
