"""Validation of the paired PN / PS / PNS estimator, its intervals and the amortised model.

(a) synthetic structural models: each model is a distribution over the four response types of
    (Y_x, Y_x') - always (1, 1), necessary-and-sufficient (1, 0), harm (0, 1), never (0, 0) -
    so PN = p10 / (p10 + p11), PS = p10 / (p10 + p00) and PNS = p10 are known. K pairs are drawn
    per replication (K = 16, 32, 64), the counts go through `pn_ps_from_counts` (what
    `paired_pn_ps` computes on the pair arrays) with Wilson and exact (Clopper-Pearson)
    intervals, and the coverage of the true value is counted over the replications where the
    estimate is defined (the undefined share is reported), with a Wilson interval on the
    coverage itself.
(b) Meta-World: a small pick-place-v3 dataset is collected and segmented; N planning actions
    (spread evenly over the detector's list, opposite-outcome groups first) are branched with
    the `hold` intervention only. Ground truth: K_truth seeds of root seed 0, run in rounds
    until `--truth-seconds` is spent or `--max-truth` is reached (the same K_truth for every
    action). Estimates: seeds of root seed 1 (disjoint from the truth seeds); K = 16 and 32 are
    the first 16 and 32 of the K = 64 estimate seeds (nested). Jobs are built exactly as
    `papo branch` builds them (`run._jobs`) and run with `engine.run_job` on a process pool;
    nothing is written to the dataset.
(c) amortised importance: I = (PN + PS) / 2 at K = 16 (undefined counts as 0, as
    `papo estimate --amortize` does) for every planning action of the dataset;
    `amortize()` cross-validated MAE against the predict-the-mean baseline, then at audit
    fractions 0.25 / 0.5 / 0.75 (the hashed audit set of `papo branch --audit-fraction`) the
    model trained on the audit set is scored on the unaudited actions (with a paired bootstrap
    interval of its gain over the mean baseline, resampling the episodes of the unaudited
    actions), next to the share of branch steps that the unaudited actions would have cost
    (the steps saved).

Run it with:

    .venv/bin/python analyses/estimator_validation.py --workdir /tmp/ev \
        --out-md /tmp/ev/ev.md --figure analyses/figures/estimator_validation.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binom

from papo_data.branches import run as run_module
from papo_data.branches.engine import Job, JobResult, branch_seed
from papo_data.branches.run import BranchConfig
from papo_data.causal.amortized import amortize, audited
from papo_data.causal.paired import (
    cluster_bootstrap_ratio,
    pn_ps_from_counts,
    proportion_interval,
)
from papo_data.data.commit import write_atomic_bytes
from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.planning.segment import SegmentConfig, segment
from papo_data.sim.collect import CollectConfig, collect, make_env

KS = (16, 32, 64)
QUANTITIES = ("pn", "ps", "pns")
METHODS = ("wilson", "exact")
TOL = 0.05
TRUTH_ROOT, ESTIMATE_ROOT = 0, 1
AUDIT_FRACTIONS = (0.25, 0.5, 0.75)

# (name, (p11, p10, p01, p00)): always, necessary-and-sufficient, harm, never.
MODELS: tuple[tuple[str, tuple[float, float, float, float]], ...] = (
    ("balanced", (0.30, 0.30, 0.10, 0.30)),
    ("PN near 1", (0.02, 0.50, 0.03, 0.45)),
    ("PN near 0", (0.60, 0.02, 0.08, 0.30)),
    ("rare success", (0.05, 0.10, 0.02, 0.83)),
    ("monotone, PN = 1", (0.00, 0.60, 0.00, 0.40)),
    ("weak effect", (0.70, 0.05, 0.00, 0.25)),
)


def truth_of(shares: tuple[float, float, float, float]) -> dict[str, float]:
    p11, p10, _, p00 = shares
    return {
        "pn": p10 / (p10 + p11) if p10 + p11 else math.nan,
        "ps": p10 / (p10 + p00) if p10 + p00 else math.nan,
        "pns": p10,
    }


@cache
def cached_estimate(n10: int, n11: int, n01: int, n00: int, method: str) -> dict[str, Any]:
    return pn_ps_from_counts(n10, n11, n01, n00, method=method)


def covers(est: dict[str, Any], name: str, value: float) -> bool:
    return est[f"{name}_lo"] - 1e-12 <= value <= est[f"{name}_hi"] + 1e-12


def share_row(hits: int, n: int) -> dict[str, Any]:
    lo, hi = proportion_interval(hits, n) if n else (math.nan, math.nan)
    return {"hits": hits, "n": n, "share": hits / n if n else math.nan, "lo": lo, "hi": hi}


# -- (a) synthetic ----------------------------------------------------------------------------
def part_a(reps: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    for m, (name, shares) in enumerate(MODELS):
        truth = truth_of(shares)
        for k in KS:
            rng = np.random.default_rng([seed, m, k])
            # Response types -> pairs (Y_x, Y_x') -> the four pair counts.
            types = rng.choice(4, size=(reps, k), p=shares)
            counts = np.stack([(types == i).sum(axis=1) for i in range(4)], axis=1)
            for method in METHODS:
                for q in QUANTITIES:
                    hits = defined = 0
                    for p11, p10, p01, p00 in counts:
                        est = cached_estimate(int(p10), int(p11), int(p01), int(p00), method)
                        if math.isnan(est[q]):
                            continue
                        defined += 1
                        hits += covers(est, q, truth[q])
                    rows.append(
                        {
                            "model": name,
                            "k": k,
                            "method": method,
                            "quantity": q,
                            "truth": truth[q],
                            "undefined": 1 - defined / reps,
                            **share_row(hits, defined),
                        }
                    )
    return rows


# -- (b) Meta-World ---------------------------------------------------------------------------
def prepare(path: Path, groups: int, group_size: int, max_steps: int, workers: int) -> None:
    if (path / "papo").exists():
        with Dataset(path) as ds:
            n = ds.sql("SELECT count(*) AS n FROM planning_actions WHERE detector = 'joint'")
        if int(n["n"][0]):
            return
    cfg = CollectConfig(
        tasks=("pick-place-v3",), groups=groups, group_size=group_size, max_steps=max_steps
    )
    collect(path, cfg, workers=workers)
    segment(path, SegmentConfig())


def build_jobs(path: Path) -> tuple[list[dict[str, Any]], list[Job], str]:
    """One `hold` job per planning action (frame > 0), built as `papo branch` builds them."""
    cfg = BranchConfig(k=1, interventions=("hold",))
    with Dataset(path) as ds:
        papo = ds.info.get("papo", {})
        env_name = papo.get("env", "metaworld")
        targets = ds.arrow(
            sql_text(run_module.__file__, "targets.sql"),
            {"detector": "joint", "limit": 2**62, "mixed_only": False},
        ).to_pylist()
        targets = [t for t in targets if t["frame_index"] > 0]
        horizon = run_module._horizon(ds, papo, make_env(env_name).max_steps)
        stop = papo.get("episode_end", "first_success") == "first_success"
        jobs = [job for job, _ in run_module._jobs(ds, targets, cfg, horizon, stop)]
    return targets, jobs, env_name


def choose(targets: list[dict[str, Any]], n: int) -> list[int]:
    """Indices of n planning actions: evenly spread over those of opposite-outcome groups, then
    topped up (evenly) from the rest."""
    mixed = [i for i, t in enumerate(targets) if t["mixed_group"]]
    rest = [i for i, t in enumerate(targets) if not t["mixed_group"]]
    out: list[int] = []
    for pool in (mixed, rest):
        want = min(n - len(out), len(pool))
        if want > 0:
            idx = np.linspace(0, len(pool) - 1, want).round().astype(int)
            out += [pool[i] for i in sorted(set(idx.tolist()))]
    return sorted(out)


def with_seeds(job: Job, root: int, ks: range, replay: bool) -> Job:
    seeds = [branch_seed(root, job.episode_uid, job.frame, k) for k in ks]
    return dataclasses.replace(job, seeds=seeds, known={}, need_replay=replay)


def _work(job: Job, env_name: str) -> JobResult:
    return run_module._work(job, env_name)


def run_jobs(jobs: list[Job], env_name: str, pool: ProcessPoolExecutor) -> Iterator[JobResult]:
    futures = [pool.submit(_work, job, env_name) for job in jobs]
    for f in futures:
        yield f.result()


@dataclass
class Arms:
    """Per planning action: seed -> (factual success, alternative success), steps per seed."""

    pairs: dict[int, tuple[bool, bool]] = field(default_factory=dict)
    steps: dict[int, int] = field(default_factory=dict)
    replay_exact: bool | None = None

    def add(self, result: JobResult) -> None:
        fact: dict[int, bool] = {}
        alt: dict[int, bool] = {}
        for r in result.rows:
            seed = int(r["seed"])
            if r["arm"] == "factual":
                fact[seed] = bool(r["success"])
            elif r["arm"] == "alternative":
                alt[seed] = bool(r["success"])
            else:
                self.replay_exact = bool(r["replay_exact"])
                continue
            self.steps[seed] = self.steps.get(seed, 0) + int(r["length"])
        for seed in fact:
            self.pairs[seed] = (fact[seed], alt[seed])

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": {str(k): list(v) for k, v in self.pairs.items()},
            "steps": {str(k): v for k, v in self.steps.items()},
            "replay_exact": self.replay_exact,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Arms:
        return cls(
            {int(k): (bool(v[0]), bool(v[1])) for k, v in d["pairs"].items()},
            {int(k): int(v) for k, v in d["steps"].items()},
            d["replay_exact"],
        )

    def counts(self, seeds: list[int]) -> tuple[int, int, int, int]:
        ys = [self.pairs[s] for s in seeds]
        return (
            sum(y and not a for y, a in ys),
            sum(y and a for y, a in ys),
            sum(a and not y for y, a in ys),
            sum(not y and not a for y, a in ys),
        )


def key(job: Job) -> tuple[str, int]:
    return (job.episode_uid, job.frame)


def part_b_branch(
    path: Path, n_actions: int, max_truth: int, chunk: int, seconds: float, workers: int
) -> dict[str, Any]:
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return _part_b_branch(path, n_actions, max_truth, chunk, seconds, pool)


def _part_b_branch(
    path: Path, n_actions: int, max_truth: int, chunk: int, seconds: float, pool: Any
) -> dict[str, Any]:
    targets, jobs, env_name = build_jobs(path)
    chosen = choose(targets, n_actions)
    # Finished work is kept next to the dataset, so an interrupted run resumes where it stopped
    # (every seed is deterministic, so a resumed run gives the same tables).
    saved_path = path.parent / f"{path.name}-part-b-{n_actions}.json"
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    if saved.get("keys") != [list(key(j)) for j in jobs]:
        saved = {}
    est = {key(j): Arms() for j in jobs}
    t0 = time.perf_counter()
    if saved:
        est = {key(j): Arms.from_json(a) for j, a in zip(jobs, saved["est"], strict=True)}
        steps, est_s = saved["estimate_steps"], saved["estimate_seconds"]
    else:
        # Estimates: K = 64 for the chosen actions, K = 16 (part c) for the others; with replay.
        est_jobs = [
            with_seeds(j, ESTIMATE_ROOT, range(max(KS) if i in chosen else KS[0]), True)
            for i, j in enumerate(jobs)
        ]
        steps = 0
        for r in run_jobs(est_jobs, env_name, pool):
            est[(r.episode_uid, r.frame)].add(r)
            steps += r.simulated_steps
        est_s = time.perf_counter() - t0
    rate = steps / est_s
    print(f"estimates: {steps} steps in {est_s:.0f} s ({rate:.0f} steps/s)", flush=True)
    truth = {key(jobs[i]): Arms() for i in chosen}
    k_truth, truth_steps, truth_s = 0, 0, 0.0
    if saved and saved["chosen"] == chosen:
        truth = {
            key(jobs[i]): Arms.from_json(a) for i, a in zip(chosen, saved["truth"], strict=True)
        }
        k_truth, truth_steps, truth_s = saved["k_truth"], saved["truth_steps"], saved["truth_s"]
    t1 = time.perf_counter() - truth_s
    while True:
        write_atomic_bytes(  # a crash mid-write must not lose the rounds already run
            json.dumps(
                {
                    "keys": [list(key(j)) for j in jobs],
                    "est": [est[key(j)].to_json() for j in jobs],
                    "estimate_steps": steps,
                    "estimate_seconds": est_s,
                    "chosen": chosen,
                    "truth": [truth[key(jobs[i])].to_json() for i in chosen],
                    "k_truth": k_truth,
                    "truth_steps": truth_steps,
                    "truth_s": time.perf_counter() - t1,
                }
            ).encode(),
            saved_path,
        )
        if k_truth >= max_truth:
            break
        elapsed = time.perf_counter() - t1
        per_round = elapsed / (k_truth / chunk) if k_truth else est_s * chunk / max(KS) / 2
        if elapsed + per_round > seconds:
            break
        seeds = range(k_truth, min(k_truth + chunk, max_truth))
        round_jobs = [with_seeds(jobs[i], TRUTH_ROOT, seeds, False) for i in chosen]
        for r in run_jobs(round_jobs, env_name, pool):
            truth[(r.episode_uid, r.frame)].add(r)
            truth_steps += r.simulated_steps
        k_truth = seeds.stop
        print(f"truth: K = {k_truth} after {time.perf_counter() - t1:.0f} s", flush=True)
    return {
        "targets": targets,
        "jobs": jobs,
        "chosen": chosen,
        "est": est,
        "truth": truth,
        "k_truth": k_truth,
        "estimate_steps": steps,
        "truth_steps": truth_steps,
        "truth_seconds": time.perf_counter() - t1,
        "rate": rate,
    }


def ideal_within(q: str, counts: tuple[int, int, int, int], k: int) -> float:
    """The chance that an exact paired estimate from k fresh seeds lands within TOL of the truth,
    if the truth's proportions were exact: the conditioning count m ~ Bin(k, c) (factual
    successes for PN, alternative failures for PS, all k for PNS), then n10 ~ Bin(m, p),
    given m >= 1 (the estimate is defined). The best share any estimator of this design reaches
    at k seeds; the goal's 90% is out of reach where this is below it."""
    n10, n11, _, n00 = counts
    total = sum(counts)
    cond = {"pn": n10 + n11, "ps": n10 + n00, "pns": total}[q]
    if cond == 0:
        return math.nan
    p, c = n10 / cond, cond / total
    ms = np.arange(1, k + 1)
    pm = binom.pmf(ms, k, c)
    hits = []
    for m in ms:
        x = np.arange(m + 1)
        hits.append(binom.pmf(x[np.abs(x / m - p) <= TOL + 1e-12], m, p).sum())
    return float((pm * np.array(hits)).sum() / pm.sum())


