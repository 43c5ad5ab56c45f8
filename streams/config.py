"""Configuration in one place: defaults < TOML file < environment.

The file is ``$RAPPORT_CONFIG`` or ``./rapport.toml`` when it exists. Every setting can be
overridden from the environment as ``RAPPORT_<SECTION>__<KEY>`` (e.g.
``RAPPORT_STACK__KAFKA_PORT=19092``); the two everyone needs have short names:
``RAPPORT_KAFKA`` (bootstrap servers) and ``RAPPORT_CLICKHOUSE`` (the sink URL).
``rapport config`` prints the result and where each value came from.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sinks.url import ClickHouseTarget, parse_clickhouse_url
from streams.core.engine import EngineConfig
from streams.core.spam import SpamConfig
from streams.errors import ConfigError
from streams.kafka_security import check_security

SHORT_ENV = {
    "RAPPORT_KAFKA": ("kafka", "bootstrap"),
    "RAPPORT_CLICKHOUSE": ("clickhouse", "url"),
    "RAPPORT_VAR": ("stack", "var_dir"),
}
SECRET_KEYS = {("kafka", "sasl_password"), ("clickhouse", "password")}


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is and how Rapport names its topics."""

    bootstrap: str = ""  # empty: the local stack, 127.0.0.1:<stack.kafka_port>
    topic_prefix: str = "rapport"
    partitions: int = 4
    replication_factor: int = 1
    # security (streams.kafka_security): PLAINTEXT | SASL_PLAINTEXT | SSL | SASL_SSL
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (SASL_* only)
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)  # env only: RAPPORT_KAFKA__SASL_PASSWORD
    ssl_cafile: str = ""  # CA bundle that signed the brokers' certificates (default: system's)
    ssl_certfile: str = ""  # client certificate (PEM) for mutual TLS, with ssl_keyfile
    ssl_keyfile: str = ""


@dataclass(frozen=True)
class ClickHouseSettings:
    """The sink: ``chdb://PATH`` (embedded, default) or ``clickhouse://user:pass@host:port/db``."""

    url: str = field(default="", repr=False)  # may hold a password; empty: <var_dir>/chdb
    user: str = ""  # overrides the URL's user
    password: str = field(default="", repr=False)  # overrides the URL's; environment only
    secure: bool = False  # TLS to the server (as the clickhouses:// scheme); not for chDB
    ca_certs: str = ""  # CA bundle that signed the server's certificate (default: system's)
    verify: bool = True  # check the server's certificate (false only for tests)
    cluster: str = ""  # ClickHouse cluster name: generates ON CLUSTER / Replicated DDL


@dataclass(frozen=True)
class StackSettings:
    """The local stack started by ``rapport stack up``."""

    var_dir: str = "var"
    kafka_version: str = "3.9.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "1g"
    clickhouse_tcp_port: int = 9000
    clickhouse_http_port: int = 8123
    start_timeout: float = 120.0


@dataclass(frozen=True)
class WorkerSettings:
    """The Faust worker."""

    web_host: str = "127.0.0.1"
    web_port: int = 6066
    store: str = "memory://"
    batch_size: int = 50_000  # rows per ClickHouse insert (per table and partition)
    batch_seconds: float = 1.0  # flush a batch at least this often
    # inserts after a batch of input hold the event loop this long at most (the rest: next one)
    flush_due_seconds: float = 0.05
    take_messages: int = 100  # Kafka messages taken at a time (an envelope holds up to 500 events)
    take_seconds: float = 0.1  # ...or what arrived within this long (latency at low load)
    fetch_wait_ms: int = 100  # a fetch with no news returns after this long (Faust: 1,500)
    # sends wait this long to share a produce request (by-actor, alerts, changelog): Faust's
    # default 0 sent each in its own request, 11% of the worker in socket writes at 3k events/s
    producer_linger_ms: float = 5.0
    checkpoint_seconds: float = 5.0  # analytics state saved (and input acknowledged) this often
    checkpoint_budget: float = 0.1  # ...or less often, so saving takes at most this share of time
    # a worker silent this long leaves the group and its partitions move (Faust's 60 s stalls
    # the whole group for a minute when a worker dies or is stopped while joining)
    session_timeout_seconds: float = 10.0
    # a stop (SIGTERM/SIGINT) that has not finished this long ends the process: Faust can wait
    # for ever for messages it buffered but no agent will take; they are not acknowledged, so
    # the next start replays them (as after a crash)
    stop_timeout_seconds: float = 30.0
    # the analytics state is kept out of the cycle collector's passes (see agents.heap); one
    # full collection this often frees reference cycles among it
    gc_full_seconds: float = 600.0
    log_format: str = "text"  # "text" or "json" (one object a line); both carry run and partition


