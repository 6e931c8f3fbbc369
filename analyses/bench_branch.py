"""Cost and savings of the counterfactual branch engine (`papo branch`, DESIGN §3).

A small real Meta-World dataset is collected once into `--work` (noisy scripted experts,
`--tasks`, `--groups` x `--group-size`) and segmented with `SegmentConfig()` (joint detector);
every measured run branches a fresh copy of it. Three parts, each selectable with `--parts`:

1. `overhead`: planning-action `Job`s are built as `papo branch` builds them
   (`run._jobs`, `--overhead-k` seeds, interventions hold, noise, sibling; `--overhead-limit`
   planning actions spread evenly over the dataset). One untimed pass of `run_job` through a
   recording env wrapper logs every segment the engine simulates: the blob it restored, the
   actions it stepped, and which steps called the policy. Then, per repeat and per job, in an
   order rotating over jobs and repeats, three variants are timed on the same warm env:
   - `engine`: `run_job(job, env)` (restore the checkpoint, replay to t with bit checks,
     snapshot, per arm: restore, rebuild the policy, window + policy steps; the replay arm);
   - `steps+policy`: per recorded segment, restore (untimed), then the same `env.step` calls
     with the same actions from the same states, calling `policy.act` on the same observations
     at the steps where the engine did (its output is dropped: the recorded action is stepped);
   - `steps`: the same, `env.step` alone.
   Both baselines re-simulate the engine's trajectories bit for bit (checked), so the physics
   is the same work; overhead = t_engine / t_baseline - 1 over all jobs of a repeat. Goal:
   <= 10% against `steps+policy`.
2. `workers`: `branch()` with `workers=1` and `workers=2` on fresh copies (same config,
   `--workers-k` seeds, hold/noise/sibling, the first `--workers-limit` planning actions),
   interleaved, order alternating per repeat; speedup = t1 / t2. The branches tables of every
   run must be identical. Goal: >= 1.7x.
3. `adaptive`: `branch()` with fixed K (`BranchConfig(k=--fixed-k, interventions=("hold",))`)
   and adaptive K (`BranchConfig(k=--adaptive-k, max_k=--fixed-k, adaptive=True, tol=--tol)`)
   on fresh copies, the first `--adaptive-limit` planning actions. Branch steps saved =
   1 - steps_adaptive / steps_fixed, steps from info.json `papo.branch_budget.branch_steps`
   (one replay arm per planning action included in both; arm-only steps are shown too).
   Importance I = (PN + PS) / 2 per planning action from `paired_pn_ps` over its seeds (a NaN
   PN or PS: the defined one; both NaN: 0). Top set = the ceil(n/4) planning actions with the
   highest I, ties broken by (episode_uid, frame_index); agreement = |top_fixed ∩ top_adaptive|
   / ceil(n/4). A tie-aware variant counts a fixed-top action as agreeing when its adaptive I
   is at least the adaptive cut value. Spearman rank correlation of I over all planning
   actions, with a 95% percentile bootstrap over planning actions. The adaptive rows must be
   a subset of the fixed rows (same seeds, same outcomes). Goals: saved >= 40%, agreement >=
   95%. Deterministic: no repeats (its wall times are shown for information only).

Timings are medians over `--repeats` (minima beside them); the machine's load average before
and after is printed: on a busy machine the timing parts mean little. Prints a markdown report
and writes it to `--out-md`; exits 1 if a correctness check fails (a replay not exact, a
baseline not reproducing the engine's trajectories, worker counts giving different tables,
adaptive rows not among the fixed rows), 0 otherwise (goals met or not: it is a measurement).

    .venv/bin/python analyses/bench_branch.py --out-md /tmp/bench_branch.md
    .venv/bin/python analyses/bench_branch.py --quick   # every part at tiny size (smoke check)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import polars as pl
from scipy.stats import spearmanr

from papo_data.branches import run as run_module
from papo_data.branches.engine import Job, run_job
from papo_data.branches.run import BranchConfig, BranchSummary, branch
from papo_data.causal.paired import paired_pn_ps
from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.planning.segment import SegmentConfig, segment
from papo_data.sim.collect import CollectConfig, collect
from papo_data.sim.metaworld import MetaWorldEnv
from papo_data.sim.policies import Policy, policy_from_id

PARTS = ("overhead", "workers", "adaptive")
OVERHEAD_GOAL = 0.10
SPEEDUP_GOAL = 1.7
SAVED_GOAL = 0.40
AGREEMENT_GOAL = 0.95
TOP_SHARE = 0.25
"""The top quartile of planning actions by importance."""
BOOTSTRAP_SAMPLES = 2000
MIN_WORKERS_S = 60.0
"""Part 2 wants at least this much work with 1 worker (worker start-up is ~1-2 s each)."""
VARIANTS = ("engine", "steps+policy", "steps")
ORDER = ["episode_uid", "frame_index", "intervention", "arm", "seed"]


# -- the dataset ----------------------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def base_dataset(args: argparse.Namespace) -> Path:
    """The collected and segmented dataset every run copies (collected once, reused)."""
    horizon = args.max_steps or MetaWorldEnv.max_steps
    name = f"base-{'+'.join(args.tasks)}-{args.groups}x{args.group_size}-h{horizon}"
    path = args.work / name
    cfg = CollectConfig(
        tasks=tuple(args.tasks),
        groups=args.groups,
        group_size=args.group_size,
        max_steps=args.max_steps,
    )
    want = len(args.tasks) * args.groups * args.group_size
    info = path / "meta" / "info.json"
    if not info.exists() or json.loads(info.read_text())["total_episodes"] != want:
        t0 = time.perf_counter()
        collect(path, cfg, workers=2)
        log(f"collected {want} episodes into {path} in {time.perf_counter() - t0:.0f} s")
    seg = segment(path, SegmentConfig())
    log(
        f"segmented: {seg.planning_actions} planning actions ({seg.detector}) in "
        f"{seg.episodes} episodes"
    )
    return path


def fresh_copy(base: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base, dest)
    return dest


def branches_table(path: Path) -> pl.DataFrame:
    with Dataset(path) as ds:
        return ds.sql("SELECT * FROM branches").sort(ORDER)


def replays_exact(table: pl.DataFrame, planning_actions: int) -> bool:
    """One replay arm per planning action, each reproducing the log (read from the rows: the
    summary's `not_exact` list is not relied on)."""
    replay = table.filter(pl.col("arm") == "replay")
    return len(replay) == planning_actions and bool(replay["replay_exact"].fill_null(False).all())


def describe_dataset(path: Path) -> dict[str, Any]:
    with Dataset(path) as ds:
        row = ds.sql(
            "SELECT count(*) AS episodes, sum(length)::BIGINT AS steps, "
            "avg(success::INT) AS success FROM episodes"
        ).row(0, named=True)
        pas = ds.sql("SELECT count(*) AS n FROM planning_actions WHERE detector = 'joint'")
    return row | {"planning_actions": int(pas["n"][0])}


# -- part 1: overhead of run_job against the same env.step work ------------------------------
@dataclass
class Segment:
    """What the engine simulated after one `restore`."""

    blob: bytes
    actions: list[np.ndarray] = field(default_factory=list)
    by_policy: list[bool] = field(default_factory=list)
    last_obs: np.ndarray | None = None


class Recorder:
    """An env wrapper that logs every restore, step and policy call of `run_job`."""

    def __init__(self, env: MetaWorldEnv):
        self.env = env
        self.snapshot_format = env.snapshot_format
        self.state_names = env.state_names
        self.action_names = env.action_names
        self.fps = env.fps
        self.max_steps = env.max_steps
        self.segments: list[Segment] = []
        self.snapshots = 0
        self._policy_called = False

    def tasks(self) -> dict[str, str]:
        return self.env.tasks()

    def reset(self, task: str, init_seed: int) -> np.ndarray:
        raise RuntimeError("run_job never resets")

    def restore(self, blob: bytes) -> np.ndarray:
        self.segments.append(Segment(blob))
        self._policy_called = False
        obs = self.env.restore(blob)
        self.segments[-1].last_obs = obs
        return obs

    def snapshot(self) -> bytes:
        self.snapshots += 1
        return self.env.snapshot()

    def expert_action(self, obs: np.ndarray) -> np.ndarray:
        self._policy_called = True
        return self.env.expert_action(obs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        seg = self.segments[-1]
        seg.actions.append(np.array(action, copy=True))
        seg.by_policy.append(self._policy_called)
        self._policy_called = False
        out = self.env.step(action)
        seg.last_obs = out[0]
        return out


@dataclass
class Recorded:
    job: Job
    segments: list[Segment]
    snapshots: int
    replay_exact: bool | None

    @property
    def steps(self) -> int:
        return sum(len(s.actions) for s in self.segments)

    @property
    def policy_calls(self) -> int:
        return sum(sum(s.by_policy) for s in self.segments)


def overhead_jobs(path: Path, cfg: BranchConfig, limit: int, env: MetaWorldEnv) -> list[Job]:
    """Jobs of `limit` planning actions spread evenly over the dataset, built as `branch()`
    builds them."""
    with Dataset(path) as ds:
        papo = ds.info.get("papo", {})
        targets = ds.arrow(
            sql_text(run_module.__file__, "targets.sql"),
            {"detector": cfg.detector, "limit": 2**62, "mixed_only": cfg.mixed_groups_only},
        ).to_pylist()
        horizon = run_module._horizon(ds, papo, env.max_steps)
        stop = papo.get("episode_end", "first_success") == "first_success"
        idx = sorted(set(np.linspace(0, len(targets) - 1, min(limit, len(targets))).round()))
        chosen = [targets[int(i)] for i in idx]
        return [job for job, _ in run_module._jobs(ds, chosen, cfg, horizon, stop)]


def record(job: Job, env: MetaWorldEnv) -> Recorded:
    rec = Recorder(env)
    result = run_job(job, rec)  # type: ignore[arg-type]  # duck-typed EnvAdapter
    out = Recorded(job, rec.segments, rec.snapshots, result.replay_exact)
    # Every step is seen: the arms' steps plus the replay from the checkpoint to the frame.
    if out.steps != result.simulated_steps + job.frame - job.checkpoint_frame:
        raise RuntimeError(f"{job.episode_uid} frame {job.frame}: the recorder missed steps")
    return out


def time_engine(job: Job, env: MetaWorldEnv) -> float:
    t0 = time.perf_counter()
    run_job(job, env)
    return time.perf_counter() - t0


def time_steps(
    rec: Recorded, env: MetaWorldEnv, policy: Policy | None, rng: np.random.Generator
) -> tuple[float, bool]:
    """Seconds of the recorded env.step calls (and policy calls if `policy`), restores not
    timed; and whether every segment ended on the engine's observation, bit for bit."""
    total, same = 0.0, True
    for seg in rec.segments:
        obs = env.restore(seg.blob)
        if policy is None:
            t0 = time.perf_counter()
            for action in seg.actions:
                obs, _, _ = env.step(action)
            total += time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            policy.reset()
            for action, by_policy in zip(seg.actions, seg.by_policy, strict=True):
                if by_policy:
                    policy.act(obs, rng)
                obs, _, _ = env.step(action)
            total += time.perf_counter() - t0
        same = same and np.array_equal(obs, seg.last_obs)
    return total, same


@dataclass
class OverheadResult:
    jobs: int
    steps: int
    policy_calls: int
    restores: int
    snapshots: int
    replay_exact: bool
    same_trajectories: bool
    times: dict[str, list[float]]
    """Per variant, the total seconds over all jobs of each repeat."""

    def median(self, v: str) -> float:
        return statistics.median(self.times[v])

    def best(self, v: str) -> float:
        return min(self.times[v])

    def overhead(self, baseline: str) -> tuple[float, float, float, float]:
        """(ratio of medians, ratio of minima, min and max of the per-repeat ratios) - 1."""
        per = [e / b - 1 for e, b in zip(self.times["engine"], self.times[baseline], strict=True)]
        return (
            self.median("engine") / self.median(baseline) - 1,
            self.best("engine") / self.best(baseline) - 1,
            min(per),
            max(per),
        )


def part_overhead(base: Path, args: argparse.Namespace) -> OverheadResult:
    env = MetaWorldEnv()
    cfg = BranchConfig(k=args.overhead_k, seed=args.seed)
    jobs = overhead_jobs(base, cfg, args.overhead_limit, env)
    t0 = time.perf_counter()
    recs = [record(job, env) for job in jobs]  # also the warm-up
    steps = sum(r.steps for r in recs)
    log(
        f"overhead: {len(jobs)} jobs, {steps:,} env steps per pass "
        f"(recording pass {time.perf_counter() - t0:.1f} s)"
    )
    policies = {r.job.policy_id: policy_from_id(r.job.policy_id, env) for r in recs}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    same = True
    for r in range(args.repeats):
        gc.collect()
        totals = dict.fromkeys(VARIANTS, 0.0)
        for j, rec in enumerate(recs):
            shift = (r + j) % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                if variant == "engine":
                    seconds = time_engine(rec.job, env)
                else:
                    policy = policies[rec.job.policy_id] if variant == "steps+policy" else None
                    rng = np.random.default_rng(args.seed)
                    seconds, ok = time_steps(rec, env, policy, rng)
                    same = same and ok
                totals[variant] += seconds
        for v in VARIANTS:
            times[v].append(totals[v])
        ratio = totals["engine"] / totals["steps+policy"] - 1
        log(
            f"overhead repeat {r + 1}/{args.repeats}: "
            + ", ".join(f"{v} {totals[v]:.2f} s" for v in VARIANTS)
            + f"; engine / steps+policy - 1 = {100 * ratio:+.1f}%"
        )
    return OverheadResult(
        jobs=len(jobs),
        steps=steps,
        policy_calls=sum(r.policy_calls for r in recs),
        restores=sum(len(r.segments) for r in recs),
        snapshots=sum(r.snapshots for r in recs),
        # bool(): the engine's flag can be a numpy bool (`is True` would miss it).
        replay_exact=all(r.replay_exact is not None and bool(r.replay_exact) for r in recs),
        same_trajectories=same,
        times=times,
    )


def overhead_md(o: OverheadResult, args: argparse.Namespace) -> str:
    lines = [
        f"{o.jobs} planning actions (spread evenly over the dataset), BranchConfig(k="
        f"{args.overhead_k}, interventions=hold,noise,sibling); per pass {o.steps:,} env steps, "
        f"{o.policy_calls:,} policy calls, {o.restores:,} restores, {o.snapshots} snapshots; "
        f"{args.repeats} repeats, jobs x variants interleaved (order rotating). Replay arms "
        f"exact: {yes(o.replay_exact)}; baselines reproduce the engine's trajectories bit for "
        f"bit: {yes(o.same_trajectories)}.\n",
        "| variant | median s | min s | steps/s (median) |",
        "|---|---|---|---|",
    ]
    for v in VARIANTS:
        lines.append(
            f"| {v} | {o.median(v):.2f} | {o.best(v):.2f} | {o.steps / o.median(v):,.0f} |"
        )
    lines += ["", "| overhead of engine vs | medians | minima | per-repeat range |"]
    lines.append("|---|---|---|---|")
    for b in VARIANTS[1:]:
        med, best, lo, hi = o.overhead(b)
        lines.append(
            f"| {b} | {100 * med:+.1f}% | {100 * best:+.1f}% "
            f"| {100 * lo:+.1f}% to {100 * hi:+.1f}% |"
        )
    extra = o.median("engine") - o.median("steps+policy")
    lines.append(
        f"\nEngine time beyond steps+policy: {extra:.2f} s, "
        f"{1e3 * extra / o.restores:.2f} ms per restore (restore, policy rebuild, bit checks, "
        "rows).\n"
    )
    return "\n".join(lines)


# -- part 2: workers --------------------------------------------------------------------------
@dataclass
class WorkersResult:
    cfg: BranchConfig
    times: dict[int, list[float]]
    summary: BranchSummary
    identical: bool
    replay_exact: bool

    def speedup(self) -> tuple[float, float, float, float]:
        """(ratio of medians, ratio of minima, min and max of per-repeat ratios)."""
        per = [a / b for a, b in zip(self.times[1], self.times[2], strict=True)]
        return (
            statistics.median(self.times[1]) / statistics.median(self.times[2]),
            min(self.times[1]) / min(self.times[2]),
            min(per),
            max(per),
        )


def timed_branch(
    base: Path, dest: Path, cfg: BranchConfig, workers: int
) -> tuple[float, BranchSummary]:
    fresh_copy(base, dest)
    gc.collect()
    t0 = time.perf_counter()
    summary = branch(dest, cfg, workers=workers)
    return time.perf_counter() - t0, summary


def part_workers(base: Path, args: argparse.Namespace) -> WorkersResult:
    cfg = BranchConfig(k=args.workers_k, limit=args.workers_limit, seed=args.seed)
    runs = args.work / "runs"
    times: dict[int, list[float]] = {1: [], 2: []}
    reference: pl.DataFrame | None = None
    identical, exact = True, True
    summary: BranchSummary | None = None
    for r in range(args.repeats):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            dest = runs / f"workers{workers}"
            seconds, summary = timed_branch(base, dest, cfg, workers)
            times[workers].append(seconds)
            table = branches_table(dest)
            exact = (
                exact and not summary.not_exact and replays_exact(table, summary.planning_actions)
            )
            if reference is None:
                reference = table
            else:
                identical = identical and table.equals(reference)
            log(
                f"workers repeat {r + 1}/{args.repeats}: workers={workers} {seconds:.1f} s "
                f"({summary.simulated_steps:,} steps, {summary.branches_written:,} branches)"
            )
    assert summary is not None
    return WorkersResult(cfg, times, summary, identical, exact)


def workers_md(w: WorkersResult, args: argparse.Namespace) -> str:
    med, best, lo, hi = w.speedup()
    s = w.summary
    return "\n".join(
        [
            f"`branch()` on fresh copies, BranchConfig(k={w.cfg.k}, interventions="
            f"hold,noise,sibling, limit={w.cfg.limit}): {s.planning_actions} planning actions, "
            f"{s.branches_written:,} branches, {s.simulated_steps:,} simulated steps per run; "
            f"{args.repeats} repeats, order alternating. Branches tables identical across all "
            f"runs: {yes(w.identical)}; replay arms exact: {yes(w.replay_exact)}.\n",
            "| workers | median s | min s | steps/s (median) |",
            "|---|---|---|---|",
            *(
                f"| {n} | {statistics.median(w.times[n]):.1f} | {min(w.times[n]):.1f} "
                f"| {s.simulated_steps / statistics.median(w.times[n]):,.0f} |"
                for n in (1, 2)
            ),
            "",
            f"Speedup t1 / t2: **{med:.2f}x** (medians), {best:.2f}x (minima), per repeat "
            f"{lo:.2f}x to {hi:.2f}x."
            + (
                f" Note: t1 is under {MIN_WORKERS_S:.0f} s, so process start-up weighs on t2; "
                "raise --workers-limit."
                if statistics.median(w.times[1]) < MIN_WORKERS_S
                else ""
            )
            + "\n",
        ]
    )


# -- part 3: adaptive vs fixed K -------------------------------------------------------------
def importance(path: Path) -> pl.DataFrame:
    """I = (PN + PS) / 2 of the `hold` intervention per planning action (a NaN PN or PS: the
    other; both NaN: 0), with the seeds it used."""
    with Dataset(path) as ds:
        pairs = ds.sql(
            "SELECT episode_uid, frame_index, seed, "
            "bool_or(success) FILTER (WHERE arm = 'factual') AS y, "
            "bool_or(success) FILTER (WHERE arm = 'alternative') AS y_alt "
            "FROM branches WHERE intervention = 'hold' GROUP BY ALL "
            "ORDER BY episode_uid, frame_index, seed"
        )
    rows = []
    for (uid, frame), part in pairs.group_by("episode_uid", "frame_index", maintain_order=True):
        if part["y"].null_count() or part["y_alt"].null_count():
            raise RuntimeError(f"{path}: {uid} frame {frame}: a seed misses an arm")
        est = paired_pn_ps(part["y"].to_numpy(), part["y_alt"].to_numpy())
        pn, ps = est["pn"], est["ps"]
        defined = [x for x in (pn, ps) if not math.isnan(x)]
        value = sum(defined) / len(defined) if defined else 0.0
        rows.append(
            {"episode_uid": uid, "frame_index": frame, "seeds": len(part), "pn": pn, "ps": ps}
            | {"importance": value}
        )
    return pl.DataFrame(rows)


def top_set(df: pl.DataFrame, m: int) -> tuple[set[tuple[str, int]], float]:
    """The m highest-importance planning actions (ties by episode_uid, frame_index), and the
    importance at the cut."""
    ranked = df.sort(
        ["importance", "episode_uid", "frame_index"], descending=[True, False, False]
    ).head(m)
    keys = set(zip(ranked["episode_uid"], ranked["frame_index"], strict=True))
    return keys, float(ranked["importance"][-1])


def spearman_ci(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float, float]:
    rho = float(spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else math.nan
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(BOOTSTRAP_SAMPLES):
        idx = rng.integers(0, len(a), len(a))
        if np.ptp(a[idx]) == 0 or np.ptp(b[idx]) == 0:
            continue  # constant resample: no rank correlation
        boot.append(spearmanr(a[idx], b[idx]).statistic)
    if not boot:
        return rho, math.nan, math.nan
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return rho, float(lo), float(hi)


@dataclass
class AdaptiveResult:
    fixed_cfg: BranchConfig
    adaptive_cfg: BranchConfig
    seconds: dict[str, float]
    budget: dict[str, int]
    arm_steps: dict[str, int]
    n: int
    m: int
    agreement: float
    agreement_ties: float
    rho: tuple[float, float, float]
    seeds: list[int]
    mean_abs_diff: float
    subset: bool
    replay_exact: bool

    @property
    def saved(self) -> float:
        return 1 - self.budget["adaptive"] / self.budget["fixed"]

    @property
    def saved_arms(self) -> float:
        return 1 - self.arm_steps["adaptive"] / self.arm_steps["fixed"]


def part_adaptive(base: Path, args: argparse.Namespace) -> AdaptiveResult:
    common = {"interventions": ("hold",), "limit": args.adaptive_limit, "seed": args.seed}
    cfgs = {
        "fixed": BranchConfig(k=args.fixed_k, **common),
        "adaptive": BranchConfig(
            k=args.adaptive_k,
            max_k=args.fixed_k,
            adaptive=True,
            tol=args.tol,
            adaptive_step=args.adaptive_step,
            **common,
        ),
    }
    seconds, budget, arm_steps, tables, imp = {}, {}, {}, {}, {}
    exact = True
    for name, cfg in cfgs.items():
        dest = args.work / "runs" / name
        seconds[name], summary = timed_branch(base, dest, cfg, args.adaptive_workers)
        info = json.loads((dest / "meta" / "info.json").read_text())
        budget[name] = int(info["papo"]["branch_budget"]["branch_steps"])
        tables[name] = branches_table(dest)
        exact = (
            exact
            and not summary.not_exact
            and replays_exact(tables[name], summary.planning_actions)
        )
        arm_steps[name] = int(tables[name].filter(pl.col("arm") != "replay")["length"].sum())
        imp[name] = importance(dest)
        log(
            f"adaptive: {name} {seconds[name]:.1f} s with {args.adaptive_workers} workers, "
            f"{budget[name]:,} branch steps, {summary.planning_actions} planning actions"
        )
    cols = ["branch_uid", "success", "return", "length"]
    fixed_rows = set(tables["fixed"].select(cols).iter_rows())
    subset = all(row in fixed_rows for row in tables["adaptive"].select(cols).iter_rows())
    both = imp["fixed"].join(
        imp["adaptive"], on=["episode_uid", "frame_index"], how="full", suffix="_a", coalesce=True
    )
    if both["importance"].null_count() or both["importance_a"].null_count():
        raise RuntimeError("fixed and adaptive runs branched different planning actions")
    n = len(both)
    m = max(1, math.ceil(TOP_SHARE * n))
    top_f, _ = top_set(imp["fixed"], m)
    top_a, cut_a = top_set(imp["adaptive"], m)
    adaptive_i = dict(
        zip(
            zip(imp["adaptive"]["episode_uid"], imp["adaptive"]["frame_index"], strict=True),
            imp["adaptive"]["importance"],
            strict=True,
        )
    )
    a = both["importance"].to_numpy()
    b = both["importance_a"].to_numpy()
    return AdaptiveResult(
        fixed_cfg=cfgs["fixed"],
        adaptive_cfg=cfgs["adaptive"],
        seconds=seconds,
        budget=budget,
        arm_steps=arm_steps,
        n=n,
        m=m,
        agreement=len(top_f & top_a) / m,
        agreement_ties=sum(adaptive_i[k] >= cut_a for k in top_f) / m,
        rho=spearman_ci(a, b, args.seed),
        seeds=imp["adaptive"]["seeds"].to_list(),
        mean_abs_diff=float(np.mean(np.abs(a - b))),
        subset=subset,
        replay_exact=exact,
    )


def adaptive_md(a: AdaptiveResult, args: argparse.Namespace) -> str:
    f, ad = a.fixed_cfg, a.adaptive_cfg
    seeds = np.array(a.seeds)
    rho, lo, hi = a.rho
    return "\n".join(
        [
            f"First {f.limit} planning actions, intervention hold; fixed BranchConfig(k={f.k}) vs "
            f"adaptive BranchConfig(k={ad.k}, max_k={ad.max_k}, adaptive=True, tol={ad.tol}, "
            f"adaptive_step={ad.adaptive_step}); {args.adaptive_workers} workers. {a.n} planning "
            f"actions with hold arms. Adaptive rows are a subset of the fixed rows (same "
            f"branch_uid, success, return, length): {yes(a.subset)}; replay arms exact: "
            f"{yes(a.replay_exact)}.\n",
            "| run | branch steps (budget) | arm steps (no replay) | wall s (information) |",
            "|---|---|---|---|",
            *(
                f"| {k} | {a.budget[k]:,} | {a.arm_steps[k]:,} | {a.seconds[k]:.1f} |"
                for k in ("fixed", "adaptive")
            ),
            "",
            f"Branch steps saved: **{100 * a.saved:.1f}%** (arm steps only: "
            f"{100 * a.saved_arms:.1f}%). Seeds per planning action under adaptive: min "
            f"{seeds.min()}, median {np.median(seeds):.0f}, mean {seeds.mean():.1f}, max "
            f"{seeds.max()}; {np.mean(seeds == ad.k) * 100:.0f}% stopped at k={ad.k}, "
            f"{np.mean(seeds == ad.max_k) * 100:.0f}% ran to max_k={ad.max_k}.\n",
            f"Importance I = (PN + PS) / 2 (hold; a NaN one: the other; both NaN: 0). Top "
            f"quartile = the {a.m} of {a.n} planning actions with the highest I, ties broken by "
            f"(episode_uid, frame_index): agreement |top_fixed ∩ top_adaptive| / {a.m} = "
            f"**{100 * a.agreement:.1f}%**; tie-aware (a fixed-top action agrees when its "
            f"adaptive I reaches the adaptive cut value): {100 * a.agreement_ties:.1f}%. "
            f"Spearman rho of I over all {a.n}: {rho:.3f} (95% bootstrap over planning actions "
            f"{lo:.3f} to {hi:.3f}); mean |I_fixed - I_adaptive| = {a.mean_abs_diff:.3f}.\n",
        ]
    )


# -- report -----------------------------------------------------------------------------------
def yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def met(ok: bool) -> str:
    return "**yes**" if ok else "no"


def goals_md(o: OverheadResult | None, w: WorkersResult | None, a: AdaptiveResult | None) -> str:
    lines = ["| goal | result | met? |", "|---|---|---|"]
    if o is not None:
        med, best, _, _ = o.overhead("steps+policy")
        bare, _, _, _ = o.overhead("steps")
        lines.append(
            f"| restore + replay overhead ≤ 10% vs the same env.step + policy calls "
            f"| {100 * med:+.1f}% (medians; minima {100 * best:+.1f}%; vs env.step alone "
            f"{100 * bare:+.1f}%) | {met(med <= OVERHEAD_GOAL)} |"
        )
    if w is not None:
        med, best, _, _ = w.speedup()
        lines.append(
            f"| 2 workers vs 1 ≥ {SPEEDUP_GOAL}x | {med:.2f}x (medians; minima {best:.2f}x) "
            f"| {met(med >= SPEEDUP_GOAL)} |"
        )
    if a is not None:
        lines.append(
            f"| adaptive K saves ≥ 40% of branch steps | {100 * a.saved:.1f}% "
            f"| {met(a.saved >= SAVED_GOAL)} |"
        )
        lines.append(
            f"| top-quartile agreement (fixed vs adaptive) ≥ 95% | {100 * a.agreement:.1f}% "
            f"(tie-aware {100 * a.agreement_ties:.1f}%; Spearman {a.rho[0]:.3f}) "
            f"| {met(a.agreement >= AGREEMENT_GOAL)} |"
        )
    return "\n".join(lines) + "\n"


def commit_id() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# -- main -------------------------------------------------------------------------------------
QUICK = {
    "tasks": ["pick-place-v3"],
    "groups": 2,
    "group_size": 4,
    "max_steps": 150,
    "repeats": 1,
    "overhead_limit": 3,
    "overhead_k": 2,
    "workers_limit": 4,
    "workers_k": 2,
    "adaptive_limit": 6,
    "fixed_k": 8,
    "adaptive_k": 4,
    "adaptive_step": 4,
    "adaptive_workers": 1,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/papo-bench-branch"),
        help="where the collected dataset (reused) and the branched copies are kept",
    )
    p.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    p.add_argument("--tasks", nargs="+", default=["pick-place-v3", "push-v3"])
    p.add_argument("--groups", type=int, default=4, help="initial states per task")
    p.add_argument("--group-size", type=int, default=8, help="rollouts per group")
    p.add_argument("--max-steps", type=int, default=None, help="horizon (default 500)")
    p.add_argument("--seed", type=int, default=0, help="branch seeds and bootstrap")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (overhead, workers)")
    p.add_argument("--overhead-limit", type=int, default=6, help="planning actions timed")
    p.add_argument("--overhead-k", type=int, default=8, help="seeds per planning action")
    p.add_argument("--workers-limit", type=int, default=16, help="planning actions branched")
    p.add_argument("--workers-k", type=int, default=8, help="seeds per planning action")
    p.add_argument("--adaptive-limit", type=int, default=40, help="planning actions branched")
    p.add_argument("--fixed-k", type=int, default=64, help="fixed K, and adaptive max_k")
    p.add_argument("--adaptive-k", type=int, default=16, help="adaptive first round")
    p.add_argument("--adaptive-step", type=int, default=8, help="seeds between checks")
    p.add_argument("--tol", type=float, default=0.1, help="adaptive interval half-width")
    p.add_argument("--adaptive-workers", type=int, default=2, help="workers of part 3")
    p.add_argument("--quick", action="store_true", help="every part at tiny size (smoke)")
    p.add_argument("--out-md", type=Path, help="also write the markdown report here")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
        args.work = args.work / "quick"
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = [x for x in parts if x not in PARTS]
    if unknown or not parts:
        p.error(f"--parts: choose from {','.join(PARTS)}")
    args.parts = [x for x in PARTS if x in parts]
    for name in (
        "groups",
        "group_size",
        "repeats",
        "overhead_limit",
        "overhead_k",
        "workers_limit",
        "workers_k",
        "adaptive_limit",
        "fixed_k",
        "adaptive_k",
        "adaptive_step",
        "adaptive_workers",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.adaptive_k > args.fixed_k:
        p.error("--adaptive-k must be at most --fixed-k")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = load()
    args.work.mkdir(parents=True, exist_ok=True)
    base = base_dataset(args)
    facts = describe_dataset(base)
    o = w = a = None
    sections = []
    if "overhead" in args.parts:
        o = part_overhead(base, args)
        sections.append("### 1. Restore + replay overhead of `run_job`\n\n" + overhead_md(o, args))
    if "workers" in args.parts:
        w = part_workers(base, args)
        sections.append("### 2. Workers: 2 vs 1\n\n" + workers_md(w, args))
    if "adaptive" in args.parts:
        a = part_adaptive(base, args)
        sections.append("### 3. Adaptive vs fixed K\n\n" + adaptive_md(a, args))
    header = (
        f"Commit {commit_id()}; {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"mujoco {mujoco.__version__}; load average (1/5/15 min) {load_before} before, "
        f"{load()} after; ran in {time.perf_counter() - started:.0f} s"
        f"{' (--quick: tiny sizes, numbers not meaningful)' if args.quick else ''}.\n\n"
        f"Dataset: {', '.join(args.tasks)}, {args.groups} groups x {args.group_size}, horizon "
        f"{args.max_steps or MetaWorldEnv.max_steps}: {facts['episodes']} episodes, "
        f"{facts['steps']:,} steps, success rate {facts['success']:.2f}, "
        f"{facts['planning_actions']} planning actions (joint, SegmentConfig()).\n"
    )
    text = header + "\n" + goals_md(o, w, a) + "\n" + "\n".join(sections)
    print(text)
    if args.out_md:
        args.out_md.write_text(text)
    checks = []
    if o is not None:
        checks += [o.replay_exact, o.same_trajectories]
    if w is not None:
        checks += [w.identical, w.replay_exact]
    if a is not None:
        checks += [a.subset, a.replay_exact]
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
