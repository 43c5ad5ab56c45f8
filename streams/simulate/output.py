"""A simulation on disk, in the formats Rapport's importers read.

- ``events.jsonl``: one event per line, every schema field, ``ts`` in epoch ms (``jsonl``).
- ``snapshots.csv``: one row per account with the snapshot schema's own column names
  (``snapshots``; no mapping needed).
- ``labels.csv``: ``account,role,rules`` (rules that should flag the account, ``;``-joined).
- ``truth.json``: parameters, summary, spammers by rule, hard negatives, the expected tier
  pattern and reciprocity figures (``truth``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from schemas import INTERACTION, SNAPSHOT
from streams.importers.base import ImportRun, Item, Stats
from streams.simulate.network import RULES, Simulation
from streams.simulate.truth import expected_tier_pattern, reciprocity_figures

EVENTS, SNAPSHOTS, LABELS, TRUTH = "events.jsonl", "snapshots.csv", "labels.csv", "truth.json"
SNAPSHOT_COLUMNS = (
    "snapshot_id",
    "account",
    "ts",
    "followers",
    "following",
    "posts",
    "created_at",
    "platform",
)


def iter_events(sim: Simulation) -> Iterator[dict[str, Any]]:
    """The events in time order, each a complete (validated-shape) interaction record."""
    return iter(sim.events)


def iter_snapshots(sim: Simulation) -> Iterator[dict[str, Any]]:
    """One snapshot per account, at the start of the run."""
    return iter(sim.snapshots)


def _counted(records: list[dict[str, Any]], stats: Stats, kind: str | None) -> Iterator[Item]:
    for record in records:
        stats.rows += 1
        stats.kinds[kind or record["kind"]] += 1
        yield record


def import_runs(sim: Simulation) -> list[ImportRun]:
    """The snapshots, then the events, as import runs (what ``Publisher.run`` publishes)."""
    source = f"simulate:{sim.accounts}x{sim.days}:{sim.seed}"
    snap_stats, event_stats = Stats(), Stats()
    return [
        ImportRun(source, SNAPSHOT, snap_stats, _counted(sim.snapshots, snap_stats, "SNAPSHOT")),
        ImportRun(source, INTERACTION, event_stats, _counted(sim.events, event_stats, None)),
    ]


def truth(sim: Simulation) -> dict[str, Any]:
    """Everything a report or test checks the pipeline against (JSON-ready)."""
    return {
        "params": {
            "accounts": sim.accounts,
            "days": sim.days,
            "seed": sim.seed,
            "start_ms": sim.start_ms,
            "end_ms": sim.end_ms,
        },
        "summary": sim.summary(),
        "spammers_by_rule": {r: sorted(sim.spammers_by_rule[r]) for r in RULES},
        "designed_by_rule": {r: sorted(a) for r, a in sim.designed_by_rule.items()},
        "hard_negatives": dict(sim.hard_negatives),
        "newsletter_subscribers": len(sim.subscribers),
        "tier_pattern": expected_tier_pattern(sim),
        "reciprocity": reciprocity_figures(sim),
    }


def write(sim: Simulation, out_dir: str | Path) -> dict[str, Path]:
    """Write the four files into ``out_dir`` (created if needed); their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in (EVENTS, SNAPSHOTS, LABELS, TRUTH)}
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with paths[EVENTS].open("w", encoding="utf-8") as fh:
        fh.writelines(dumps(e) + "\n" for e in sim.events)
    with paths[SNAPSHOTS].open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(SNAPSHOT_COLUMNS)
        writer.writerows(
            ["" if s[c] is None else s[c] for c in SNAPSHOT_COLUMNS] for s in sim.snapshots
        )
    with paths[LABELS].open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("account", "role", "rules"))
        writer.writerows(
            (a, role, ";".join(sim.rules_of(a))) for a, role in sorted(sim.labels.items())
        )
    paths[TRUTH].write_text(json.dumps(truth(sim), indent=2) + "\n", encoding="utf-8")
    return paths
