"""`rapport stack` on its own ports and var/ (so the stack the other tests use is untouched):
up/status/down twice in a row, a second up is harmless, and bad setups get one clear line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

RAPPORT = [sys.executable, "-m", "streams.cli"]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RAPPORT, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stack_env(tmp_path: Path) -> dict[str, str]:
    return {
        "RAPPORT_VAR": str(tmp_path / "var"),
        "RAPPORT_STACK__KAFKA_PORT": str(free_port()),
        "RAPPORT_STACK__KAFKA_CONTROLLER_PORT": str(free_port()),
        "RAPPORT_STACK__CLICKHOUSE_TCP_PORT": str(free_port()),
        "RAPPORT_STACK__CLICKHOUSE_HTTP_PORT": str(free_port()),
        "RAPPORT_STACK__KAFKA_HEAP": "256m",
    }


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_up_status_down_twice(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    for _ in range(2):
        up = run(["stack", "up"], env, tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "kafka" in up.stdout and "started" in up.stdout
        again = run(["stack", "up"], env, tmp_path)
        assert again.returncode == 0 and again.stdout.count("already running") == 2, again.stdout
        status = run(["stack", "status"], env, tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count(" running ") == 2, status.stdout
        down = run(["stack", "down"], env, tmp_path)
        assert down.returncode == 0 and down.stdout.count("stopped") == 2, down.stdout
        status = run(["stack", "status"], env, tmp_path)
        assert status.returncode == 3 and status.stdout.count(" stopped ") == 2, status.stdout
    assert (tmp_path / "var" / "kafka" / "data" / "meta.properties").exists()


def test_down_leaves_foreign_processes_alone(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    run_dir = tmp_path / "var" / "kafka"
    run_dir.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (run_dir / "kafka.pid").write_text(f"{sleeper.pid}\n")  # a pid that is not our broker
        down = run(["stack", "down"], env, tmp_path)
        assert down.returncode == 0 and "was not running" in down.stdout
        assert sleeper.poll() is None
    finally:
        sleeper.kill()


def test_port_taken_is_one_line(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", int(env["RAPPORT_STACK__KAFKA_PORT"])))
        s.listen()
        line = one_line_error(run(["stack", "up", "kafka"], env, tmp_path))
    assert "is taken" in line and "RAPPORT_STACK__KAFKA_PORT" in line


def test_java_missing_is_one_line(tmp_path: Path) -> None:
    env = {**stack_env(tmp_path), "PATH": str(tmp_path / "empty-path")}
    line = one_line_error(run(["stack", "up", "kafka"], env, tmp_path))
    assert "Java" in line and "docker compose" in line


def test_wrong_url_scheme_is_one_line(tmp_path: Path) -> None:
    env = {**stack_env(tmp_path), "RAPPORT_CLICKHOUSE": "mysql://localhost/db"}
    line = one_line_error(run(["config"], env, tmp_path))
    assert "unknown scheme 'mysql'" in line and "chdb://" in line


def test_bad_kafka_address_is_one_line(tmp_path: Path) -> None:
    env = {**stack_env(tmp_path), "RAPPORT_KAFKA": "http://broker"}
    line = one_line_error(run(["config"], env, tmp_path))
    assert "RAPPORT_KAFKA" in line