def part_b_tables(b: dict[str, Any]) -> dict[str, Any]:
    jobs, k_truth = b["jobs"], b["k_truth"]
    per_action = []
    excluded = []
    for i in b["chosen"]:
        job = jobs[i]
        e = b["est"][key(job)]
        if e.replay_exact is not True:
            excluded.append(f"{job.episode_uid} frame {job.frame}")
            continue
        tr = b["truth"][key(job)]
        t_seeds = [branch_seed(TRUTH_ROOT, job.episode_uid, job.frame, k) for k in range(k_truth)]
        counts = tr.counts(t_seeds)
        truth = cached_estimate(*counts, "wilson")
        row: dict[str, Any] = {
            "uid": job.episode_uid,
            "frame": job.frame,
            "truth": truth,
            "truth_counts": counts,
        }
        e_seeds = [branch_seed(ESTIMATE_ROOT, job.episode_uid, job.frame, k) for k in range(64)]
        for k in KS:
            for method in METHODS:
                row[(k, method)] = cached_estimate(*e.counts(e_seeds[:k]), method)
        per_action.append(row)
    accuracy, coverage = [], []
    for k in KS:
        for q in QUANTITIES:
            defined = [
                r
                for r in per_action
                if not (math.isnan(r[(k, "wilson")][q]) or math.isnan(r["truth"][q]))
            ]
            errs = [abs(r[(k, "wilson")][q] - r["truth"][q]) for r in defined]
            ideal = [ideal_within(q, r["truth_counts"], k) for r in defined]
            accuracy.append(
                {
                    "k": k,
                    "quantity": q,
                    "ideal": float(np.mean(ideal)) if ideal else math.nan,
                    "median_err": float(np.median(errs)) if errs else math.nan,
                    "max_err": float(np.max(errs)) if errs else math.nan,
                    "errs": errs,
                    "undefined": len(per_action) - len(errs),
                    **share_row(sum(x <= TOL + 1e-12 for x in errs), len(errs)),
                }
            )
            for method in METHODS:
                ok = [
                    covers(r[(k, method)], q, r["truth"][q])
                    for r in per_action
                    if not (math.isnan(r[(k, method)][q]) or math.isnan(r["truth"][q]))
                ]
                coverage.append(
                    {"k": k, "quantity": q, "method": method, **share_row(sum(ok), len(ok))}
                )
    return {
        "per_action": per_action,
        "accuracy": accuracy,
        "coverage": coverage,
        "excluded": excluded,
    }


