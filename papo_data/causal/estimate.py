"""`papo estimate`: the `causal` table, one row per planning action and intervention.

`paired` (default): the branches' factual/alternative arms share seeds, so the four pair counts
give PN, PS, PNS and harm with Wilson (or Clopper-Pearson) intervals.
`bounds`: ignore the pairing and combine the arms' success rates (experiments) with the logged
group (observation: which siblings took the planning action, matched on their actions in the
window, and whether they succeeded) into Tian-Pearl bounds. The group, sharing task and initial
state, is the covariate stratum: a finer one than DESIGN's task, so each planning action gets
its own bounds. The bounds assume the experiment and the observation come from one population:
here, that the group's members still running at frame t are draws of the state the branches
start from. Trajectories diverge after frame 0, so real data often contradict it; such rows
get no bounds and the command counts them ("incompatible data"). Treat `bounds` as a
diagnostic beside `paired`, which needs no such assumption. The `pn`/`ps`/`pns` of a bounds
row is the bound's midpoint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from papo_data.causal.amortized import AmortizedResult, amortize, audited
from papo_data.causal.bounds import tian_pearl_bounds
from papo_data.causal.paired import METHODS, pn_ps_from_counts
from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.data.writer import DatasetWriter, conform
from papo_data.errors import BadInput

DOWHY_REPORT = "papo/reports/dowhy.json"
IMPORTANCE = ("mean", "pn", "ps", "pns", "mean-lower", "pn-lower", "ps-lower", "pns-lower")


@dataclass(frozen=True)
class EstimateConfig:
    """Knobs of `papo estimate`; each has a flag of the same name."""

    importance: str = "mean"
    """I = (PN + PS) / 2 (`mean`), PN, PS or PNS; `-lower` takes the lower ends of their
    intervals instead (`mean-lower`: the mean of PN's and PS's), a cautious I for small K."""
    method: str = "paired"
    """paired (seeds with common random numbers) | bounds (Tian-Pearl, unpaired + logged)."""
    interval: str = "wilson"
    """wilson | exact (Clopper-Pearson)."""
    confidence: float = 0.95
    amortize: bool = False
    """Also predict the importance of planning actions outside the audit set (scikit-learn
    model trained on the audit set's branched importance; method 'amortized')."""
    audit_fraction: float = 1.0
    """Hashed share of planning actions whose branches count as truth (see papo branch)."""
    dowhy: bool = True
    """Write the per-task DoWhy report (observational effect, refuters, gap to branches) to
    papo/reports/dowhy.json."""

    def check(self) -> None:
        if self.importance not in IMPORTANCE:
            raise BadInput(f"--importance must be one of {', '.join(IMPORTANCE)}")
        if self.method not in ("paired", "bounds"):
            raise BadInput(f"--method must be paired or bounds, got {self.method!r}")
        if self.interval not in METHODS:
            raise BadInput(f"--interval must be one of {', '.join(METHODS)}")
        if not 0 < self.confidence < 1:
            raise BadInput(f"--confidence must be in (0, 1), got {self.confidence}")
        if not 0 < self.audit_fraction <= 1:
            raise BadInput(f"--audit-fraction must be in (0, 1], got {self.audit_fraction}")


def importance(row: dict[str, Any], how: str) -> float:
    """I of DESIGN §3 from a causal row; an undefined PN or PS is left out of the mean, and NaN
    means no evidence either way (export-weights then leaves the window at weight 1)."""
    what, _, lower = how.partition("-")  # e.g. "pn-lower": the lower end of PN's interval
    names = ("pn", "ps") if what == "mean" else (what,)
    values = [row[name + ("_lo" if lower else "")] for name in names]
    defined = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def paired_rows(counts: list[dict[str, Any]], cfg: EstimateConfig) -> list[dict[str, Any]]:
    rows = []
    for c in counts:
        est = pn_ps_from_counts(
            c["n10"], c["n11"], c["n01"], c["n00"], method=cfg.interval, confidence=cfg.confidence
        )
        rows.append(_row(c, est, "paired"))
    return rows


def _row(key: dict[str, Any], est: dict[str, Any], method: str) -> dict[str, Any]:
    row = {
        "episode_uid": key["episode_uid"],
        "frame_index": key["frame_index"],
        "intervention": key["intervention"],
        "n_pairs": est["n_pairs"],
        "method": method,
    }
    for name in ("pn", "ps", "pns"):
        for suffix in ("", "_lo", "_hi"):
            row[name + suffix] = est[name + suffix]
    row["harm"] = est["harm"]
    return row


def _window(actions: Sequence[Any], w: int) -> np.ndarray:
    """Frames t .. t+W-1 of a member's action list (which starts at t-1), padded with its last
    action when it ended sooner."""
    a = np.asarray(actions[1:], dtype=np.float64)
    if len(a) == 0:
        a = np.asarray(actions[:1], dtype=np.float64)
    return a[np.minimum(np.arange(w), len(a) - 1)]


def matched(
    members: list[dict[str, Any]], intervention: str
) -> list[tuple[dict[str, Any], bool]] | None:
    """Each at-risk group member with whether it 'took the planning action' (X = x): its
    window is closer to e's logged window than to the intervention's. None when the
    intervention has no observational counterpart (noise, or no opposite-outcome sibling)."""
    me = next(m for m in members if m["is_self"])
    w = me["window"]
    logged = _window(me["actions"], w)
    if intervention == "hold":
        alternative = np.repeat(np.asarray(me["actions"][:1], dtype=np.float64), w, axis=0)
    elif intervention == "sibling":  # the sibling the branch engine took (targets.sql)
        other = [m for m in members if m["y"] != me["y"] and m["through_window"]]
        if not other:
            return None
        alternative = _window(min(other, key=lambda m: m["group_member"])["actions"], w)
    else:
        return None
    out = []
    for m in members:
        a = _window(m["actions"], w)
        out.append((m, bool(np.linalg.norm(a - logged) <= np.linalg.norm(a - alternative))))
    return out


def observational(members: list[dict[str, Any]], intervention: str) -> tuple[float, ...] | None:
    """(P(x,y), P(x,y'), P(x',y), P(x',y')) in the group, members matched as in `matched`."""
    pairs = matched(members, intervention)
    if pairs is None:
        return None
    counts = np.zeros(4)
    for m, took in pairs:
        counts[(0 if took else 2) + (0 if m["y"] else 1)] += 1
    return tuple(counts / counts.sum())


def bounds_rows(
    counts: list[dict[str, Any]], windows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for m in windows:
        groups.setdefault((m["episode_uid"], m["frame_index"]), []).append(m)
    rows, skipped = [], {"no observational counterpart": 0, "incompatible data": 0}
    nan = (math.nan, math.nan)
    for c in counts:
        members = groups.get((c["episode_uid"], c["frame_index"]))
        joint = observational(members, c["intervention"]) if members else None
        bounds = {"pn": nan, "ps": nan, "pns": nan}
        if joint is None:
            skipped["no observational counterpart"] += 1
        else:
            try:
                bounds = tian_pearl_bounds(c["p_y_do_x"], c["p_y_do_xp"], *joint)
            except ValueError:
                skipped["incompatible data"] += 1
        est: dict[str, Any] = {"n_pairs": c["n10"] + c["n11"] + c["n01"] + c["n00"]}
        est["harm"] = math.nan  # needs pairs: not defined without them
        for name, (lo, hi) in bounds.items():
            est[name], est[f"{name}_lo"], est[f"{name}_hi"] = (lo + hi) / 2, lo, hi
        rows.append(_row(c, est, "bounds"))
    return rows, skipped


@dataclass
class EstimateSummary:
    rows: int
    excluded: list[str]
    skipped: dict[str, int] = field(default_factory=dict)
    undefined: dict[str, int] = field(default_factory=dict)
    amortized: AmortizedResult | None = None
    dowhy: list[dict[str, Any]] = field(default_factory=list)
    orphaned: int = 0
    """Branched actions left out because a later `segment` dropped them."""


def estimate_table(ds: Dataset, cfg: EstimateConfig) -> tuple[pa.Table, EstimateSummary]:
    """The causal rows of `cfg.method` for every branched planning action."""
    cfg.check()
    counts = ds.arrow(sql_text(__file__, "pairs.sql")).to_pylist()
    excluded = [
        f"{r['episode_uid']} frame {r['frame_index']}"
        for r in ds.arrow(sql_text(__file__, "excluded.sql")).to_pylist()
    ]
    if not counts:
        raise BadInput(f"{ds.root}: no branches to estimate from; run 'papo branch' first")
    skipped: dict[str, int] = {}
    orphaned = int(ds.sql(sql_text(__file__, "orphaned.sql")).item())
    if cfg.method == "paired":
        rows = paired_rows(counts, cfg)
    else:
        windows = ds.arrow(sql_text(__file__, "group_windows.sql")).to_pylist()
        rows, skipped = bounds_rows(counts, windows)
    for row in rows:
        row["importance"] = importance(row, cfg.importance)
    undefined = {
        name: sum(1 for r in rows if math.isnan(r[name])) for name in ("pn", "ps", "importance")
    }
    table = pa.Table.from_pylist(rows)
    # NaN is "undefined" here: store it as null, which the schema documents.
    table = pa.table(
        {
            c: pa.compute.if_else(pa.compute.is_nan(table[c]), None, table[c])
            if pa.types.is_floating(table[c].type)
            else table[c]
            for c in table.column_names
        }
    )
    return table, EstimateSummary(len(rows), excluded, skipped, undefined, orphaned=orphaned)


def _amortize(ds: Dataset, detector: str, table: pa.Table, cfg: EstimateConfig) -> AmortizedResult:
    """Train on the audit set's importance as export-weights reads it: the mean over the
    interventions whose importance is defined, 0 when none is (weights.sql)."""
    per_action: dict[tuple[str, int], list[float]] = {}
    for r in table.to_pylist():
        if audited(r["episode_uid"], r["frame_index"], cfg.audit_fraction):
            values = per_action.setdefault((r["episode_uid"], r["frame_index"]), [])
            if r["importance"] is not None:
                values.append(r["importance"])
    truth = {k: float(np.mean(v)) if v else 0.0 for k, v in per_action.items()}
    try:
        return amortize(ds, detector, truth)
    except ValueError as e:
        raise BadInput(f"{ds.root}: --amortize: {e}") from None


def _dowhy(ds: Dataset) -> list[dict[str, Any]]:
    """DoWhy per task, next to the branches' effect of the hold intervention."""
    from papo_data.causal.observational import dowhy_report

    effects = ds.arrow(sql_text(__file__, "branch_effect.sql")).to_pylist()
    return dowhy_report(ds, {r["env_id"]: r["effect"] for r in effects})


def estimate(path: Path, cfg: EstimateConfig) -> EstimateSummary:
    """Write the causal rows of `cfg.method`, replacing that method's previous rows."""
    cfg.check()
    with DatasetWriter.open(path) as writer:
        # Everything is computed before anything is written: a failure (say --amortize with
        # too few audited actions) leaves the previous results as they were.
        with Dataset(path) as ds:
            table, summary = estimate_table(ds, cfg)
            if cfg.amortize:
                detector = writer.info.get("papo", {}).get("branch", {}).get("detector", "joint")
                summary.amortized = _amortize(ds, detector, table, cfg)
            if cfg.dowhy:
                summary.dowhy = _dowhy(ds)
        rows, methods = [conform(table, "causal", writer.dims)], [cfg.method]
        if summary.amortized is not None:
            amortized = pa.Table.from_pylist(summary.amortized.rows)
            rows.append(conform(amortized, "causal", writer.dims))
            methods.append("amortized")
        report = {DOWHY_REPORT: json.dumps(summary.dowhy, indent=2)} if cfg.dowhy else {}
        done = writer.info.get("papo", {}).get("estimate", {})
        writer.write_sidecar(  # rows, report and record in one commit: never a mix of runs
            "causal",
            pa.concat_tables(rows),
            replace={"method": methods},
            papo={"estimate": {**done, cfg.method: vars(cfg)}},
            texts=report,
        )
    return summary
