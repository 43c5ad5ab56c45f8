"""The ``rapport`` command line."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from streams.config import Settings, load_settings
from streams.errors import RapportError


class Context:
    """Settings are loaded lazily so ``--help`` works even with a broken configuration."""

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


pass_ctx = click.make_pass_decorator(Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Rapport: who actually engages — reply latency, reciprocity and burst spam, live."""


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def config_cmd(ctx: Context, as_json: bool) -> None:
    """Print the effective configuration and where each value came from."""
    s = ctx.settings
    rows = s.as_rows()
    if as_json:
        click.echo(json.dumps({k: {"value": v, "source": src} for k, v, src in rows}, indent=2))
        return
    click.echo(
        f"# config file: {s.config_file or '(none: set RAPPORT_CONFIG or create ./rapport.toml)'}"
    )
    width = max(len(k) for k, _, _ in rows)
    for key, value, source in rows:
        click.echo(f"{key:<{width}}  {value:<40}  # {source}")


@cli.group()
def stack() -> None:
    """The local stack without Docker: Kafka (KRaft) and the ClickHouse server."""


@stack.command("up")
@click.argument("services", nargs=-1)
@pass_ctx
def stack_up(ctx: Context, services: tuple[str, ...]) -> None:
    """Start the stack (Kafka, and clickhouse-server when installed); harmless when running."""
    from streams import stack as local_stack

    for name, what in local_stack.up(ctx.settings, services):
        click.echo(f"{name:<11} {what}")


@stack.command("down")
@click.argument("services", nargs=-1)
@pass_ctx
def stack_down(ctx: Context, services: tuple[str, ...]) -> None:
    """Stop what `rapport stack up` started (and nothing else)."""
    from streams import stack as local_stack

    for name, what in local_stack.down(ctx.settings, services):
        click.echo(f"{name:<11} {what}")


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def stack_status(ctx: Context, as_json: bool) -> None:
    """Show each service: state, address, pid, uptime, log."""
    from streams import stack as local_stack

    result = local_stack.status(ctx.settings)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in result], indent=2))
    else:
        for r in result:
            up = f"up {r.uptime:.0f} s" if r.uptime is not None else ""
            pid = f"pid {r.pid}" if r.pid else ""
            click.echo(f"{r.name:<11} {r.state:<14} {r.address:<45} {pid:<11} {up:<10} log {r.log}")
        s = ctx.settings
        click.echo(f"sink        {s.clickhouse_target.display()}")
        click.echo(f"kafka       {s.kafka.bootstrap}")
    if any(r.state not in ("running", "not installed") for r in result):
        sys.exit(3)


@cli.command("publish")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "-f", "fmt", required=True, help="Input format (see --help).")
@click.option(
    "--map", "mapping", multiple=True, metavar="COLUMN=FIELD", help="csv: rename a column."
)
@click.option("--kind", default=None, help="snap: the event kind of every edge (default MESSAGE).")
@click.option("--offset-s", type=int, default=None, help="snap: seconds added to relative times.")
@click.option("--platform", default=None, help="Platform name stored with each event.")
@click.option("--rate", type=float, default=None, help="Publish at most N events/s.")
@click.option("--speedup", type=float, default=None, help="Replay in event time, X times faster.")
@click.option(
    "--envelope-size", default=500, show_default=True, help="Events per message (1: single)."
)
@click.option("--strict", is_flag=True, help="Exit 1 when any row was rejected.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def publish_cmd(
    ctx: Context,
    paths: tuple[str, ...],
    fmt: str,
    mapping: tuple[str, ...],
    kind: str | None,
    offset_s: int | None,
    platform: str | None,
    rate: float | None,
    speedup: float | None,
    envelope_size: int,
    strict: bool,
    as_json: bool,
) -> None:
    """Publish files to Kafka; refused rows go to the dead-letter topic with their reason.

    Formats: jsonl, csv (--map), avro, snap (--kind, --offset-s), higgs, stackexchange (a dump
    folder), snapshots (account CSV). Ids are deterministic: publishing a file twice changes no
    figure downstream.
    """
    from streams.publish import publish_files

    summary = publish_files(
        ctx.settings,
        paths,
        fmt,
        options={"mapping": mapping, "kind": kind, "offset_s": offset_s, "platform": platform},
        rate=rate,
        speedup=speedup,
        envelope_size=envelope_size,
        quiet=as_json,
    )
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    if strict and summary.rejected:
        sys.exit(1)