# -- (c) amortised ----------------------------------------------------------------------------
def part_c(path: Path, b: dict[str, Any]) -> dict[str, Any]:
    k = KS[0]
    importance: dict[tuple[str, int], float] = {}
    cost: dict[tuple[str, int], int] = {}
    for job in b["jobs"]:
        e = b["est"][key(job)]
        if e.replay_exact is not True:
            continue
        seeds = [branch_seed(ESTIMATE_ROOT, job.episode_uid, job.frame, i) for i in range(k)]
        est = cached_estimate(*e.counts(seeds), "wilson")
        defined = [v for v in (est["pn"], est["ps"]) if not math.isnan(v)]
        importance[key(job)] = float(np.mean(defined)) if defined else 0.0
        cost[key(job)] = sum(e.steps[s] for s in seeds)
    out: dict[str, Any] = {"n": len(importance), "rows": []}
    with Dataset(path) as ds:
        full = amortize(ds, "joint", importance)
        out["cv_mae"], out["baseline_mae"] = full.cv_mae, full.baseline_mae
        total = sum(cost.values())
        for f in AUDIT_FRACTIONS:
            audit = {a: v for a, v in importance.items() if audited(a[0], a[1], f)}
            held = {a: v for a, v in importance.items() if a not in audit}
            row: dict[str, Any] = {
                "fraction": f,
                "audited": len(audit),
                "held_out": len(held),
                "steps_saved": 1 - sum(cost[a] for a in audit) / total,
            }
            try:
                res = amortize(ds, "joint", audit)
            except ValueError as err:
                row["error"] = str(err)
                out["rows"].append(row)
                continue
            pred = {(r["episode_uid"], r["frame_index"]): r["importance"] for r in res.rows}
            mean = float(np.mean(list(audit.values())))
            model_err = np.array([abs(pred[a] - v) for a, v in held.items()])
            mean_err = np.array([abs(mean - v) for v in held.values()])
            row["mae"], row["baseline_mae"] = float(model_err.mean()), float(mean_err.mean())
            # an episode's planning actions share a rollout: resample episodes, not actions
            diff = mean_err - model_err
            _, row["gain_ci"] = cluster_bootstrap_ratio(
                diff, np.ones_like(diff), [a[0] for a in held], 0
            )
            row["cv_mae"] = res.cv_mae
            out["rows"].append(row)
    return out


