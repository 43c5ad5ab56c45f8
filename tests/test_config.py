"""Configuration: precedence, types, one-line errors, secrets never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sinks.url import parse_clickhouse_url
from streams.config import load_settings
from streams.errors import ConfigError


def test_defaults_follow_the_local_stack(tmp_path: Path) -> None:
    s = load_settings(env={"RAPPORT_STACK__KAFKA_PORT": "19092"}, cwd=tmp_path)
    assert s.kafka.bootstrap == "127.0.0.1:19092"
    assert s.clickhouse_target.kind == "chdb"
    assert s.clickhouse_target.path == str(Path("var").resolve() / "chdb")
    assert s.topic("interactions") == "rapport.interactions"


def test_file_then_environment_precedence(tmp_path: Path) -> None:
    (tmp_path / "rapport.toml").write_text(
        '[kafka]\nbootstrap = "filehost:1"\npartitions = 8\n[worker]\nweb_port = 7000\n'
    )
    s = load_settings(env={"RAPPORT_KAFKA": "kafka://envhost:2"}, cwd=tmp_path)
    assert s.kafka.bootstrap == "envhost:2"
    assert s.kafka.partitions == 8
    assert s.worker.web_port == 7000
    assert s.sources["kafka.bootstrap"] == "environment RAPPORT_KAFKA"
    assert s.sources["kafka.partitions"].startswith("file ")
    assert s.sources["kafka.topic_prefix"] == "default"


def test_rapport_config_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text("[kafka]\ntopic_prefix = 'x'\n")
    s = load_settings(env={"RAPPORT_CONFIG": str(cfg)}, cwd=tmp_path)
    assert s.kafka.topic_prefix == "x" and s.config_file == str(cfg)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAPPORT_STACK__KAFKA_PORT": "abc"}, "not a valid int"),
        ({"RAPPORT_STACK__KAFKA_PORT": "70000"}, "not a TCP port"),
        ({"RAPPORT_STACK__KAFKA_PORT": "9000"}, "both 9000"),
        ({"RAPPORT_KAFKA__NOPE": "1"}, "unknown setting kafka.nope"),
        ({"RAPPORT_NOPE__X": "1"}, "unknown section"),
        ({"RAPPORT_CLICKHOUSE": "http://x"}, "unknown scheme"),
        ({"RAPPORT_CLICKHOUSE": "clickhouse://:9000/db"}, "no host"),
        ({"RAPPORT_CLICKHOUSE": "clickhouse://h:99999/db"}, "invalid port"),
        ({"RAPPORT_CLICKHOUSE": "clickhouse://h:9000/bad-name"}, "database name"),
        ({"RAPPORT_KAFKA": "localhost"}, "not host:port"),
        ({"RAPPORT_KAFKA__PARTITIONS": "0"}, "at least 1"),
        ({"RAPPORT_WORKER__SESSION_TIMEOUT_SECONDS": "3"}, "accepts 6 to 1800"),
        ({"RAPPORT_WORKER__CHECKPOINT_BUDGET": "0"}, "checkpoint_budget in"),
        ({"RAPPORT_WORKER__STOP_TIMEOUT_SECONDS": "0"}, "stop_timeout_seconds = 0.0"),
        ({"RAPPORT_WORKER__GC_FULL_SECONDS": "-1"}, "gc_full_seconds = -1.0"),
        ({"RAPPORT_WORKER__FETCH_WAIT_MS": "0"}, "fetch_wait_ms = 0"),
        ({"RAPPORT_CONFIG": "/nonexistent/r.toml"}, "does not exist"),
    ],
)
def test_bad_values_say_what_to_fix(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(env=env, cwd=tmp_path)
    assert "\n" not in str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    (tmp_path / "rapport.toml").write_text("[kafka\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, cwd=tmp_path)


def test_server_url_and_masked_secrets(tmp_path: Path) -> None:
    t = parse_clickhouse_url("clickhouses://bob:s%40cret@db.example:9440/stats?verify=false")
    assert (t.kind, t.host, t.port, t.user, t.password, t.database) == (
        "server",
        "db.example",
        9440,
        "bob",
        "s@cret",
        "stats",
    )
    assert t.secure and not t.verify
    assert "s@cret" not in t.display()
    s = load_settings(
        env={
            "RAPPORT_CLICKHOUSE": "clickhouse://bob:hunter2@h:9000/db",
            "RAPPORT_CLICKHOUSE__PASSWORD": "override",
        },
        cwd=tmp_path,
    )
    assert s.clickhouse_target.password == "override"
    printed = " ".join(v for _, v, _ in s.as_rows())
    assert "hunter2" not in printed and "override" not in printed


def test_chdb_url_database(tmp_path: Path) -> None:
    t = parse_clickhouse_url(f"chdb://{tmp_path}/d?database=run1")
    assert (t.kind, t.path, t.database) == ("chdb", str(tmp_path / "d"), "run1")
