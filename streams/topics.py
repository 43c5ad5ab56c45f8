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
    return _create(settings, {settings.topic(n): {} for n in names})


def ensure_changelog(settings: Settings, name: str, configs: dict[str, str]) -> bool:
    """Create a table's compacted changelog topic (``name``, Faust's) before the worker starts;
    True if created. Left to Faust, it is created while the consumer joins its group: once the
    group was assigned without it ("Ignoring missing topic") and the first checkpoint crashed
    the worker (``PartitionsMismatch``: the changelog "has 0 partitions")."""
    return bool(_create(settings, {name: {"cleanup.policy": "compact", **configs}}))


def delete_run_topics(settings: Settings) -> list[str]:
    """Delete the run's topics (``<prefix>.*``) and its Faust app's (``<prefix>-*``: the
    worker's group is ``<prefix>-worker``); the ones deleted. For one-off runs (benchmarks,
    tests, chaos): each left 7 topics on the broker, and 1,267 of them (28 GB) made it take
    minutes to start."""
    from kafka.errors import KafkaError, UnknownTopicOrPartitionError

    prefix = settings.kafka.topic_prefix
    admin = kafka_clients.admin(settings)
    try:
        mine = sorted(t for t in admin.list_topics()
                      if t.startswith((f"{prefix}.", f"{prefix}-")))  # fmt: skip
        if mine:
            try:
                admin.delete_topics(mine)
            except UnknownTopicOrPartitionError:
                pass  # deleted meanwhile
            except KafkaError as exc:
                raise RapportError(f"cannot delete the topics of run {prefix}: {exc}") from exc
        return mine
    finally:
        admin.close()


def _create(settings: Settings, topics: dict[str, dict[str, str]]) -> list[str]:
    """Create the topics (full name -> topic configs) that do not exist yet; the ones created."""
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    admin = kafka_clients.admin(settings)
    try:
        existing = set(admin.list_topics())
        created = []
        for full, configs in topics.items():
            if full in existing:
                continue
            try:
                admin.create_topics(
                    {
                        full: {
                            "num_partitions": settings.kafka.partitions,
                            "replication_factor": settings.kafka.replication_factor,
                            "configs": configs,
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