# -- output -----------------------------------------------------------------------------------
def fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def ci(row: dict[str, Any]) -> str:
    return f"{fmt(row['share'])} [{fmt(row['lo'])}, {fmt(row['hi'])}] (n={row['n']})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def report_a(rows: list[dict[str, Any]], reps: int) -> str:
    out = [f"### (a) Synthetic models: coverage of nominal 95% intervals, {reps} replications"]
    out.append("")
    out.append(
        "Shares are (p11, p10, p01, p00). Coverage over replications where the estimate is "
        "defined, with a Wilson 95% interval on the coverage; `undef` = share of replications "
        "where the conditioning event never happened."
    )
    for method in METHODS:
        out += ["", f"**{method}**", ""]
        body = []
        for name, shares in MODELS:
            for k in KS:
                cells = [name if k == KS[0] else "", str(shares) if k == KS[0] else "", str(k)]
                for q in QUANTITIES:
                    r = next(
                        x
                        for x in rows
                        if (x["model"], x["k"], x["method"], x["quantity"]) == (name, k, method, q)
                    )
                    undef = f", undef {r['undefined']:.1%}" if r["undefined"] else ""
                    cells.append(f"{fmt(r['share'])} [{fmt(r['lo'], 2)}, {fmt(r['hi'], 2)}]{undef}")
                body.append(cells)
        truth_header = [f"{q.upper()} coverage" for q in QUANTITIES]
        out.append(table(["model", "shares", "K", *truth_header], body))
    cells = []
    for method in METHODS:
        sel = [r for r in rows if r["method"] == method]
        inside = sum(0.93 <= r["share"] <= 0.97 for r in sel)
        below = sum(r["share"] < 0.93 for r in sel)
        above = sum(r["share"] > 0.97 for r in sel)
        pooled = sum(r["hits"] for r in sel) / sum(r["n"] for r in sel)
        cells.append(
            [
                method,
                str(len(sel)),
                str(inside),
                str(below),
                str(above),
                fmt(pooled),
                fmt(min(r["share"] for r in sel)),
            ]
        )
    out += [
        "",
        "Summary over (model, K, quantity) cells:",
        "",
        table(
            ["interval", "cells", "in 93-97%", "below 93%", "above 97%", "pooled", "min"],
            cells,
        ),
    ]
    return "\n".join(out)


