"""Topics on the real broker: the worker's table changelog is created compacted, with its
table's settings, before Faust starts (Faust creating it raced the group join)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType

from streams import kafka_clients
from streams.config import load_settings
from streams.topics import ensure_changelog
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
