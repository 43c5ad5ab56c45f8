"""``make demo``: the whole product on a simulated social network, narrated.

Local Kafka (and the embedded chDB) if nothing else is configured, a fresh run and its worker,
a simulation with ground truth (``streams.simulate``) published in accelerated event time with
live progress while spam alerts print as they fire, then the reports — responsiveness by tier
and by requester tier, reciprocity, rich club, give/take, top alerts with their evidence — and
every spam rule scored against the simulation's labels, with the tier pattern it encodes
checked. Ends with how to keep querying the run and how to stop the stack.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import click

from schemas import SNAPSHOT
from streams.alerts import describe, watch
from streams.analyze import start_run, wait_processed
from streams.config import Settings
from streams.query import LocalQuerier
from streams.reports import Report, Reports, Scope, render

PRECISION_GOAL, RECALL_GOAL = 0.95, 0.9
TOP, BOTTOM = ("T4", "T5"), ("T0", "T1")
LIVE_ALERTS = 12  # printed as they fire; the rest are counted


def run_demo(
    settings: Settings,
    accounts: int = 3000,
    days: float = 2.0,
    seed: int = 1,
    seconds: float | None = 60.0,
    quiet: bool = False,
) -> dict[str, Any]:
    """Simulate, publish over about ``seconds`` of wall time (None: as fast as possible),
    process, report; return the scores and the tier pattern (for tests)."""
    from streams.publish import Pacer, ProgressBar, Publisher
    from streams.simulate import import_runs, simulate, write

    def say(text: str = "", bold: bool = False) -> None:
        if not quiet:
            click.secho(text, bold=bold)

    say("1/5 stack and run", bold=True)
    settings, worker = start_run(settings, "demo", lambda t: say(f"    {t}"))
    try:
        say(f"2/5 simulating {accounts:,} accounts over {days:g} days (seed {seed})", bold=True)
        sim = simulate(accounts, days, seed)
        files = write(sim, settings.var_path / "runs" / settings.kafka.topic_prefix)
        say(f"    {len(sim.events):,} events, {len(sim.snapshots):,} snapshots; ground truth in "
            f"{files['labels.csv'].parent}")  # fmt: skip
        speedup = (sim.end_ms - sim.start_ms) / 1000 / seconds if seconds else None
        say(f"3/5 publishing{f' at {speedup:,.0f}x event time' if speedup else ''}; "
            "alerts as they fire:", bold=True)  # fmt: skip
        fired = _print_alerts_live(settings, quiet)
        with Publisher(settings, pacer=Pacer(speedup=speedup)) as publisher:
            for run in import_runs(sim):
                total = len(sim.snapshots) if run.schema == SNAPSHOT else len(sim.events)
                with ProgressBar(f"    publish {run.schema}s", total, hidden=quiet) as bar:
                    publisher.run(run, bar.advance)
            publisher.end_of_input()
        say("4/5 waiting until everything is stored and committed", bold=True)
        started = time.monotonic()
        wait_processed(worker, quiet)
        say(f"    done {time.monotonic() - started:.1f} s after the last event was published; "
            f"{fired['count']} alerts fired")  # fmt: skip
    finally:
        fired["stop"] = True
        worker.stop()

    say("5/5 reports", bold=True)
    q = LocalQuerier(settings)
    try:
        reports = Reports(q, settings.engine_config())
        resp = reports.responsiveness(Scope(limit=10))
        shown = [
            resp,
            reports.reciprocity(Scope(limit=10)),
            reports.rich_club(Scope(limit=0)),
            reports.spam(Scope(limit=10, labels=str(files["labels.csv"]))),
        ]
    finally:
        q.close()
    for report in shown:
        say(render(_trimmed(report), "table"))
        say()
    scores = {r["rule"]: r for r in shown[-1].sections["scores"]}
    pattern = _tier_pattern(resp)
    _verdicts(scores, pattern, say)
    sink = settings.clickhouse_target.display()
    say(f"""
