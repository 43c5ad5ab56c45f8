"""A benchmark's fresh run: its own topics, database and state directory (shared by the
benches of this folder)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Literal

from streams.analyze import drop_run, run_settings
from streams.config import Settings, load_settings
from streams.topics import delete_run_topics, ensure_topics


def bench_run(
    name: str, sink: Literal["chdb", "server"] | None = None
) -> tuple[Path, Settings, dict[str, str]]:
    """A benchmark's fresh run: its temporary directory, the settings (topic prefix and database
    ``bench-<random>``, topics created) and the worker's environment (the caller's ``RAPPORT_*``
    variables, state under the directory). The sink: ``RAPPORT_CLICKHOUSE`` if set, else an
    embedded chDB in the directory; ``"chdb"`` that chDB always; ``"server"`` the local stack's
    server unless ``RAPPORT_CLICKHOUSE`` is set."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    env = {k: v for k, v in os.environ.items() if k.startswith("RAPPORT_")}
    if sink == "chdb" or (sink is None and "RAPPORT_CLICKHOUSE" not in env):
        env["RAPPORT_CLICKHOUSE"] = f"chdb://{tmp / 'chdb'}"
    elif "RAPPORT_CLICKHOUSE" not in env:
        port = load_settings(env=env).stack.clickhouse_tcp_port
        env["RAPPORT_CLICKHOUSE"] = f"clickhouse://default@127.0.0.1:{port}/rapport"
    env["RAPPORT_VAR"] = str(tmp / "var")
    settings, worker_env = run_settings(load_settings(env=env), f"bench-{uuid.uuid4().hex[:8]}")
    env.update(worker_env)
    ensure_topics(settings)
    atexit.register(_clean_up, tmp, settings)
    return tmp, settings, env


def _clean_up(tmp: Path, settings: Settings) -> None:
    """At exit: the run's topics and its bulk (sink database, checkpoints); its logs and
    profiles stay in ``tmp`` (runs of the 2M bench left 0.5 GB each, and 7 topics)."""
    if settings.clickhouse_target.kind == "chdb":
        delete_run_topics(settings)  # its database goes with its directory, below
    else:
        drop_run(settings)
    for name in ("chdb", "var", "naive/data"):
        shutil.rmtree(tmp / name, ignore_errors=True)
