"""Rapport's Kafka topics, named in one place and created idempotently.

Every name is ``<kafka.topic_prefix>.<name>``, so separate runs (tests, ``analyze``) can share a
broker without seeing each other's data.
"""

from __future__ import annotations

from streams.config import Settings
from streams.errors import RapportError

# name -> what it carries
TOPICS = {
    "interactions": "interaction events (Avro), the pipeline's input",
}


def ensure_topics(settings: Settings, names: tuple[str, ...] = tuple(TOPICS)) -> list[str]:
    """Create the named topics that do not exist yet; return the ones created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, NoBrokersAvailable, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    except NoBrokersAvailable:
        raise RapportError(
            f"no Kafka broker answers at {settings.kafka.bootstrap}; start one with "
            "`rapport stack up` or set RAPPORT_KAFKA=host:port"
        ) from None
    try:
        existing = set(admin.list_topics())
        wanted = [settings.topic(n) for n in names if settings.topic(n) not in existing]
        created = []
        for full in wanted:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            full,
                            num_partitions=settings.kafka.partitions,
                            replication_factor=settings.kafka.replication_factor,
                        )
                    ]
                )
                created.append(full)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:
                raise RapportError(f"cannot create topic {full}: {exc}") from exc
        return created
    finally:
        admin.close()