@dataclass(frozen=True)
class AnalyticsSettings:
    """Definitions' parameters (METRICS.md); changing them changes the figures."""

    horizon_hours: float = 168.0  # H: an answer later than t + H does not count (7 days)
    grace_minutes: float = 10.0  # a window takes late events until stream time ≥ end + grace
    reorder_seconds: float = 120.0  # events shuffled by less than this are matched in order
    window_sizes: str = "1h,1d"  # tumbling windows of responsiveness, pairs and tier mixing
    tier_bounds: str = "100,1000,10000,100000,1000000"  # follower counts starting T1 … T5
    rank_top_share: float = 0.01  # without follower counts: top 1% by inbound are "top"
    rank_upper_share: float = 0.09  # … the next 9% "upper", the rest "base"
    rank_window_days: float = 7.0  # inbound counted over this trailing window for ranks
    dedupe_hours: float = 192.0  # event ids remembered this long (event time) to drop repeats

    def engine_config(self, spam: SpamConfig | None = None) -> EngineConfig:
        """The analytics core's parameters in milliseconds (and the spam rules')."""
        return EngineConfig(
            spam=spam or SpamConfig(),
            horizon_ms=round(self.horizon_hours * HOUR),
            grace_ms=round(self.grace_minutes * 60_000),
            reorder_ms=round(self.reorder_seconds * 1000),
            window_sizes=tuple(parse_duration(w) for w in self.window_sizes.split(",")),
            tier_bounds=tuple(int(b) for b in self.tier_bounds.split(",")),
            rank_window_ms=round(self.rank_window_days * 24 * HOUR),
            top_share=self.rank_top_share,
            upper_share=self.rank_upper_share,
            dedupe_ms=round(self.dedupe_hours * HOUR),
        )


HOUR = 3_600_000
_UNITS = {"s": 1000, "m": 60_000, "h": HOUR, "d": 24 * HOUR}


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``1h``, ``1d`` → milliseconds."""
    t = text.strip().lower()
    try:
        value = float(t[:-1])
        unit = _UNITS[t[-1]]
    except (ValueError, KeyError, IndexError):
        raise ConfigError(f"{text!r} is not a duration like 15m, 1h or 1d") from None
    if value <= 0:
        raise ConfigError(f"duration {text!r} must be positive")
    return round(value * unit)


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    stack: StackSettings = field(default_factory=StackSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    spam: SpamConfig = field(default_factory=SpamConfig)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    config_file: str | None = None

    @property
    def var_path(self) -> Path:
        return Path(self.stack.var_dir).resolve()

    def engine_config(self) -> EngineConfig:
        """Everything the analytics core needs, from the analytics and spam sections."""
        return self.analytics.engine_config(self.spam)

    @property
    def clickhouse_target(self) -> ClickHouseTarget:
        ch = self.clickhouse
        target = parse_clickhouse_url(ch.url)
        if target.kind == "chdb":
            return target  # embedded: no network, so no user, password or TLS
        return dataclasses.replace(
            target,
            user=ch.user or target.user,
            password=ch.password or target.password,
            secure=target.secure or ch.secure,
            verify=target.verify and ch.verify,
            ca_certs=ch.ca_certs,
        )

    def topic(self, name: str) -> str:
        """The full name of one of Rapport's topics, e.g. ``rapport.interactions``."""
        return f"{self.kafka.topic_prefix}.{name}"

    def as_rows(self) -> list[tuple[str, str, str]]:
        """(``section.key``, printable value, source) for ``rapport config``; secrets masked."""
        rows = []
        for section in SECTIONS:
            values = getattr(self, section)
            for f in fields(values):
                value = getattr(values, f.name)
                shown = _mask(section, f.name, value)
                rows.append((f"{section}.{f.name}", shown, self.sources[f"{section}.{f.name}"]))
        return rows


SECTIONS: dict[str, type] = {
    "kafka": KafkaSettings,
    "clickhouse": ClickHouseSettings,
    "stack": StackSettings,
    "worker": WorkerSettings,
    "analytics": AnalyticsSettings,
    "spam": SpamConfig,  # thresholds and windows of rules R1–R8; ``enabled`` switches them
}


