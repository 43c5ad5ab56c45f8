"""A synthetic social network with ground truth, for demos, load and accuracy tests.

``simulate(accounts, days, seed)`` builds a deterministic run: heavy-tailed audiences (tiers
T0–T5), experts who answer each other in minutes but small accounts rarely, an engaged middle
tier, community clusters with high reciprocity, brands that broadcast and never answer,
ordinary users, hard negatives (a celebrity mentioned by thousands, a news account on a
30-minute schedule, a newsletter mailing its subscribers) and one spammer type per spam rule
R1–R8, each well past its default threshold. ``run`` is what ``rapport simulate`` calls.

Modules: ``population`` (accounts, roles, profiles), ``behaviours`` (normal activity and
answers), ``spammers`` (rule-tripping scripts), ``table`` (columnar events → schema dicts),
``network`` (orchestration, ``Simulation``), ``truth`` (exact expected figures), ``output``
(files for the importers).
"""

from __future__ import annotations

from pathlib import Path

from streams.simulate.network import DEFAULT_START_MS, RULES, Simulation, simulate
from streams.simulate.output import import_runs, iter_events, iter_snapshots, truth, write
from streams.simulate.truth import expected_tier_pattern, reciprocity_figures

__all__ = [
    "DEFAULT_START_MS",
    "RULES",
    "Simulation",
    "expected_tier_pattern",
    "import_runs",
    "iter_events",
    "iter_snapshots",
    "reciprocity_figures",
    "run",
    "simulate",
    "truth",
    "write",
]


def run(
    accounts: int, days: float, seed: int, out: Path | None = None, start_ms: int | None = None
) -> Simulation:
    """Simulate, and write the files into ``out`` when given (the CLI's ``rapport simulate``)."""
    sim = simulate(accounts, days, seed, start_ms)
    if out is not None:
        write(sim, out)
    return sim