def report_b(b: dict[str, Any], t: dict[str, Any]) -> str:
    n = len(t["per_action"])
    out = [
        f"### (b) Meta-World pick-place-v3, `hold`: {n} planning actions, "
        f"ground truth K_truth = {b['k_truth']} seeds",
        "",
        f"Truth: {b['truth_steps']} simulated steps in {b['truth_seconds']:.0f} s; estimates: "
        f"{b['estimate_steps']} steps ({b['rate']:.0f} steps/s on the pool). Excluded (replay "
        f"not exact): {len(t['excluded'])}. `ideal share`: the share an exact binomial "
        f"draw of the same K seeds around the truth would reach (see `ideal_within`).",
        "",
    ]
    rows = [
        [
            str(r["k"]),
            r["quantity"].upper(),
            ci(r),
            fmt(r["ideal"]),
            fmt(r["median_err"]),
            fmt(r["max_err"]),
            str(r["undefined"]),
        ]
        for r in t["accuracy"]
    ]
    out.append(
        table(
            [
                "K",
                "quantity",
                f"share with |err| <= {TOL}",
                "ideal share",
                "median |err|",
                "max |err|",
                "undef",
            ],
            rows,
        )
    )
    out += ["", "Coverage of the truth point by the K-seed interval (nominal 95%):", ""]
    rows = [[str(r["k"]), r["quantity"].upper(), r["method"], ci(r)] for r in t["coverage"]]
    out.append(table(["K", "quantity", "interval", "coverage"], rows))
    out += ["", "Per planning action (truth with its Wilson interval, estimate at K = 64):", ""]
    rows = []
    for r in t["per_action"]:
        tr, e = r["truth"], r[(64, "wilson")]
        cells = [r["uid"][:12], str(r["frame"])]
        for q in QUANTITIES:
            cells.append(f"{fmt(tr[q], 2)} [{fmt(tr[q + '_lo'], 2)}, {fmt(tr[q + '_hi'], 2)}]")
            cells.append(fmt(e[q], 2))
        rows.append(cells)
    out.append(
        table(
            [
                "episode",
                "frame",
                "PN truth",
                "PN K=64",
                "PS truth",
                "PS K=64",
                "PNS truth",
                "PNS K=64",
            ],
            rows,
        )
    )
    return "\n".join(out)


