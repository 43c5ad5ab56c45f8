"""Security from configuration, against a real broker that demands it: a second Apache Kafka
(the stack's jars, KRaft) with SASL_PLAINTEXT and SASL_SSL listeners, PLAIN users in JAAS and
SCRAM users bootstrapped by the storage format. The right password publishes, reads back
(kafka-python and aiokafka) and runs a worker into chDB; a wrong one or an unknown CA is one
clear line; the password shows up in no output, log or error."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas import codec
from sinks.backends import NativeBackend, SinkLoginRefused, SinkUnavailable
from streams import kafka_clients
from streams.agents.deliveries import Refill
from streams.cli import main
from streams.config import Settings, load_settings
from streams.errors import ConfigError, RapportError
from streams.kafka_security import client_options, faust_credentials
from streams.publish import Publisher
from streams.stack.kafka import KafkaService
from streams.topics import ensure_topics
from streams.worker import WorkerProcess
from tests.conftest import free_port
from tests.kafka_read import read_topic
from tests.test_spine import chdb_rows, worker_env

USER = "rapport"
PASSWORD = f"pw-{uuid.uuid4().hex}"  # random: finding it in output means it leaked
STORE_PASSWORD = "keystore-pw"


@dataclass(frozen=True)
class SecureBroker:
    sasl: str  # host:port of the SASL_PLAINTEXT listener
    tls: str  # host:port of the SASL_SSL listener
    ca: Path  # the certificate the SASL_SSL listener presents (self-signed: its own CA)
    other_ca: Path  # a certificate that did not sign it


def _keystore(keytool: str, directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (PKCS12 keystore, certificate as PEM)."""
    store, pem = directory / f"{name}.p12", directory / f"{name}.pem"
    common = ["-alias", name, "-keystore", str(store), "-storepass", STORE_PASSWORD]
    subprocess.run(
        [keytool, "-genkeypair", *common, "-storetype", "PKCS12", "-keyalg", "RSA",
         "-keysize", "2048", "-validity", "2", "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1",
         "-keypass", STORE_PASSWORD],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [keytool, "-exportcert", "-rfc", *common, "-file", str(pem)],
        check=True,
        capture_output=True,
    )
    return store, pem


def _broker_config(tls_port: int, keystore: Path) -> dict[str, str]:
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="broker" password="broker-pw" user_broker="broker-pw" user_{USER}="{PASSWORD}";'
    )
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    config = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:@KAFKA_PORT@,"
        f"SASL_SSL://127.0.0.1:{tls_port},CONTROLLER://127.0.0.1:@CONTROLLER_PORT@",
        "advertised.listeners": "SASL_PLAINTEXT://127.0.0.1:@KAFKA_PORT@,"
        f"SASL_SSL://127.0.0.1:{tls_port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
        "SASL_SSL:SASL_SSL",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_ssl.ssl.keystore.type": "PKCS12",
        "listener.name.sasl_ssl.ssl.keystore.location": str(keystore),
        "listener.name.sasl_ssl.ssl.keystore.password": STORE_PASSWORD,
        "listener.name.sasl_ssl.ssl.key.password": STORE_PASSWORD,
    }
    for listener in ("sasl_plaintext", "sasl_ssl"):
        config[f"listener.name.{listener}.plain.sasl.jaas.config"] = plain
        for mechanism in ("scram-sha-256", "scram-sha-512"):
            config[f"listener.name.{listener}.{mechanism}.sasl.jaas.config"] = scram
    return config


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A second broker from the stack's code, its own ports and var/ under the test's tmp."""
    tmp = tmp_path_factory.mktemp("secure-broker")
    keytool = shutil.which("keytool")
    assert keytool, "keytool (part of the Java runtime the broker needs) is not on PATH"
    keystore, ca = _keystore(keytool, tmp, "broker")
    _, other_ca = _keystore(keytool, tmp, "stranger")
    port, tls_port = free_port(), free_port()
    env = {
        "RAPPORT_VAR": str(tmp / "var"),
        "RAPPORT_STACK__KAFKA_PORT": str(port),
        "RAPPORT_STACK__KAFKA_CONTROLLER_PORT": str(free_port()),
        "RAPPORT_STACK__KAFKA_HEAP": "256m",
        **security_env("SASL_PLAINTEXT", "PLAIN"),
    }
    scram = [f"{m}=[name={USER},password={PASSWORD}]" for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")]
    broker = KafkaService(
        load_settings(env=env, cwd=tmp),
        extra_config=_broker_config(tls_port, keystore),
        format_args=[arg for s in scram for arg in ("--add-scram", s)],
    )
    try:
        broker.up()
        yield SecureBroker(f"127.0.0.1:{port}", f"127.0.0.1:{tls_port}", ca, other_ca)
    finally:
        broker.down()


def security_env(
    protocol: str, mechanism: str, password: str = PASSWORD, cafile: Path | None = None
) -> dict[str, str]:
    env = {
        "RAPPORT_KAFKA__SECURITY_PROTOCOL": protocol,
        "RAPPORT_KAFKA__SASL_MECHANISM": mechanism,
        "RAPPORT_KAFKA__SASL_USERNAME": USER,
        "RAPPORT_KAFKA__SASL_PASSWORD": password,
    }
    if cafile is not None:
        env["RAPPORT_KAFKA__SSL_CAFILE"] = str(cafile)
    return env


def client_env(
    broker: SecureBroker, run_id: str, tmp: Path, protocol: str, mechanism: str, **kw: str
) -> dict[str, str]:
    """A worker's environment (as tests/test_spine.py) on the listener ``protocol`` names."""
    tls = protocol == "SASL_SSL"
    bootstrap = broker.tls if tls else broker.sasl
    cafile = Path(kw.pop("cafile", broker.ca)) if tls else None
    return {
        **worker_env(bootstrap, f"chdb://{tmp / 'chdb'}", run_id, tmp / "var"),
        "RAPPORT_KAFKA__PARTITIONS": "2",
        **security_env(protocol, mechanism, kw.pop("password", PASSWORD), cafile),
    }