@cli.group()
def db() -> None:
    """The ClickHouse schema."""


@db.command("migrate")
@pass_ctx
def db_migrate(ctx: Context) -> None:
    """Apply the numbered migrations not yet applied (the worker also does this at start)."""
    from sinks.backends import connect
    from sinks.migrations import migrate

    backend = connect(ctx.settings.clickhouse_target)
    try:
        applied = migrate(backend, ctx.settings.clickhouse.cluster or None)
    finally:
        backend.close()
    target = ctx.settings.clickhouse_target.display()
    if not applied:
        click.echo(f"{target}: up to date")
    for m in applied:
        click.echo(f"{target}: applied {m.number} {m.name}")


@cli.command("sql")
@click.argument("query")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A %(NAME)s parameter, bound as a quoted literal.",
)
@pass_ctx
def sql_cmd(ctx: Context, query: str, params: tuple[str, ...]) -> None:
    """Run one read-only query (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) against the sink.

    Unqualified table names are the sink's database. Works while a worker owns the embedded
    chDB too (the query goes through the worker's HTTP API).
    """
    from streams.query import open_querier

    bound = {}
    for p in params:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise RapportError(f"--param {p!r}: use NAME=VALUE")
        bound[name] = value
    q = open_querier(ctx.settings)
    try:
        for row in q.query(query, bound or None):
            click.echo("\t".join("" if v is None else str(v) for v in row))
    finally:
        q.close()


@cli.command("report")
@click.argument("name", type=click.Choice(["responsiveness", "reciprocity", "tiers", "rich-club",
                                           "spam", "account"]))  # fmt: skip
@click.option("--window", default="all", show_default=True, help="all, or the latest 1h / 1d.")
@click.option(
    "--tier", default=None, help="Only responders of this tier (T0…T5, top, upper, base)."
)
@click.option("--account", default=None, help="Only this account (required by 'account').")
@click.option("--limit", default=20, show_default=True, help="Rows per section (rich-club: k).")
@click.option(
    "--labels",
    type=click.Path(exists=True),
    default=None,
    help="spam: a labels file (account,role,rules CSV or a Cresci users.csv).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)  # fmt: skip
@pass_ctx
def report_cmd(
    ctx: Context,
    name: str,
    window: str,
    tier: str | None,
    account: str | None,
    limit: int,
    labels: str | None,
    fmt: str,
) -> None:
    """Print a report from the sink: responsiveness (by account, tier, requester tier),
    reciprocity, tiers (mixing matrix), rich-club, spam (alerts; precision/recall with
    --labels) or account (one account's full profile)."""
    from streams.query import open_querier
    from streams.reports import REPORTS, Reports, Scope, render

    q = open_querier(ctx.settings)
    try:
        reports = Reports(q, ctx.settings.engine_config())
        scope = Scope(window, tier, account, limit, labels)
        click.echo(render(REPORTS[name](reports, scope), fmt))
    finally:
        q.close()


@cli.command("alerts")
@click.option("--follow", "-f", is_flag=True, help="Keep watching: new alerts appear live.")
@click.option("--rule", default=None, help="Only this rule (R1 … R8).")
@click.option("--since", default=None, help="Only alerts published in the last 15m, 1h, 1d …")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="json: one alert per line, for scripts.")  # fmt: skip
@pass_ctx
def alerts_cmd(ctx: Context, follow: bool, rule: str | None, since: str | None, fmt: str) -> None:
    """Spam alerts with their evidence, from the alerts topic (Ctrl-C stops --follow)."""
    from streams.alerts import show, watch

    try:
        n = show(watch(ctx.settings, follow=follow, rule=rule, since=since), fmt == "json")
    except KeyboardInterrupt:
        return
    if fmt == "table":
        click.echo(f"{n} alert(s)", err=True)