def gain(row: dict[str, Any]) -> str:
    """Baseline MAE minus model MAE on the held-out actions, with its paired bootstrap CI."""
    if "gain_ci" not in row:
        return "n/a"
    lo, hi = row["gain_ci"]
    return f"{fmt(row['baseline_mae'] - row['mae'])} [{fmt(lo)}, {fmt(hi)}]"


def report_c(c: dict[str, Any]) -> str:
    out = [
        f"### (c) Amortised importance (I = (PN + PS) / 2 at K = 16, {c['n']} planning actions)",
        "",
        f"All actions as training set, 5-fold CV: model MAE {fmt(c['cv_mae'])}, "
        f"predict-the-mean MAE {fmt(c['baseline_mae'])}.",
        "",
    ]
    rows = []
    for r in c["rows"]:
        rows.append(
            [
                str(r["fraction"]),
                str(r["audited"]),
                str(r["held_out"]),
                fmt(r.get("mae", math.nan)),
                fmt(r.get("baseline_mae", math.nan)),
                gain(r),
                fmt(r.get("cv_mae", math.nan)),
                f"{r['steps_saved']:.1%}",
                r.get("error", ""),
            ]
        )
    out.append(
        table(
            [
                "audit fraction",
                "audited",
                "held out",
                "held-out MAE",
                "mean-baseline MAE",
                "baseline - model [95% CI]",
                "CV MAE (audit)",
                "branch steps saved",
                "note",
            ],
            rows,
        )
    )
    return "\n".join(out)


