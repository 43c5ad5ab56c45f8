"""The real Apache Kafka broker, single node, KRaft mode, on loopback.

Its jars come from Maven Central through ``ops/kafka/pom.xml`` (``mvn
dependency:copy-dependencies``) into a cache outside the repo, resolved once per version.
Storage is formatted on first start; data and logs live in ``var/kafka/``.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from streams.config import Settings
from streams.errors import StackError
from streams.kafka_security import client_options
from streams.stack.process import ManagedProcess, port_open, tail

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops" / "kafka"
DOCKER_HINT = "or run the stack with Docker: docker compose up -d kafka clickhouse"


def cache_dir(version: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rapport" / f"kafka-{version}"


def java_binary() -> str:
    """The ``java`` to run the broker with; Java 17 or newer."""
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java is not installed (no `java` on PATH); Kafka needs Java 17+: "
            f"apt-get install openjdk-17-jre-headless, {DOCKER_HINT}"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < 17:
        raise StackError(
            f"{java} is Java {major or '?'}; Kafka needs Java 17+: "
            f"apt-get install openjdk-17-jre-headless, {DOCKER_HINT}"
        )
    return java


def ensure_jars(version: str, log: Path) -> Path:
    """Resolve the broker's jars with Maven once; return the directory holding them."""
    libs = cache_dir(version) / "libs"
    marker = cache_dir(version) / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven is not installed (no `mvn` on PATH); it fetches the Kafka jars once: "
            f"apt-get install maven, {DOCKER_HINT}"
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"Resolving Apache Kafka {version} jars from Maven Central into {libs} (once)...")
    with log.open("wb") as fh:
        rc = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(OPS / "pom.xml"),
                f"-Dkafka.version={version}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}",
                "-DincludeScope=runtime",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        ).returncode
    if rc != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise StackError(
            f"Maven could not resolve Kafka {version} (exit {rc}); last lines of {log}:\n"
            f"{tail(log)}"
        )
    marker.write_text(version)
    return libs


class KafkaService:
    """The broker of ``ops/kafka/server.properties``.

    ``extra_config`` adds or overrides broker properties (``@KAFKA_PORT@`` and the other
    placeholders work in values), e.g. a SASL listener; ``format_args`` go to the storage
    format, e.g. ``--add-scram``. A broker given extra config is probed with the clients'
    security settings (``kafka.security_protocol`` ...), the plain one without.
    """

    name = "kafka"

    def __init__(
        self,
        settings: Settings,
        extra_config: Mapping[str, str] | None = None,
        format_args: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.run_dir = settings.var_path / "kafka"
        self.process = ManagedProcess("kafka", self.run_dir)
        self.port = settings.stack.kafka_port
        self.extra_config = dict(extra_config or {})
        self.format_args = list(format_args)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def installed(self) -> bool:
        return True

    def _render_config(self) -> Path:
        stack = self.settings.stack
        text = (OPS / "server.properties").read_text()
        text += "".join(f"{key}={value}\n" for key, value in self.extra_config.items())
        for key, value in {
            "KAFKA_PORT": stack.kafka_port,
            "CONTROLLER_PORT": stack.kafka_controller_port,
            "DATA_DIR": self.run_dir / "data",
        }.items():
            text = text.replace(f"@{key}@", str(value))
        path = self.run_dir / "server.properties"
        path.write_text(text)
        return path

    def _java_argv(self, java: str, libs: Path, main: list[str]) -> list[str]:
        heap = self.settings.stack.kafka_heap
        return [
            java,
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{OPS / 'log4j.properties'}",
            "-cp",
            f"{libs}/*",
            *main,
        ]

    def _format_storage(self, java: str, libs: Path, config: Path) -> None:
        if (self.run_dir / "data" / "meta.properties").exists():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # as Kafka's own Uuid: a leading dash reads as a flag
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cluster = f"--cluster-id={cluster_id}"
        tool = ["kafka.tools.StorageTool", "format", cluster, "-c", str(config), *self.format_args]
        argv = self._java_argv(java, libs, tool)
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode != 0:
            raise StackError(f"formatting Kafka storage failed: {out.stdout}{out.stderr}")

    def up(self) -> str:
        if self.process.pid() is not None:
            return f"already running (pid {self.process.pid()}) on {self.address}"
        for port in (self.port, self.settings.stack.kafka_controller_port):
            if port_open(port):
                raise StackError(
                    f"port {port} is taken by another process (not started by rapport); stop it "
                    "or choose other ports: RAPPORT_STACK__KAFKA_PORT / "
                    "RAPPORT_STACK__KAFKA_CONTROLLER_PORT"
                )
        java = java_binary()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        libs = ensure_jars(self.settings.stack.kafka_version, self.run_dir / "mvn.log")
        config = self._render_config()
        self._format_storage(java, libs, config)
        pid = self.process.start(self._java_argv(java, libs, ["kafka.Kafka", str(config)]))
        self.process.wait_ready(self.ready, self.settings.stack.start_timeout, "Kafka broker")
        return f"started (pid {pid}) on {self.address}"

    def ready(self) -> bool:
        """The broker answers a metadata request (not merely an open port)."""
        if not port_open(self.port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        security = client_options(self.settings.kafka) if self.extra_config else {}
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.address, request_timeout_ms=3000, **security
            )
        except (KafkaError, OSError, ValueError):
            return False
        try:
            admin.describe_cluster()
            return True
        except (KafkaError, OSError, ValueError):
            return False
        finally:
            admin.close()

    def down(self) -> bool:
        return self.process.stop()
