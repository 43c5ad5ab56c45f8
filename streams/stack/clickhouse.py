"""A real ClickHouse server (Debian's ``clickhouse-server``), on loopback, data under var/.

Optional: the embedded chDB is the default sink. The stack starts the server when its binary
is installed, so tests and users can point ``RAPPORT_CLICKHOUSE`` at it.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

from streams.config import Settings
from streams.errors import StackError
from streams.stack.process import ManagedProcess, port_open

OPS = Path(__file__).resolve().parents[2] / "ops" / "clickhouse"


def server_argv() -> list[str] | None:
    """The command that runs a ClickHouse server here, or None when none is installed."""
    for candidate in (
        "clickhouse-server",
        "/usr/sbin/clickhouse-server",
        "/usr/bin/clickhouse-server",
    ):
        found = shutil.which(candidate)
        if found:
            return [found]
    single = shutil.which("clickhouse")
    return [single, "server"] if single else None


class ClickHouseServerService:
    name = "clickhouse"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = settings.var_path / "clickhouse"
        self.process = ManagedProcess("clickhouse", self.run_dir)
        self.tcp_port = settings.stack.clickhouse_tcp_port
        self.http_port = settings.stack.clickhouse_http_port

    @property
    def address(self) -> str:
        return f"clickhouse://default@127.0.0.1:{self.tcp_port}/rapport"

    def installed(self) -> bool:
        return server_argv() is not None

    def _render_config(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.run_dir / sub).mkdir(exist_ok=True)
        replacements = {
            "RUN_DIR": self.run_dir,
            "TCP_PORT": self.tcp_port,
            "HTTP_PORT": self.http_port,
        }
        for name in ("config.xml", "users.xml"):
            text = (OPS / name).read_text()
            for key, value in replacements.items():
                text = text.replace(f"@{key}@", str(value))
            (self.run_dir / name).write_text(text)
        return self.run_dir / "config.xml"

    def up(self) -> str:
        if self.process.pid() is not None:
            return f"already running (pid {self.process.pid()}) on {self.address}"
        argv = server_argv()
        if argv is None:
            raise StackError(
                "clickhouse-server is not installed: apt-get install clickhouse-server, or use "
                "the embedded chDB (RAPPORT_CLICKHOUSE=chdb://var/chdb), or docker compose"
            )
        for port in (self.tcp_port, self.http_port):
            if port_open(port):
                raise StackError(
                    f"port {port} is taken by another process (not started by rapport); stop it "
                    "or choose other ports: RAPPORT_STACK__CLICKHOUSE_TCP_PORT / "
                    "RAPPORT_STACK__CLICKHOUSE_HTTP_PORT"
                )
        config = self._render_config()
        pid = self.process.start([*argv, f"--config-file={config}"])
        self.process.wait_ready(self.ready, self.settings.stack.start_timeout, "ClickHouse server")
        return f"started (pid {pid}) on {self.address}"

    def ready(self) -> bool:
        if not port_open(self.http_port):
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/ping", timeout=2) as r:
                return r.read().strip() == b"Ok."
        except (urllib.error.URLError, OSError):
            return False

    def down(self) -> bool:
        return self.process.stop()