def _mask(section: str, key: str, value: Any) -> str:
    if (section, key) in SECRET_KEYS and value:
        return "***"
    if (section, key) == ("clickhouse", "url"):
        return parse_clickhouse_url(str(value)).display()
    return str(value).lower() if isinstance(value, bool) else str(value)


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _coerce(section: str, key: str, raw: Any, kind: Any, origin: str) -> Any:
    """Convert a file or environment value to the field's type, or say which one is wrong."""
    name = f"{section}.{key}"
    try:
        if kind in ("int", int):
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        if kind in ("bool", bool):
            if isinstance(raw, str) and raw.strip().lower() in _BOOLS:
                return _BOOLS[raw.strip().lower()]
            if not isinstance(raw, bool):
                raise ValueError
            return raw
        if kind == "tuple[str, ...]":
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError
            return tuple(i.strip() for i in items if i.strip())
        if kind in ("str", str):
            if not isinstance(raw, (str, int, float)):
                raise ValueError
            return str(raw)
    except ValueError:
        raise ConfigError(
            f"{name} = {raw!r} (from {origin}) is not a valid {kind}; fix it in {origin}"
        ) from None
    raise ConfigError(f"{name} has an unsupported type {kind}")  # pragma: no cover


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; unset RAPPORT_CONFIG or create it"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def load_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Build the effective settings from defaults, the TOML file and the environment."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    sources: dict[str, str] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            sources[f"{section}.{f.name}"] = "default"

    config_file: Path | None = None
    if env.get("RAPPORT_CONFIG"):
        config_file = Path(env["RAPPORT_CONFIG"])
    elif (cwd / "rapport.toml").exists():
        config_file = cwd / "rapport.toml"
    if config_file is not None:
        data = _read_file(config_file)
        for section, table in data.items():
            if section not in SECTIONS or not isinstance(table, dict):
                raise ConfigError(
                    f"{config_file}: unknown section [{section}]; known: {', '.join(SECTIONS)}"
                )
            _apply(values, sources, section, table, f"file {config_file}")

    for name, raw in env.items():
        if name in SHORT_ENV:
            section, key = SHORT_ENV[name]
        elif name.startswith("RAPPORT_") and "__" in name:
            section, _, key = name[len("RAPPORT_") :].lower().partition("__")
            if section not in SECTIONS:
                raise ConfigError(f"environment {name}: unknown section {section!r}")
        else:
            continue
        _apply(values, sources, section, {key: raw}, f"environment {name}")

    stack = StackSettings(**values["stack"])
    worker = WorkerSettings(**values["worker"])
    _validate_ports(stack, worker)
    kafka_values = values["kafka"]
    if not kafka_values.get("bootstrap"):
        kafka_values["bootstrap"] = f"127.0.0.1:{stack.kafka_port}"
        sources["kafka.bootstrap"] = "default (local stack)"
    kafka_values["bootstrap"] = _normalise_bootstrap(kafka_values["bootstrap"])
    ch_values = values["clickhouse"]
    if not ch_values.get("url"):
        ch_values["url"] = f"chdb://{Path(stack.var_dir).resolve() / 'chdb'}"
        sources["clickhouse.url"] = "default (embedded chDB under stack.var_dir)"
    parse_clickhouse_url(ch_values["url"])  # validate early: one clear line, not a traceback later
    settings = Settings(
        kafka=KafkaSettings(**kafka_values),
        clickhouse=ClickHouseSettings(**ch_values),
        stack=stack,
        worker=worker,
        analytics=AnalyticsSettings(**values["analytics"]),
        spam=_spam(values["spam"]),
        sources=sources,
        config_file=str(config_file) if config_file else None,
    )
    _validate(settings)
    return settings


def _spam(values: dict[str, Any]) -> SpamConfig:
    try:
        return SpamConfig(**values)
    except ValueError as exc:
        raise ConfigError(f"spam settings: {exc}") from None


def _apply(
    values: dict[str, dict[str, Any]],
    sources: dict[str, str],
    section: str,
    table: Mapping[str, Any],
    origin: str,
) -> None:
    known = {f.name: f.type for f in fields(SECTIONS[section])}
    for key, raw in table.items():
        if key not in known:
            raise ConfigError(
                f"{origin}: unknown setting {section}.{key}; known: {', '.join(sorted(known))}"
            )
        if (section, key) in SECRET_KEYS and not origin.startswith("environment"):
            raise ConfigError(
                f"{origin}: {section}.{key} is a secret, so it is read from the environment only:"
                f" set RAPPORT_{section.upper()}__{key.upper()} instead"
            )
        values[section][key] = _coerce(section, key, raw, known[key], origin)
        sources[f"{section}.{key}"] = origin


