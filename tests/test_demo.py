"""The main job end to end on a small simulation: the real worker, Kafka and chDB; every spam
rule scored against the simulator's ground truth, and the tier pattern it encodes found."""

from __future__ import annotations

from pathlib import Path

from streams.config import load_settings
from streams.demo import PRECISION_GOAL, RECALL_GOAL, run_demo
from streams.simulate import RULES, expected_tier_pattern, simulate

ACCOUNTS, DAYS, SEED = 1200, 2.0, 5


def test_demo_scores_every_rule_and_finds_the_senior_rug(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {"RAPPORT_KAFKA": kafka_bootstrap, "RAPPORT_CLICKHOUSE": f"chdb://{tmp_path / 'chdb'}",
           "RAPPORT_VAR": str(tmp_path / "var")}  # fmt: skip
    settings = load_settings(env=env, cwd=tmp_path)
    figures = run_demo(settings, ACCOUNTS, DAYS, SEED, seconds=None, quiet=True)

    scores = figures["scores"]
    for rule in RULES:
        assert scores[rule]["labelled_positive"] > 0, rule
        assert scores[rule]["precision"] >= PRECISION_GOAL, (rule, scores[rule])
        assert scores[rule]["recall"] >= RECALL_GOAL, (rule, scores[rule])

    truth = expected_tier_pattern(simulate(ACCOUNTS, DAYS, SEED))
    measured = figures["tier_pattern"]
    assert measured["top_to_bottom_rate"] < 0.25 * measured["top_to_top_rate"]
    assert abs(measured["top_to_bottom_rate"] - truth["top_to_bottom"]["rate"]) < 0.02
    assert abs(measured["top_to_top_rate"] - truth["top_to_top"]["rate"]) < 0.05
