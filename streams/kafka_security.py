"""Kafka security from the ``[kafka]`` settings: SASL (PLAIN, SCRAM) and TLS, for every client.

Built in one place so kafka-python (``streams.kafka_clients``), aiokafka (``Refill``) and Faust
(``streams.app``) cannot drift apart: kafka-python and aiokafka take the same option names,
Faust wants a credentials object. The password goes into those options and nowhere else;
messages name the user and the mechanism, never the password.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from streams.errors import ConfigError, RapportError

if TYPE_CHECKING:
    from streams.config import KafkaSettings

PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PASSWORD_ENV = "RAPPORT_KAFKA__SASL_PASSWORD"


def uses_sasl(kafka: KafkaSettings) -> bool:
    return kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def uses_tls(kafka: KafkaSettings) -> bool:
    return kafka.security_protocol in ("SSL", "SASL_SSL")


def check_security(kafka: KafkaSettings) -> None:
    """Refuse settings no client could use, naming the key to fix (called by load_settings)."""
    protocol = kafka.security_protocol
    if protocol not in PROTOCOLS:
        raise ConfigError(f"kafka.security_protocol = {protocol!r}: use {', '.join(PROTOCOLS)}")
    if uses_sasl(kafka):
        if kafka.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                f"kafka.sasl_mechanism = {kafka.sasl_mechanism!r}: use {', '.join(SASL_MECHANISMS)}"
            )
        if not kafka.sasl_username or not kafka.sasl_password:
            raise ConfigError(
                f"kafka.security_protocol = {protocol} needs kafka.sasl_username and the "
                f"password in {PASSWORD_ENV}"
            )
    files = {
        "kafka.ssl_cafile": kafka.ssl_cafile,
        "kafka.ssl_certfile": kafka.ssl_certfile,
        "kafka.ssl_keyfile": kafka.ssl_keyfile,
    }
    for key, path in files.items():
        if path and not uses_tls(kafka):
            raise ConfigError(
                f"{key} is set but kafka.security_protocol = {protocol} has no TLS; "
                "use SSL or SASL_SSL"
            )
        if path and not Path(path).is_file():
            raise ConfigError(f"{key} = {path!r} is not a file")
    if kafka.ssl_keyfile and not kafka.ssl_certfile:
        raise ConfigError("kafka.ssl_keyfile is set without kafka.ssl_certfile")


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """For SSL and SASL_SSL: a context that verifies the brokers' certificates and host names
    (against ``ssl_cafile``, else the system's CAs) and presents the client certificate."""
    if not uses_tls(kafka):
        return None
    try:
        context = ssl.create_default_context(cafile=kafka.ssl_cafile or None)
        if kafka.ssl_certfile:
            context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile or None)
    except OSError as exc:  # ssl.SSLError is one too: a file that is not PEM, a wrong key
        raise ConfigError(
            f"cannot load the Kafka TLS files (kafka.ssl_cafile, ssl_certfile, ssl_keyfile): {exc}"
        ) from None
    return context


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Security options for a kafka-python or aiokafka client (both take these names)."""
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if uses_sasl(kafka):
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username  # SCRAM reads these two as well
        options["sasl_plain_password"] = kafka.sasl_password
    return options


def faust_credentials(kafka: KafkaSettings) -> Any:
    """Faust's ``broker_credentials``: SASL (over TLS for SASL_SSL), TLS only, or None."""
    import faust

    context = ssl_context(kafka)
    if uses_sasl(kafka):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            ssl_context=context,  # given: SASL_SSL
            mechanism=kafka.sasl_mechanism,
        )
    return faust.SSLCredentials(context) if context is not None else None


def login_refused(kafka: KafkaSettings) -> RapportError:
    """The one line for a broker that refused our SASL login."""
    return RapportError(
        f"Kafka at {kafka.bootstrap} refused the {kafka.sasl_mechanism} login of user "
        f"{kafka.sasl_username!r}: check kafka.sasl_username, kafka.sasl_mechanism and the "
        f"password in {PASSWORD_ENV}"
    )


def tls_failed(kafka: KafkaSettings, reason: str) -> RapportError:
    """The one line for a TLS handshake that failed (an unknown CA, a wrong host name)."""
    return RapportError(
        f"TLS with Kafka at {kafka.bootstrap} failed ({reason}): check kafka.ssl_cafile (the CA "
        "that signed the broker's certificate) and that the certificate names the host"
    )


class LoginWatch(logging.Handler):
    """Collects the errors Kafka clients log while they connect.

    kafka-python and aiokafka retry a refused login or a failed TLS handshake, then say only
    that they could not bootstrap; the logged cause is what tells the user what to fix.
    """

    LOGGERS = ("kafka", "aiokafka")

    def __init__(self, kafka: KafkaSettings) -> None:
        super().__init__(logging.DEBUG)
        self.kafka = kafka
        self.seen: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.seen.extend(a for a in args if isinstance(a, BaseException))

    def __enter__(self) -> LoginWatch:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def error(self) -> RapportError | None:
        """The one line for what went wrong, if a refused login or TLS failure was seen."""
        for exc in self.seen:
            if "Authentication" in type(exc).__name__:
                return login_refused(self.kafka)
            cause: BaseException | None = exc  # kafka-python wraps the handshake's SSLError
            while cause is not None and not isinstance(cause, ssl.SSLError):
                cause = cause.__cause__ or cause.__context__
            if cause is not None:
                return tls_failed(self.kafka, getattr(cause, "reason", None) or str(cause))
        if self.kafka.security_protocol.startswith("SASL") and any(
            "disconnected" in str(exc) for exc in self.seen
        ):
            # A broker closes the connection after refusing a login; under load the client may
            # see the close before it reads the refusal (kafka-python 3.0), and a broker that
            # accepts connections but drops them during the login is refusing it.
            return login_refused(self.kafka)
        return None