def _normalise_bootstrap(raw: str) -> str:
    """Accept ``host:port[,host:port]`` with an optional ``kafka://`` prefix."""
    text = raw.strip()
    if "://" in text:
        scheme, _, text = text.partition("://")
        if scheme != "kafka":
            raise ConfigError(
                f"Kafka address {raw!r} has scheme {scheme!r}; set RAPPORT_KAFKA=host:port "
                "(or kafka://host:port)"
            )
    hosts = [h.strip() for h in text.split(",") if h.strip()]
    if not hosts:
        raise ConfigError("Kafka address is empty; set RAPPORT_KAFKA=host:port")
    for host in hosts:
        name, sep, port = host.rpartition(":")
        if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"Kafka address {host!r} is not host:port; set RAPPORT_KAFKA=host:port"
            )
    return ",".join(hosts)


def _validate_ports(stack: StackSettings, worker: WorkerSettings) -> None:
    ports = {
        "stack.kafka_port": stack.kafka_port,
        "stack.kafka_controller_port": stack.kafka_controller_port,
        "stack.clickhouse_tcp_port": stack.clickhouse_tcp_port,
        "stack.clickhouse_http_port": stack.clickhouse_http_port,
        "worker.web_port": worker.web_port,
    }
    for name, port in ports.items():
        if not 0 < port < 65536:
            raise ConfigError(f"{name} = {port} is not a TCP port (1-65535)")
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise ConfigError(f"{name} and {seen[port]} are both {port}; give each its own port")
        seen[port] = name


def _validate(s: Settings) -> None:
    check_security(s.kafka)
    if s.clickhouse.ca_certs and not Path(s.clickhouse.ca_certs).is_file():
        raise ConfigError(f"clickhouse.ca_certs = {s.clickhouse.ca_certs!r} is not a file")
    if s.kafka.partitions < 1:
        raise ConfigError(f"kafka.partitions = {s.kafka.partitions}; it must be at least 1")
    if not s.kafka.topic_prefix or any(c in s.kafka.topic_prefix for c in " /\\"):
        raise ConfigError(
            f"kafka.topic_prefix = {s.kafka.topic_prefix!r} is not a valid topic prefix"
        )
    try:
        config = s.analytics.engine_config()
    except ValueError as exc:
        raise ConfigError(f"analytics settings: {exc}") from None
    if not 1 <= len(config.window_sizes) <= 2 or config.horizon_ms <= 0:
        raise ConfigError("analytics.window_sizes takes one or two sizes; horizon_hours > 0")
    if list(config.tier_bounds) != sorted(set(config.tier_bounds)):
        raise ConfigError(f"analytics.tier_bounds = {s.analytics.tier_bounds!r} must increase")
    if s.worker.log_format not in ("text", "json"):
        raise ConfigError(f"worker.log_format = {s.worker.log_format!r}: use text or json")
    if s.worker.checkpoint_seconds <= 0 or not 0 < s.worker.checkpoint_budget <= 1:
        raise ConfigError("worker.checkpoint_seconds must be > 0, checkpoint_budget in (0, 1]")
    if not 1 <= s.worker.fetch_wait_ms <= 30_000:
        raise ConfigError(f"worker.fetch_wait_ms = {s.worker.fetch_wait_ms}: use 1 to 30000")
    if s.worker.gc_full_seconds <= 0:
        raise ConfigError(f"worker.gc_full_seconds = {s.worker.gc_full_seconds}: must be > 0")
    if s.worker.stop_timeout_seconds <= 0:
        raise ConfigError(f"worker.stop_timeout_seconds = {s.worker.stop_timeout_seconds}: "
                          "must be > 0")  # fmt: skip
    if not 6 <= s.worker.session_timeout_seconds <= 1800:  # the broker's default bounds
        raise ConfigError(
            f"worker.session_timeout_seconds = {s.worker.session_timeout_seconds}: the broker "
            "accepts 6 to 1800 (group.min/max.session.timeout.ms)"
        )
    if (s.worker.batch_size < 1 or s.worker.batch_seconds <= 0 or s.worker.take_messages < 1
            or s.worker.take_seconds <= 0 or s.worker.flush_due_seconds <= 0):  # fmt: skip
        raise ConfigError(
            "worker.batch_size and worker.take_messages must be >= 1, worker.batch_seconds, "
            "worker.take_seconds and worker.flush_due_seconds > 0"
        )