def events(run_id: str, n: int) -> list[dict[str, object]]:
    return [
        {"event_id": f"{run_id}-{i}", "kind": "MESSAGE", "actor": f"u{i % 5}", "target": f"v{i}",
         "ts": 1_600_000_000_000 + i * 1000, "in_reply_to": None, "conversation_id": None,
         "text": None, "urls": [], "platform": "test", "followers": None, "following": None,
         "posts": None}
        for i in range(n)
    ]  # fmt: skip


def publish(settings: Settings, run_id: str, n: int) -> list[str]:
    ensure_topics(settings)
    with Publisher(settings, envelope_size=10) as publisher:
        for event in events(run_id, n):
            publisher.event(event)
    return sorted(f"{run_id}-{i}" for i in range(n))


def ids_of(values: list[tuple[bytes | None, object]]) -> list[str]:
    return sorted(
        e["event_id"] for value, headers in values for e in codec.decode_message(value, headers)[1]
    )


async def refill_all(settings: Settings, topic: str) -> list[tuple[bytes | None, object]]:
    """Every message of ``topic`` through aiokafka (``Refill``), partition by partition."""
    from kafka import TopicPartition

    consumer = kafka_clients.consumer(settings)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
    refill = Refill(settings, timeout_seconds=20)
    try:
        found = []
        for tp in parts:
            found += await refill.read(topic, tp.partition, 0, ends[tp])
        return [(m.value, m.headers) for m in found if "rapport-control" not in dict(m.headers)]
    finally:
        await refill.close()


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [
        ("SASL_PLAINTEXT", "PLAIN"),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
        ("SASL_SSL", "SCRAM-SHA-512"),
    ],
)
def test_right_password_publishes_and_reads_back(
    secure_broker: SecureBroker, run_id: str, tmp_path: Path, protocol: str, mechanism: str
) -> None:
    settings = load_settings(
        env=client_env(secure_broker, run_id, tmp_path, protocol, mechanism), cwd=tmp_path
    )
    sent = publish(settings, run_id, 40)
    topic = settings.topic("interactions")
    assert ids_of(read_topic(settings, topic)) == sent  # kafka-python
    assert ids_of(asyncio.run(refill_all(settings, topic))) == sent  # aiokafka


