"""The Faust application: broker, store and web server from settings; agents are installed
by the modules in ``streams.agents``, which stay thin wiring around plain Python."""

from __future__ import annotations

import faust

from streams.config import Settings
from streams.kafka_security import faust_credentials


def create_app(settings: Settings) -> faust.App:
    brokers = [f"kafka://{host}" for host in settings.kafka.bootstrap.split(",")]
    datadir = settings.var_path / "worker" / settings.kafka.topic_prefix
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        f"{settings.kafka.topic_prefix}-worker",
        broker=brokers,
        broker_credentials=faust_credentials(settings.kafka),  # SASL / TLS from [kafka]
        store=settings.worker.store,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        web_host=settings.worker.web_host,
        web_port=settings.worker.web_port,
        web_bind=settings.worker.web_host,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        datadir=str(datadir),
        broker_commit_every=settings.worker.batch_size,
        broker_commit_interval=settings.worker.batch_seconds,
        broker_session_timeout=settings.worker.session_timeout_seconds,
        broker_heartbeat_interval=settings.worker.session_timeout_seconds / 5,
        producer_linger=settings.worker.producer_linger_ms / 1000,
        producer_max_batch_size=900 * 1024,  # under the broker's 1 MB; a by-actor message ≤ 512 KiB
    )
