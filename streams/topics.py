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
    "interactions": "interaction events (Avro, single or batch envelopes), the pipeline's input",
    "by-actor": "interactions re-keyed by actor and by URL for the spam rules (written by workers)",
    "snapshots": "account snapshots (Avro), keyed by account",
    "alerts": "spam alerts (Avro), keyed by actor",
    "dead-letters": "refused input with its source, line and reason (Avro)",
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