def test_worker_over_scram_stores_every_event(
    secure_broker: SecureBroker, run_id: str, tmp_path: Path
) -> None:
    env = client_env(secure_broker, run_id, tmp_path, "SASL_PLAINTEXT", "SCRAM-SHA-256")
    settings = load_settings(env=env, cwd=tmp_path)
    sent = publish(settings, run_id, 300)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(settings, env, log).start()
    try:
        worker.wait_drained([settings.topic("interactions")], timeout=90)
    finally:
        assert worker.stop() == 0, log.read_text()[-3000:]
    url = env["RAPPORT_CLICKHOUSE"]
    stored = chdb_rows(url, "SELECT event_id FROM rapport.interactions FINAL ORDER BY event_id")
    assert sorted(str(r[0]) for r in stored) == sent
    assert PASSWORD not in log.read_text()


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_wrong_password_is_one_line_without_the_password(
    secure_broker: SecureBroker, run_id: str, tmp_path: Path
) -> None:
    wrong = f"wrong-{PASSWORD}"
    env = client_env(secure_broker, run_id, tmp_path, "SASL_PLAINTEXT", "PLAIN", password=wrong)
    result = run_cli(["worker"], env, tmp_path)  # kafka-python: topics are ensured first
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"refused the PLAIN login of user '{USER}'" in lines[0]
    assert "RAPPORT_KAFKA__SASL_PASSWORD" in lines[0]
    assert wrong not in result.stdout + result.stderr

    settings = load_settings(env=env, cwd=tmp_path)
    with pytest.raises(RapportError, match="refused the PLAIN login") as info:  # aiokafka
        asyncio.run(Refill(settings).read(settings.topic("interactions"), 0, 0, 1))
    assert wrong not in str(info.value)


def test_unknown_ca_is_one_line(secure_broker: SecureBroker, run_id: str, tmp_path: Path) -> None:
    env = client_env(
        secure_broker, run_id, tmp_path, "SASL_SSL", "PLAIN", cafile=str(secure_broker.other_ca)
    )
    settings = load_settings(env=env, cwd=tmp_path)
    with pytest.raises(RapportError, match=r"TLS with Kafka at .* failed .*kafka\.ssl_cafile"):
        kafka_clients.producer(settings, bootstrap_timeout_ms=3000)
    with pytest.raises(RapportError, match=r"TLS with Kafka at .* failed"):
        asyncio.run(Refill(settings).read(settings.topic("interactions"), 0, 0, 1))


# --- configuration: secrets from the environment only, masked everywhere they are shown


def test_config_masks_every_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ch_password = f"ch-{PASSWORD}"
    env = {
        **security_env("SASL_PLAINTEXT", "SCRAM-SHA-512"),
        "RAPPORT_CLICKHOUSE": f"clickhouse://bob:{ch_password}@db.example:9000/stats",
    }
    settings = load_settings(env=env, cwd=tmp_path)
    assert settings.clickhouse_target.password == ch_password
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for as_json in ([], ["--json"]):
        main(["config", *as_json])
        out = capsys.readouterr().out
        assert "kafka.sasl_password" in out and "***" in out
        assert PASSWORD not in out and ch_password not in out
    shown = (
        repr(settings) + repr(settings.clickhouse_target) + repr(faust_credentials(settings.kafka))
    )
    assert PASSWORD not in shown and ch_password not in shown


