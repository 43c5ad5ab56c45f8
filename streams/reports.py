"""The reports behind ``rapport report NAME``, computed from the sink's tables.

Counts come from the emitted aggregates (``window_aggregates``, ``pair_counts``,
``tier_mixing``, latest version of each row via ``FINAL``); latency percentiles are exact, by
nearest rank over ``reply_records`` (METRICS.md allows exact in place of the sketch). A report
is a title, a summary and named sections of rows, rendered as a table, JSON or CSV.

Spam-adjusted figures leave out inbound messages sent while their sender was under an alert
(``[first_seen, window_end + flag hold)``, METRICS.md): computed here, at query time, from the
raw interactions, reply records and ``spam_alerts``, so they are the same however late an alert
was raised relative to the messages it covers, on one worker or many.

``--window all`` uses every window; ``1d``/``1h`` the latest window of that size.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.core.engine import EngineConfig
from streams.core.reciprocity import account_reciprocity, give_take, reciprocity, rich_club
from streams.core.replies import ADDRESSING_KINDS
from streams.core.responsiveness import RATE_LIMITS_MS
from streams.core.sketch import nearest_rank
from streams.core.tiers import follower_tier, rank_tiers
from streams.errors import RapportError
from streams.query import Querier

WINDOWS = {"1h": 3_600_000, "1d": 86_400_000}
QUANTILES = (("p50_s", 0.5), ("p90_s", 0.9), ("p99_s", 0.99))
Row = dict[str, Any]


@dataclass
class Report:
    title: str
    summary: Row = field(default_factory=dict)
    sections: dict[str, list[Row]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"report": self.title, "summary": self.summary, **self.sections}


@dataclass(frozen=True)
class Scope:
    """What a report covers: window, responder tier, account, how many rows per section."""

    window: str = "all"
    tier: str | None = None
    account: str | None = None
    limit: int = 20
    labels: str | None = None  # spam: a labels file to score alerts against


class Reports:
    """Report builders over one querier (local connection or the worker's API)."""

    def __init__(self, q: Querier, config: EngineConfig | None = None) -> None:
        self.q = q
        self.db = q.database
        self.config = config or EngineConfig()
        self._tiers: dict[str, str] | None = None
        self._followers: dict[str, int] = {}

    # --- shared pieces ---

    def _window(self, scope: Scope) -> tuple[str, dict[str, Any], tuple[int, int] | None]:
        """SQL condition on window_ms/window_start, its params, and the [lo, hi) it spans."""
        if scope.window == "all":
            size = max(self.config.window_sizes)
            return "window_ms = %(w)s", {"w": size}, None
        if scope.window not in WINDOWS:
            raise RapportError(f"--window {scope.window!r}: use 1h, 1d or all")
        size = WINDOWS[scope.window]
        ((latest,),) = self.q.query(
            f"SELECT max(window_start) FROM {self.db}.window_aggregates WHERE window_ms = %(w)s",
            {"w": size},
        )
        latest = int(latest or 0)
        cond = "window_ms = %(w)s AND window_start = %(s)s"
        return cond, {"w": size, "s": latest}, (latest, latest + size)

    def tiers(self) -> dict[str, str]:
        """Tier of each account: its latest follower count (profiles, then events), else its
        rank by inbound interactions over the data (METRICS.md, "Tiers")."""
        if self._tiers is not None:
            return self._tiers
        followers: dict[str, int] = {}
        for account, n in self.q.query(
            f"SELECT actor, argMax(followers, ts) FROM {self.db}.interactions "
            "WHERE followers IS NOT NULL GROUP BY actor"
        ):
            followers[account] = int(n)
        for account, n in self.q.query(
            f"SELECT account, argMax(followers, ts) FROM {self.db}.account_profiles "
            "GROUP BY account"
        ):
            followers[account] = int(n)
        inbound = {
            a: int(n)
            for a, n in self.q.query(
                f"SELECT target, uniqExact(event_id) FROM {self.db}.interactions "
                "WHERE target IS NOT NULL AND target != actor "
                "AND kind NOT IN ('FOLLOW', 'UNFOLLOW') GROUP BY target"
            )
        }
        ranked = rank_tiers(inbound, self.config.top_share, self.config.upper_share)
        bounds = self.config.tier_bounds
        tiers = {a: follower_tier(n, bounds) for a, n in followers.items()}
        self._tiers = {**{a: t for a, t in ranked.items() if a not in tiers}, **tiers}
        self._followers = followers
        return self._tiers

    def tier_of(self, account: str) -> str:
        return self.tiers().get(account, "base")

    def _pairs(self, scope: Scope) -> dict[tuple[str, str], int]:
        cond, params, _ = self._window(scope)
        return {
            (src, dst): int(n)
            for src, dst, n in self.q.query(
                f"SELECT src, dst, sum(n) FROM {self.db}.pair_counts FINAL WHERE {cond} "
                "GROUP BY src, dst",
                params,
            )
        }

    def _alert_spans(self) -> str:
        """Per actor under any alert: ``starts``/``ends`` arrays of its flagged spans (joined
        ``GLOBAL``: computed once and shipped to every shard of a cluster)."""
        return (
            "(SELECT actor, groupArray(first_seen) AS starts, "
            f"groupArray(window_end + {int(self.config.spam.flag_hold_ms)}) AS ends "
            f"FROM {self.db}.spam_alerts FINAL GROUP BY actor) AS flagged"
        )

    # t sent within a span; the lambda captures nothing (ClickHouse 18.16 loses a captured
    # column that comes through a join), t comes in as an array of its own
    _FLAGGED = (
        "arrayExists((s, e, x) -> s <= x AND x < e, starts, ends, "
        "arrayResize([t], length(starts), t))"
    )

    def _latencies(self, span: tuple[int, int] | None) -> list[tuple[str, str, int, bool]]:
        """(responder, requester tier, latency, whether the requester was flagged) of every
        answered message."""
        where = "" if span is None else "WHERE inbound_ts >= %(lo)s AND inbound_ts < %(hi)s"
        params = {} if span is None else {"lo": span[0], "hi": span[1]}
        return [
            (str(r), str(t), int(lat), bool(flagged))
            for r, t, lat, flagged in self.q.query(
                f"SELECT responder, requester_tier, latency_ms, {self._FLAGGED} FROM ("
                "SELECT responder, requester_tier, latency_ms, t, starts, ends FROM ("
                "SELECT requester AS actor, responder, requester_tier, latency_ms, inbound_ts AS t "
                f"FROM {self.db}.reply_records FINAL {where}) AS answered "
                f"GLOBAL ANY LEFT JOIN {self._alert_spans()} USING actor)",
                params,
            )
        ]

    def _flagged_inbound(self, span: tuple[int, int] | None) -> dict[str, int]:
        """Inbound messages sent under an alert, per responder."""
        where = "" if span is None else "AND ts >= %(lo)s AND ts < %(hi)s"
        params = {} if span is None else {"lo": span[0], "hi": span[1]}
        kinds = ", ".join(f"'{k}'" for k in sorted(ADDRESSING_KINDS))
        return {
            str(r): int(n)
            for r, n in self.q.query(
                "SELECT responder, count() FROM (SELECT responder, t, starts, ends FROM ("
                "SELECT actor, ifNull(target, '') AS responder, ts AS t "
                f"FROM {self.db}.interactions FINAL WHERE kind IN ({kinds}) "
                f"AND target IS NOT NULL AND actor != ifNull(target, '') {where}) AS inbound "
                f"GLOBAL ALL INNER JOIN {self._alert_spans()} USING actor) "
                f"WHERE {self._FLAGGED} GROUP BY responder",
                params,
            )
        }

    # --- reports ---

    def responsiveness(self, scope: Scope) -> Report:
        """Response rates and latency by responder, responder tier and requester tier."""
        cond, params, span = self._window(scope)
        rows = self.q.query(
            "SELECT account, requester_tier, sum(inbound), sum(answered), sum(pending), "
            "sum(unanswered), sum(answered_15m), sum(answered_1h), sum(answered_24h) "
            f"FROM {self.db}.window_aggregates FINAL WHERE {cond} "
            "GROUP BY account, requester_tier",
            params,
        )
        tier_of = self.tier_of
        keep = _keeper(scope, tier_of)
        lat = [x for x in self._latencies(span) if keep(x[0])]
        groups: dict[str, dict[Any, list[int]]] = {
            "total": {}, "account": {}, "tier": {}, "matrix": {}}  # fmt: skip
        for account, req_tier, *counts in rows:
            if not keep(account):
                continue
            c = [int(v) for v in counts]
            if req_tier == "all":
                _add(groups["total"], "all", c)
                _add(groups["account"], account, c)
                _add(groups["tier"], tier_of(account), c)
            else:
                _add(groups["matrix"], (tier_of(account), req_tier), c)
        lat_by: dict[str, dict[Any, list[int]]] = {
            k: {} for k in ("all", "account", "tier", "matrix", "adjusted")
        }
        for responder, req_tier, ms, flagged in lat:
            lat_by["all"].setdefault("all", []).append(ms)
            lat_by["account"].setdefault(responder, []).append(ms)
            lat_by["tier"].setdefault(tier_of(responder), []).append(ms)
            lat_by["matrix"].setdefault((tier_of(responder), req_tier), []).append(ms)
            if not flagged:
                lat_by["adjusted"].setdefault("all", []).append(ms)
        counts = groups["total"].get("all") or [0] * 7
        total = _figures(counts, lat_by["all"].get("all"))
        spam_in = sum(n for a, n in self._flagged_inbound(span).items() if keep(a))
        kept = lat_by["adjusted"].get("all", [])
        adjusted = _figures(
            [counts[0] - spam_in, len(kept), 0, 0,
             *(sum(ms <= x for ms in kept) for x in RATE_LIMITS_MS)],
            kept,
        )  # fmt: skip
        accounts = sorted(groups["account"].items(), key=lambda kv: (-kv[1][0], kv[0]))
        return Report(
            "responsiveness",
            {"window": scope.window, **total, "spam_inbound": spam_in,
             **{f"spam_adjusted_{k}": adjusted[k] for k in ("rate", "rate_24h", "p50_s", "p90_s")}},
            {
                "by_tier": [{"tier": t, **_figures(c, lat_by["tier"].get(t))}
                            for t, c in sorted(groups["tier"].items())],
                "by_requester_tier": [
                    {"responder_tier": rt, "requester_tier": qt,
                     **_figures(c, lat_by["matrix"].get((rt, qt)))}
                    for (rt, qt), c in sorted(groups["matrix"].items())
                ],
                "accounts": [{"account": a, "tier": tier_of(a),
                              **_figures(c, lat_by["account"].get(a))}
                             for a, c in accounts[: scope.limit]],
            },
        )  # fmt: skip

    def reciprocity(self, scope: Scope) -> Report:
        """Network reciprocity r and ρ, and who gives and takes."""
        pairs = self._pairs(scope)
        rec = reciprocity(pairs)
        per = account_reciprocity(pairs)
        gt = give_take(pairs)
        keep = _keeper(scope, self.tier_of)
        volume = sorted((a for a in gt if keep(a)), key=lambda a: (-(gt[a].given + gt[a].taken), a))
        return Report(
            "reciprocity",
            {"window": scope.window, "directed_pairs": rec.edges, "mutual_pairs": rec.mutual,
             "accounts": rec.accounts, "r": _r(rec.r), "rho": _r(rec.rho)},
            {"accounts": [
                {"account": a, "tier": self.tier_of(a), "given": gt[a].given,
                 "taken": gt[a].taken, "give_take": _r(gt[a].ratio),
                 "reciprocity": _r(per.get(a))}
                for a in volume[: scope.limit]
            ]},
        )  # fmt: skip

    def tier_mixing(self, scope: Scope) -> Report:
        """M[s][t]: interactions from tier s to tier t, and each row's shares."""
        cond, params, _ = self._window(scope)
        rows = self.q.query(
            f"SELECT src_tier, dst_tier, sum(n) FROM {self.db}.tier_mixing FINAL WHERE {cond} "
            "GROUP BY src_tier, dst_tier ORDER BY src_tier, dst_tier",
            params,
        )
        out_of: dict[str, int] = {}
        for s, _, n in rows:
            out_of[s] = out_of.get(s, 0) + int(n)
        total = sum(out_of.values())
        return Report(
            "tiers",
            {"window": scope.window, "interactions": total},
            {"mixing": [{"src_tier": s, "dst_tier": t, "n": int(n),
                         "share_of_src": _r(int(n) / out_of[s])} for s, t, n in rows]},
        )  # fmt: skip

    def rich_club(self, scope: Scope) -> Report:
        """Does the top talk among itself? φ and normalised ρ_rc of the top-k accounts."""
        pairs = self._pairs(scope)
        self.tiers()
        accounts = {a for pair in pairs for a in pair}
        k = scope.limit if scope.limit else max(2, len(accounts) // 100)
        club = rich_club(pairs, k, self._followers or None)
        return Report(
            "rich-club",
            {"window": scope.window, "k": len(club.members), "pairs_among_top": club.edges,
             "phi": _r(club.phi), "expected_pairs": _r(club.expected), "rho_rc": _r(club.rho),
             "closed_club": None if club.rho is None else club.rho > 1},
            {"members": [{"rank": i + 1, "account": a, "tier": self.tier_of(a)}
                         for i, a in enumerate(club.members)]},
        )  # fmt: skip

    def account(self, scope: Scope) -> Report:
        """One account's full profile."""
        a = scope.account
        if not a:
            raise RapportError("report account needs --account NAME")
        days = self.q.query(  # one row per day: an account's rows come from every partition
            "SELECT window_start, sum(inbound), sum(answered), sum(pending), sum(unanswered) "
            f"FROM {self.db}.window_aggregates FINAL WHERE account = %(a)s AND window_ms = %(w)s "
            "AND requester_tier = 'all' GROUP BY window_start "
            "ORDER BY window_start",
            {"a": a, "w": max(self.config.window_sizes)},
        )
        resp = self.responsiveness(Scope(scope.window, None, a, 1))
        rec = self.reciprocity(Scope(scope.window, None, a, 1))
        alerts = self.q.query(
            "SELECT rule, severity, window_start, evidence FROM "
            f"{self.db}.spam_alerts FINAL WHERE actor = %(a)s ORDER BY window_start",
            {"a": a},
        )
        figures = resp.sections["accounts"][0] if resp.sections["accounts"] else {}
        recip = rec.sections["accounts"][0] if rec.sections["accounts"] else {}
        return Report(
            "account",
            {"account": a, "tier": self.tier_of(a), "followers": self._followers.get(a),
             **{k: v for k, v in figures.items() if k not in ("account", "tier")},
             **{k: v for k, v in recip.items() if k not in ("account", "tier")}},
            {"by_requester_tier": resp.sections["by_requester_tier"],
             "days": [{"day_start_ms": int(s), "inbound": int(i), "answered": int(n),
                       "pending": int(p), "unanswered": int(u),
                       "rate": _r(int(n) / int(i) if int(i) else None)}
                      for s, i, n, p, u in days],
             "alerts": [{"rule": r, "severity": sev, "window_start_ms": int(ws),
                         "evidence": ev} for r, sev, ws, ev in alerts]},
        )  # fmt: skip


    def spam(self, scope: Scope) -> Report:
        """Alerts by rule, top offenders and, with ``--labels``, precision and recall."""
        where, params = "", {}
        if scope.window != "all":
            ((latest,),) = self.q.query(f"SELECT max(window_end) FROM {self.db}.spam_alerts")
            where = "WHERE window_end > %(lo)s"
            params = {"lo": int(latest or 0) - WINDOWS[scope.window]}
        alerts = self.q.query(
            f"SELECT rule, actor, evidence FROM {self.db}.spam_alerts "
            f"FINAL {where} ORDER BY window_start, rule, actor",
            params,
        )
        by_rule: dict[str, set[str]] = {}
        count: dict[str, int] = {}
        offenders: dict[str, list[Any]] = {}
        for rule, actor, evidence in alerts:
            by_rule.setdefault(rule, set()).add(actor)
            count[rule] = count.get(rule, 0) + 1
            o = offenders.setdefault(actor, [0, set(), ""])
            o[0] += 1
            o[1].add(rule)
            o[2] = json.loads(evidence).get("detail", "")
        top = sorted(offenders.items(), key=lambda kv: (-kv[1][0], kv[0]))[: scope.limit]
        sections: dict[str, list[Row]] = {
            "by_rule": [{"rule": r, "alerts": count[r], "actors": len(a)}
                        for r, a in sorted(by_rule.items())],
            "top_offenders": [{"actor": a, "alerts": n, "rules": ",".join(sorted(rules)),
                               "evidence": detail} for a, (n, rules, detail) in top],
        }  # fmt: skip
        if scope.labels:
            sections["scores"] = score_labels(scope.labels, by_rule)
        return Report(
            "spam", {"window": scope.window, "alerts": len(alerts), "actors": len(offenders)},
            sections,
        )


def score_labels(path: str, by_rule: Mapping[str, set[str]]) -> list[Row]:
    """Precision/recall of each rule (and of any alert) against a labels file: the
    simulator's ``labels.csv`` (account,role,rules) or a Cresci-2015 users file (bought fake
    followers are the positives; accounts outside the file are not scored)."""
    from streams.importers.snapshots import is_fake, labels_from_csv

    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
    truth: dict[str, set[str]] = {}
    if header[:3] == ["account", "role", "rules"]:
        labelled = set()
        with open(path, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                labelled.add(row["account"])
                rules = {r for r in row["rules"].split(";") if r}
                for r in rules:
                    truth.setdefault(r, set()).add(row["account"])
                if rules:
                    truth.setdefault("any", set()).add(row["account"])
    else:
        labels = labels_from_csv(path)
        labelled = {a for a, label in labels.items() if is_fake(label) is not None}
        fakes = {a for a in labelled if is_fake(labels[a])}
        truth = {r: fakes for r in by_rule} | {"any": fakes}
    flagged_any = set().union(*by_rule.values()) if by_rule else set()
    out = []
    for rule in sorted({*truth, *by_rule} - {"any"}) + ["any"]:
        predicted = (flagged_any if rule == "any" else by_rule.get(rule, set())) & labelled
        actual = truth.get(rule, set())
        tp = len(predicted & actual)
        out.append({
            "rule": rule, "flagged": len(predicted), "labelled_positive": len(actual),
            "true_positive": tp, "precision": _r(tp / len(predicted) if predicted else None, 3),
            "recall": _r(tp / len(actual) if actual else None, 3),
        })  # fmt: skip
    return out


REPORTS: dict[str, Callable[[Reports, Scope], Report]] = {
    "responsiveness": Reports.responsiveness,
    "reciprocity": Reports.reciprocity,
    "tiers": Reports.tier_mixing,
    "rich-club": Reports.rich_club,
    "account": Reports.account,
    "spam": Reports.spam,
}


def _keeper(scope: Scope, tier_of: Callable[[str], str]) -> Callable[[str], bool]:
    def keep(account: str) -> bool:
        if scope.account is not None and account != scope.account:
            return False
        return scope.tier is None or tier_of(account) == scope.tier

    return keep


def _add(into: dict[Any, list[int]], key: Any, counts: list[int]) -> None:
    got = into.get(key)
    if got is None:
        into[key] = list(counts)
    else:
        for i, c in enumerate(counts):
            got[i] += c


def _figures(c: list[int] | None, latencies: list[int] | None) -> Row:
    """Counts [inbound, answered, pending, unanswered, ≤15m, ≤1h, ≤24h] → report columns."""
    inbound, answered, pending, unanswered, a15, a1h, a24 = c or [0] * 7
    out: Row = {
        "inbound": inbound, "answered": answered, "pending": pending, "unanswered": unanswered,
        "rate": _r(answered / inbound if inbound else None),
        "rate_15m": _r(a15 / inbound if inbound else None),
        "rate_1h": _r(a1h / inbound if inbound else None),
        "rate_24h": _r(a24 / inbound if inbound else None),
    }  # fmt: skip
    if latencies is not None:
        ordered = np.sort(np.asarray(latencies, np.int64))
        for name, q in QUANTILES:
            out[name] = (
                round(int(ordered[nearest_rank(q, len(ordered)) - 1]) / 1000, 3)
                if len(ordered) else None
            )  # fmt: skip
    return out


def _r(x: float | None, digits: int = 4) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), digits)


# --- rendering ---


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.as_json(), indent=2, default=str)
    if fmt == "csv":
        out = io.StringIO()
        for name, rows in [("summary", [report.summary]), *report.sections.items()]:
            if not rows:
                continue
            out.write(f"# {name}\n")
            w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        return out.getvalue()
    if fmt != "table":
        raise RapportError(f"--format {fmt!r}: use table, json or csv")
    parts = [f"== {report.title} ==", _table([report.summary], vertical=True)]
    for name, rows in report.sections.items():
        parts.append(f"-- {name.replace('_', ' ')} ({len(rows)})")
        parts.append(_table(rows) if rows else "   (none)")
    return "\n".join(parts)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.1f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _table(rows: Iterable[Mapping[str, Any]], vertical: bool = False) -> str:
    rows = list(rows)
    if vertical:
        width = max((len(k) for r in rows for k in r), default=0)
        return "\n".join(f"   {k:<{width}}  {_cell(v)}" for r in rows for k, v in r.items())
    cols = list(rows[0])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["   " + "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += [
        "   "
        + "  ".join(
            v.rjust(w) if v[:1].isdigit() or v[:1] == "-" else v.ljust(w)
            for v, w in zip(row, widths, strict=True)
        )
        for row in cells
    ]
    return "\n".join(lines)