def figure(path: Path, a: list[dict[str, Any]] | None, t: dict[str, Any] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    if a:
        ax = axes[0]
        labels = [name for name, _ in MODELS]
        width = 0.12
        for j, (k, method) in enumerate((k, m) for m in METHODS for k in KS):
            ys = []
            for name in labels:
                sel = [r for r in a if (r["model"], r["k"], r["method"]) == (name, k, method)]
                ys.append(sum(r["hits"] for r in sel) / max(1, sum(r["n"] for r in sel)))
            x = np.arange(len(labels)) + (j - 2.5) * width
            ax.bar(x, ys, width, label=f"{method} K={k}", alpha=0.6 if method == "exact" else 1)
        ax.axhspan(0.93, 0.97, color="green", alpha=0.15)
        ax.axhline(0.95, color="k", lw=0.8)
        ax.set_ylim(0.8, 1.0)
        ax.set_xticks(np.arange(len(labels)), labels, rotation=20, fontsize=8)
        ax.set_ylabel("coverage (PN, PS, PNS pooled)")
        ax.set_title("(a) synthetic: coverage of nominal 95%")
        ax.legend(fontsize=7, ncol=2)
    if t:
        ax = axes[1]
        for j, q in enumerate(QUANTITIES):
            for i, k in enumerate(KS):
                r = next(x for x in t["accuracy"] if (x["k"], x["quantity"]) == (k, q))
                xs = np.full(len(r["errs"]), i + (j - 1) * 0.25)
                jitter = np.random.default_rng(i).uniform(-0.05, 0.05, len(xs))
                ax.scatter(
                    xs + jitter, r["errs"], s=10, label=q.upper() if i == 0 else None, color=f"C{j}"
                )
        ax.axhline(TOL, color="k", ls="--", lw=0.8)
        ax.set_xticks(range(len(KS)), [f"K={k}" for k in KS])
        ax.set_ylabel("|estimate - truth|")
        ax.set_title("(b) Meta-World hold: error against K_truth seeds")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/estimator_validation"))
    ap.add_argument("--groups", type=int, default=3)
    ap.add_argument("--group-size", type=int, default=6)
    ap.add_argument("--max-steps", type=int, default=150)
    ap.add_argument("--n-actions", type=int, default=20)
    ap.add_argument("--max-truth", type=int, default=2000)
    ap.add_argument("--truth-chunk", type=int, default=100)
    ap.add_argument("--truth-seconds", type=float, default=900)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out-md", type=Path)
    ap.add_argument("--figure", type=Path)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if args.quick:
        args.reps, args.groups, args.max_steps = 50, 2, 100
        args.max_truth, args.truth_chunk, args.n_actions = 64, 32, 4
    md: list[str] = []
    a = t = None
    if "a" in parts:
        t0 = time.perf_counter()
        a = part_a(args.reps, args.seed)
        md.append(report_a(a, args.reps))
        print(md[-1], f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)
    if parts & {"b", "c"}:
        path = args.workdir / ("ds_quick" if args.quick else "ds")
        prepare(path, args.groups, args.group_size, args.max_steps, args.workers)
        b = part_b_branch(
            path,
            args.n_actions,
            args.max_truth if "b" in parts else 0,
            args.truth_chunk,
            args.truth_seconds,
            args.workers,
        )
        if "b" in parts:
            t = part_b_tables(b)
            md.append(report_b(b, t))
            print(md[-1], "\n", flush=True)
        if "c" in parts:
            md.append(report_c(part_c(path, b)))
            print(md[-1], "\n", flush=True)
    if args.out_md:
        args.out_md.write_text("\n\n".join(md) + "\n")
    if args.figure:
        figure(args.figure, a, t)


if __name__ == "__main__":
    main()