@cli.command("analyze")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "-f", "fmt", required=True, help="Input format (as for publish).")
@click.option("--kind", default=None, help="snap: the event kind of every edge (default MESSAGE).")
@click.option("--platform", default=None, help="Platform name stored with each event.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@pass_ctx
def analyze_cmd(
    ctx: Context,
    paths: tuple[str, ...],
    fmt: str,
    kind: str | None,
    platform: str | None,
    as_json: bool,
) -> None:
    """Analyze an export in one go: local Kafka and embedded chDB as needed, a fresh run,
    every event processed, the reports printed; the run's database stays queryable."""
    from pathlib import Path

    from streams.analyze import analyze, print_figures

    options = {k: v for k, v in {"kind": kind, "platform": platform}.items() if v is not None}
    figures = analyze(ctx.settings, [Path(p) for p in paths], fmt, options, quiet=False)
    if as_json:
        click.echo(json.dumps(figures, indent=2, default=str))
    else:
        print_figures(figures)


@cli.command("simulate")
@click.option("--accounts", default=5000, show_default=True, help="Accounts in the network.")
@click.option("--days", default=3.0, show_default=True, help="Days of event time.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same network.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Write events.jsonl, snapshots.csv, labels.csv and truth.json here.",
)
@click.option("--publish", "publish", is_flag=True, help="Publish it to Kafka as well.")
@pass_ctx
def simulate_cmd(
    ctx: Context, accounts: int, days: float, seed: int, out: str | None, publish: bool
) -> None:
    """A synthetic social network with ground truth: tiers, experts, brands, communities,
    every spammer type of rules R1–R8 and hard negatives. Deterministic for a seed."""
    from pathlib import Path

    from streams.publish import ProgressBar, Publisher, print_summary
    from streams.simulate import import_runs, run

    if out is None and not publish:
        raise RapportError("nothing to do: give --out DIR and/or --publish")
    try:
        sim = run(accounts, days, seed, Path(out) if out else None)
    except ValueError as exc:
        raise RapportError(str(exc)) from exc
    click.echo(json.dumps(sim.summary(), indent=2), err=publish)
    if publish:
        with Publisher(ctx.settings) as publisher:
            for r in import_runs(sim):
                with ProgressBar("publish", None) as bar:
                    publisher.run(r, bar.advance)
        print_summary(publisher.summary, ctx.settings)


@cli.command("worker")
@click.option("--loglevel", default="info", show_default=True)
@pass_ctx
def worker_cmd(ctx: Context, loglevel: str) -> None:
    """Run the pipeline worker (Faust) in the foreground."""
    from streams.worker import run_foreground

    run_foreground(ctx.settings, loglevel)


@cli.command("demo")
@click.option(
    "--accounts",
    type=int,
    default=3000,
    show_default=True,
    help="Accounts in the simulated network.",
)
@click.option("--days", type=float, default=2.0, show_default=True, help="Days of event time.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same network.")
@click.option(
    "--seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="Wall time to publish it over (event time accelerated); 0: at full speed.",
)
@pass_ctx
def demo_cmd(ctx: Context, accounts: int, days: float, seed: int, seconds: float) -> None:
    """The product end to end on a simulated network: live alerts, reports, scores vs truth."""
    from streams.demo import run_demo

    run_demo(ctx.settings, accounts, days, seed, seconds or None)


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="rapport", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RapportError as exc:
        click.echo(f"rapport: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
