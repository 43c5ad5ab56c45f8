"""Topics on the real broker: the worker's table changelog is created compacted, with its
table's settings, before Faust starts (Faust creating it raced the group join); a one-off
run's topics are deleted, its neighbours' are not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType

from streams import kafka_clients
from streams.config import load_settings
from streams.topics import TOPICS, delete_run_topics, ensure_changelog, ensure_topics
from tests.test_spine import worker_env


def test_the_changelog_is_created_compacted_with_its_configs_once(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    settings = load_settings(
        env=worker_env(kafka_bootstrap, f"chdb://{tmp_path}", run_id, tmp_path), cwd=tmp_path
    )
    name = f"{run_id}-worker-engine-state-changelog"
    assert ensure_changelog(settings, name, {"segment.ms": "60000"}) is True
    assert ensure_changelog(settings, name, {"segment.ms": "60000"}) is False  # exists: kept
    admin = kafka_clients.admin(settings)
    try:
        found: Any = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        partitions = admin.describe_topics([name])[0]["partitions"]
    finally:
        admin.close()
    configs = {k: v["value"] for k, v in found["topic"][name].items()}
    assert configs["cleanup.policy"] == "compact" and configs["segment.ms"] == "60000"
    assert len(partitions) == settings.kafka.partitions


def test_a_run_s_topics_and_its_worker_group_s_are_deleted_and_no_other(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    env = worker_env(kafka_bootstrap, f"chdb://{tmp_path}", run_id, tmp_path)
    settings = load_settings(env=env, cwd=tmp_path)
    neighbour = load_settings(env={**env, "RAPPORT_KAFKA__TOPIC_PREFIX": f"{run_id}0"},
                              cwd=tmp_path)  # fmt: skip
    ensure_topics(settings)
    ensure_topics(neighbour, ("interactions",))
    ensure_changelog(settings, f"{run_id}-worker-engine-state-changelog", {})
    deleted = delete_run_topics(settings)
    assert sorted(deleted) == sorted(
        [settings.topic(n) for n in TOPICS] + [f"{run_id}-worker-engine-state-changelog"]
    )
    admin = kafka_clients.admin(settings)
    try:
        deadline = time.monotonic() + 15  # metadata may list a deleted topic a moment longer
        while (left := {t for t in admin.list_topics() if t.startswith(run_id)}) != {
            neighbour.topic("interactions")
        } and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        admin.close()
    assert left == {neighbour.topic("interactions")}
    assert delete_run_topics(neighbour) == [neighbour.topic("interactions")]