Keep exploring this run (sink {sink}):
    RAPPORT_CLICKHOUSE='{sink}' rapport report responsiveness --window 1d --tier T5
    RAPPORT_CLICKHOUSE='{sink}' rapport report account --account {_example(shown[-1])}
    RAPPORT_CLICKHOUSE='{sink}' rapport sql "SELECT rule, count() FROM spam_alerts GROUP BY rule"
    RAPPORT_KAFKA__TOPIC_PREFIX={settings.kafka.topic_prefix} rapport alerts --rule R1
Web page: RAPPORT_CLICKHOUSE='{sink}' RAPPORT_KAFKA__TOPIC_PREFIX={settings.kafka.topic_prefix} \\
    rapport worker   → http://{settings.worker.web_host}:6066/
Stop the local stack: rapport stack down   (make down)""")  # fmt: skip
    return {"run": settings.kafka.topic_prefix, "scores": scores, "tier_pattern": pattern,
            "events": len(sim.events)}  # fmt: skip


def _print_alerts_live(settings: Settings, quiet: bool) -> dict[str, Any]:
    """Follow the alerts topic in a thread; the first alerts printed, all counted."""
    state: dict[str, Any] = {"count": 0, "stop": False}

    def follow() -> None:
        for alert in watch(settings, follow=True, rule=None, since=None):
            if state["stop"]:
                return
            state["count"] += 1
            if not quiet and state["count"] <= LIVE_ALERTS:
                click.echo("\n" + describe(alert), err=True)
            elif not quiet and state["count"] == LIVE_ALERTS + 1:
                click.echo("\n    ... (more alerts are counted; all in the report below)",
                           err=True)  # fmt: skip

    threading.Thread(target=follow, daemon=True).start()
    return state


def _trimmed(report: Report) -> Report:
    """The demo prints tables a screen wide: at most 10 rows a section."""
    sections = {k: rows[:10] for k, rows in report.sections.items() if k != "members"}
    return Report(report.title, report.summary, sections)


def _tier_pattern(resp: Report) -> dict[str, float | None]:
    """Response rate of the top tier to the bottom tier and to its peers (the "senior rug")."""
    counts: dict[str, list[int]] = {"bottom": [0, 0], "top": [0, 0]}
    for row in resp.sections["by_requester_tier"]:
        if row["responder_tier"] in TOP:
            group = "top" if row["requester_tier"] in TOP else None
            group = "bottom" if row["requester_tier"] in BOTTOM else group
            if group:
                counts[group][0] += row["answered"]
                counts[group][1] += row["inbound"]
    return {f"top_to_{g}_rate": (a / n if n else None) for g, (a, n) in counts.items()}


def _verdicts(
    scores: dict[str, dict[str, Any]], pattern: dict[str, float | None], say: Any
) -> None:
    say("Against the simulation's ground truth:", bold=True)
    for rule, row in sorted(scores.items()):
        if rule == "any":
            continue
        p, r = row["precision"], row["recall"]
        ok = p is not None and r is not None and p >= PRECISION_GOAL and r >= RECALL_GOAL
        say(f"    {rule}: precision {p}, recall {r}  "
            f"{'ok' if ok else f'BELOW the goal ({PRECISION_GOAL} / {RECALL_GOAL})'}")  # fmt: skip
    bottom, top = pattern["top_to_bottom_rate"], pattern["top_to_top_rate"]
    if bottom is not None and top:
        say(f"    top tier ({'/'.join(TOP)}) answers the bottom ({'/'.join(BOTTOM)}) at "
            f"{bottom:.1%}, its peers at {top:.1%}: {bottom / top:.2f}x")  # fmt: skip


def _example(spam: Report) -> str:
    offenders = spam.sections.get("top_offenders") or [{"actor": "u00001"}]
    return str(offenders[0]["actor"])
