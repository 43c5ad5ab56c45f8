"""Rapport's Kafka topics, named in one place and created idempotently.

Every name is ``<kafka.topic_prefix>.<name>``, so separate runs (tests, ``analyze``) can share a
broker without seeing each other's data.
"""

from __future__ import annotations

from streams import kafka_clients
from streams.config import Settings
from streams.errors import RapportError

# name -> what it carries
TOPICS = {
    "interactions": "interaction events (Avro), the pipeline's input",
}


def ensure_topics(settings: Settings, names: tuple[str, ...] = tuple(TOPICS)) -> list[str]:
    """Create the named topics that do not exist yet; return the ones created."""
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    admin = kafka_clients.admin(settings)
    try:
        existing = set(admin.list_topics())
        wanted = [settings.topic(n) for n in names if settings.topic(n) not in existing]
        created = []
        for full in wanted:
            try:
                admin.create_topics(
                    {
                        full: {
                            "num_partitions": settings.kafka.partitions,
                            "replication_factor": settings.kafka.replication_factor,
                        }
                    },
                    wait_for_metadata=True,
                )
                created.append(full)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:
                raise RapportError(f"cannot create topic {full}: {exc}") from exc
        return created
    finally:
        admin.close()