@pytest.mark.parametrize(
    ("key", "env_name"),
    [("[kafka]\nsasl_password", "RAPPORT_KAFKA__SASL_PASSWORD"),
     ("[clickhouse]\npassword", "RAPPORT_CLICKHOUSE__PASSWORD")],
)  # fmt: skip
def test_secrets_in_a_file_are_refused(tmp_path: Path, key: str, env_name: str) -> None:
    (tmp_path / "rapport.toml").write_text(f'{key} = "{PASSWORD}"\n')
    with pytest.raises(ConfigError, match=env_name) as info:
        load_settings(env={}, cwd=tmp_path)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAPPORT_KAFKA__SECURITY_PROTOCOL": "SASL"}, "use PLAINTEXT, SASL_PLAINTEXT"),
        ({"RAPPORT_KAFKA__SECURITY_PROTOCOL": "SASL_SSL", "RAPPORT_KAFKA__SASL_USERNAME": "u"},
         "needs kafka.sasl_username and the password in RAPPORT_KAFKA__SASL_PASSWORD"),
        ({**security_env("SASL_PLAINTEXT", "GSSAPI")}, "kafka.sasl_mechanism = 'GSSAPI'"),
        ({"RAPPORT_KAFKA__SSL_CAFILE": "/etc/hostname"}, "has no TLS; use SSL or SASL_SSL"),
        ({"RAPPORT_KAFKA__SECURITY_PROTOCOL": "SSL", "RAPPORT_KAFKA__SSL_CAFILE": "/nope.pem"},
         "kafka.ssl_cafile = '/nope.pem' is not a file"),
        ({"RAPPORT_CLICKHOUSE__CA_CERTS": "/nope.pem"}, "clickhouse.ca_certs"),
        ({"RAPPORT_CLICKHOUSE__SECURE": "maybe"}, "clickhouse.secure = 'maybe'"),
    ],
)  # fmt: skip
def test_bad_security_settings_are_one_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env=env, cwd=tmp_path)


def test_every_client_library_gets_the_same_security(tmp_path: Path) -> None:
    """kafka-python and aiokafka options and Faust's credentials come from one helper."""
    env = security_env("SASL_SSL", "SCRAM-SHA-256")  # the system's CAs
    kafka = load_settings(env=env, cwd=tmp_path).kafka
    options = client_options(kafka)
    assert (options["security_protocol"], options["sasl_mechanism"]) == (
        "SASL_SSL",
        "SCRAM-SHA-256",
    )
    assert options["sasl_plain_username"] == USER and options["sasl_plain_password"] == PASSWORD
    assert options["ssl_context"].check_hostname  # brokers' certificates are verified
    credentials = faust_credentials(kafka)
    assert (
        credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-256"
    )
    assert credentials.password == PASSWORD and credentials.ssl_context is not None
    plain = load_settings(env={}, cwd=tmp_path).kafka
    assert client_options(plain) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(plain) is None


# --- ClickHouse server: user and password, TLS; chDB is embedded and has neither


@pytest.mark.clickhouse_server
def test_clickhouse_wrong_password_is_one_line(clickhouse_server_url: str, tmp_path: Path) -> None:
    wrong = f"ch-{PASSWORD}"
    settings = load_settings(
        env={"RAPPORT_CLICKHOUSE": clickhouse_server_url, "RAPPORT_CLICKHOUSE__PASSWORD": wrong},
        cwd=tmp_path,
    )
    with pytest.raises(SinkLoginRefused, match="wrong user or password") as info:
        NativeBackend(settings.clickhouse_target)
    assert wrong not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.clickhouse_server
def test_clickhouse_secure_speaks_tls(clickhouse_server_url: str, tmp_path: Path) -> None:
    """``clickhouse.secure`` makes the driver open TLS: the plain native port cannot answer."""
    keytool = shutil.which("keytool")
    assert keytool, "keytool (part of the Java runtime) is not on PATH"
    _, ca = _keystore(keytool, tmp_path, "ca")
    settings = load_settings(
        env={"RAPPORT_CLICKHOUSE": clickhouse_server_url, "RAPPORT_CLICKHOUSE__SECURE": "true",
             "RAPPORT_CLICKHOUSE__CA_CERTS": str(ca), "RAPPORT_CLICKHOUSE__USER": "someone"},
        cwd=tmp_path,
    )  # fmt: skip
    target = settings.clickhouse_target
    assert (target.secure, target.verify, target.user, target.ca_certs) == (
        True, True, "someone", str(ca)
    )  # fmt: skip
    with pytest.raises(SinkUnavailable, match="SSL"):
        NativeBackend(target, connect_timeout=3)


def test_chdb_has_no_network_auth(tmp_path: Path) -> None:
    env = {"RAPPORT_CLICKHOUSE": f"chdb://{tmp_path}/c", "RAPPORT_CLICKHOUSE__PASSWORD": "x",
           "RAPPORT_CLICKHOUSE__SECURE": "true"}  # fmt: skip
    target = load_settings(env=env, cwd=tmp_path).clickhouse_target
    assert (target.kind, target.password, target.secure) == ("chdb", "", False)
