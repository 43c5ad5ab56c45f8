"""Kafka clients built from settings, in one place (addresses and security): kafka-python ones,
and the group-less aiokafka consumer the worker reads with itself.

A broker that does not answer, refuses the login or fails TLS becomes one clear line, not a
traceback (and never shows the password).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from streams.config import KafkaSettings, Settings
from streams.errors import RapportError
from streams.kafka_security import LoginWatch, client_options

T = TypeVar("T")


def _unreachable(settings: Settings) -> RapportError:
    return RapportError(
        f"no Kafka broker answers at {settings.kafka.bootstrap}; start one with "
        "`rapport stack up` or set RAPPORT_KAFKA=host:port"
    )


def _open(settings: Settings, factory: Callable[..., T], **options: Any) -> T:
    from kafka.errors import KafkaTimeoutError

    security = client_options(settings.kafka)
    with LoginWatch(settings.kafka) as watch:
        try:
            return factory(bootstrap_servers=settings.kafka.bootstrap, **security, **options)
        except KafkaTimeoutError:
            raise watch.error() or _unreachable(settings) from None


async def groupless_consumer(kafka: KafkaSettings) -> Any:
    """A started aiokafka consumer outside any group (assign and seek it yourself). A refused
    login raises its reason; any other failure to start propagates, the consumer stopped."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", **client_options(kafka),
    )  # fmt: skip
    with LoginWatch(kafka) as watch:
        try:
            await consumer.start()
        except Exception:
            await consumer.stop()
            error = watch.error()
            if error is not None:
                raise error from None
            raise
    return consumer


def admin(settings: Settings) -> Any:
    from kafka import KafkaAdminClient

    return _open(settings, KafkaAdminClient, request_timeout_ms=10_000)


def producer(settings: Settings, **options: Any) -> Any:
    from kafka import KafkaProducer

    return _open(settings, KafkaProducer, **options)


def consumer(settings: Settings, **options: Any) -> Any:
    from kafka import KafkaConsumer

    return _open(settings, KafkaConsumer, **options)
