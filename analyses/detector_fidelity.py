"""Detector fidelity (EDGE / StateMask style): do the steps a planning-action detector ranks
highest decide the outcome? Perturb them and count how often the episode's success flips.

Method (DESIGN §3 detectors, §4 simulator):

1. Data: a real dataset collected with `papo_data.sim.collect.collect` (noisy scripted expert,
   default noise, episodes end at first success) on `--tasks` x `--groups` x `--group-size`
   with root seed `--seed`, cached under `--work` (a rerun reuses it; collection resumes).
   The default tasks are those where the noisy expert both succeeds and fails within groups.
2. Steps: for each detector d in (joint, variation, outcome, random), the per-step score of
   `step_scores(ds, SegmentConfig(detector=d, seed=--seed))`. Per episode the top
   ceil(--fraction x length) steps by score (descending, ties by frame ascending), among the
   frames that have a score (frames >= 1; the outcome detector has none in groups holding one
   outcome, so it is only defined in mixed groups).
3. Perturbation: the episode is re-simulated from its frame-0 snapshot (`snapshots`,
   frame_index 0, `env.restore`) with its own policy (`policy_from_id(policy_id, env)`) and its
   own policy seed (`np.random.default_rng(policy_seed)`); the unperturbed re-run must reproduce
   the log exactly (same actions, success and length; asserted for every episode). At the
   chosen steps the policy's action is replaced. `--perturbation uniform` (the default, EDGE /
   StateMask): a uniform random action in [-1, 1]^A from a separate stream,
   `np.random.default_rng([--seed, episode_index])`, drawn for every step of the horizon up
   front (common random numbers: two detectors choosing the same step apply the same action).
   `--perturbation hold`: the action taken one step before, so a contiguous run of chosen steps
   holds the action before it (the branch engine's `hold`: the decision not taken).
   `policy.act` is still called at every step so the policy's random stream stays aligned with
   the log. Same horizon and stop-at-first-success rule as the dataset
   (info.json `papo.horizon`, `papo.episode_end`).
4. Statistics: flip = perturbed success != logged success. The headline is the success-flip
   rate (EDGE / StateMask's fidelity test): the share of logged successes in mixed groups (every
   detector is defined there) that fail when perturbed. Also reported: failure->success (among
   logged failures; a failure near the margin is rescued by many changes, so this share
   measures chance more than importance), both directions together, all episodes where the
   detector is defined, and per task. Rates have Wilson 95% intervals
   (`papo_data.causal.proportion_interval`). The ratio of each detector's rate to random's and
   to joint's (so joint/random, variation/joint, outcome/joint), s->f and both ways, with a
   paired percentile bootstrap over groups (10,000 resamples, seeded by --seed): whole groups
   are resampled, since siblings share an initial state and their flips are correlated.
5. Why (diagnostics): the flip rate a mere re-draw of the outcome would give (leave-one-out
   success rate of the episode's group); what each detector picks (gripper switches, position,
   outcome contrast, overlap with joint); with `--blocks`, a contiguous block of the same
   budget centred in each tenth of every mixed-group successful episode (where are the fragile
   steps, and do v and o rank them), and the middle blocks again with noise seed --seed + 1
   (is a flip a property of the steps or of the random actions drawn).
6. `--variants`: the same measurement for modified joint detectors, each a SegmentConfig change
   or text edits of a COPY of papo_data/planning/sql/step_scores.sql (the package file is never
   touched), to see which change of the detector raises its fidelity; `proposals` runs the two
   that RESULTS.md checks against the package default (no switch term; beta 1).
7. `--random-runs`: a control for the run structure. Joint picks a few runs of consecutive
   steps, random scattered single steps; holding the action before a long run perturbs more
   than holding it for one step. `random-runs` places joint's runs (same number and lengths) at
   random non-overlapping places of each episode, so joint / random-runs measures the choice of
   place alone.
8. `--unit windows`: a detector picks its planning actions instead of single steps, as the
   method uses them: `segment.detect` with no threshold and no top-M (every local maximum of
   the score after non-max suppression over +-w), best rank first, each with its window
   [t, t + w) (the window `papo branch` intervenes on), until the same 10% budget.

Episodes run in a spawn process pool (`--workers`); every run is a pure function of the
episode, the chosen steps and the seed, so the output does not depend on the pool. Runs are
cached in the work folder by (episode, steps, noise seed); delete it after changing the
simulator or the policy. Prints a markdown table (also --out-md) and draws --figure. Run it
with:

    .venv/bin/python analyses/detector_fidelity.py --variants all --blocks --out-md /tmp/df.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from papo_data.causal import cluster_bootstrap_ratio, proportion_interval
from papo_data.data.dataset import Dataset
from papo_data.planning import segment
from papo_data.planning.segment import DETECTORS, SegmentConfig, step_scores
from papo_data.sim import EnvAdapter
from papo_data.sim.collect import CollectConfig, collect, make_env
from papo_data.sim.policies import NoisyExpertConfig, policy_from_id

TASKS = (
    "pick-place-v3",
    "push-v3",
    "assembly-v3",
    "hammer-v3",
    "shelf-place-v3",
    "peg-insert-side-v3",
)
"""Tasks where the default noisy expert gave both outcomes within groups in a probe of 2 groups
x 8 rollouts (seed 0) over 10 candidates; basketball, pick-out-of-hole, sweep-into and
coffee-push succeeded 16/16 and were left out."""
RATIO_GOAL = 3.0
SCOPES = {
    "s→f": "logged successes of mixed groups",
    "both ways": "all mixed-group episodes, either direction",
}
"""Over which episodes a flip rate is counted. The headline is "s→f", the success-flip rate of
EDGE / StateMask's fidelity test: perturb the steps a detector ranks highest in episodes that
succeeded and count how many fail. "Both ways" also counts failures that the perturbation
rescues; a failure near the margin is rescued by many changes (random steps held rescue about a
third), so that share measures chance more than importance."""
PERTURBATIONS = {
    "uniform": "uniform random actions",
    "hold": "the previous action held",
}
"""What replaces the action at a chosen step (--perturbation), as the report words it."""
BOOTSTRAP_SAMPLES = 10_000
BASELINE = "baseline"
"""Cache key of the unperturbed re-run."""


# -- variants of the detector ----------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A modified joint detector: SegmentConfig changes and/or edits of a copy of the SQL."""

    name: str
    about: str
    config: dict[str, Any] = field(default_factory=dict)
    edits: tuple[tuple[str, str], ...] = ()
    """(old, new) text replacements on step_scores.sql; each `old` must occur exactly once."""
    params: dict[str, Any] = field(default_factory=dict)


JOINT = "WHEN 'joint' THEN greatest(v.v, 0) * (1 + $beta * coalesce(c.o, 0))"
"""The joint score in step_scores.sql (an edit target)."""
FINAL_SELECT = "SELECT v.episode_index, e.episode_uid, v.frame_index, e.length,"
HELD = (  # carry "the gripper is commanded closed" from `means` to the final select
    ("false) AS switch\n", "false) AS switch,\n           coalesce(x{grip} > 0, false) AS held\n"),
    (
        "SELECT episode_index, frame_index, switch,",
        "SELECT episode_index, frame_index, switch, held,",
    ),
    ("SELECT episode_index, frame_index,\n", "SELECT episode_index, frame_index, held,\n"),
    (FINAL_SELECT, FINAL_SELECT + " v.held,"),
)
HASH = (
    "(md5_number(concat($seed, '/', e.episode_uid, '/', v.frame_index)) % 1000000007)::DOUBLE"
    " / 1000000007"
)
CONTRAST_JOIN = "LEFT JOIN contrast c ON c.g = e.g AND c.frame_index = v.frame_index"
RANK_WINDOWS = (
    CONTRAST_JOIN,
    CONTRAST_JOIN + "\n"
    "WINDOW pv AS (PARTITION BY v.episode_index ORDER BY v.v),\n"
    "       po AS (PARTITION BY v.episode_index ORDER BY coalesce(c.o, 0))",
)
EPISODE_SUCCESS = "(SELECT e.success FROM episodes e WHERE e.episode_index = v.episode_index)"
AROUND = (
    "PARTITION BY v.episode_index ORDER BY v.frame_index "
    "RANGE BETWEEN $w PRECEDING AND $w FOLLOWING"
)


def joint_as(expr: str) -> tuple[str, str]:
    """Edit: the joint detector's score becomes `expr`."""
    return (JOINT, f"WHEN 'joint' THEN {expr}")


def block(k: int) -> Variant:
    """Diagnostic: a contiguous block of the budget centred in the k-th tenth of the episode."""
    return Variant(
        f"block{k}",
        f"the steps nearest frame ({k} + 0.5) x length / 10",
        edits=(joint_as(f"-abs(v.frame_index - ({k} + 0.5) * e.length / 10)"),),
    )


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "switch-weight-0",
        "no gripper-switch term: v is the squashed action change alone",
        {"switch_weight": 0.0},
    ),
    Variant("beta-1", "outcome contrast weight beta = 1 (0.2 in the package)", {"beta": 1.0}),
    Variant(
        "nearness-after",
        "the switch nearness counts only frames at and after a switch (d = frames since the last "
        "one), so the held block delays the switch instead of straddling it",
        edits=(
            (
                "min(CASE WHEN switch THEN frame_index END) OVER from_t - frame_index), 0)",
                "1000000), 0)",
            ),
        ),
    ),
    Variant(
        "nearness-2w",
        "the switch nearness reaches 2w frames, (2w + 1 - d)+, instead of w",
        edits=(("greatest($w + 1 - least(", "greatest(2 * $w + 1 - least("),),
    ),
    Variant("beta-5", "outcome contrast weight beta = 5 (0.2 in the package)", {"beta": 5.0}),
    Variant(
        "beta-5-success-only",
        "beta = 5, and the outcome contrast only in successful episodes (failed ones: v+)",
        {"beta": 5.0},
        edits=(
            joint_as(
                f"greatest(v.v, 0) * (1 + $beta * CASE WHEN {EPISODE_SUCCESS} "
                "THEN coalesce(c.o, 0) ELSE 0 END)"
            ),
        ),
    ),
    Variant(
        "smooth",
        "the joint score averaged over the +-w frames",
        edits=(
            joint_as(f"avg(greatest(v.v, 0) * (1 + $beta * coalesce(c.o, 0))) OVER ({AROUND})"),
        ),
    ),
    Variant(
        "rank-max",
        "s = max(percentile of v, percentile of o) within the episode (OR: the top of each) "
        "instead of v+ (1 + beta o); percentile of v alone in one-outcome groups",
        edits=(
            joint_as(
                "CASE WHEN m.g IS NULL THEN percent_rank() OVER pv "
                "ELSE greatest(percent_rank() OVER pv, percent_rank() OVER po) END"
            ),
            RANK_WINDOWS,
        ),
    ),
    Variant(
        "rank-sum",
        "s = percentile of v + percentile of o within the episode (AND)",
        edits=(
            joint_as(
                "CASE WHEN m.g IS NULL THEN percent_rank() OVER pv "
                "ELSE percent_rank() OVER pv + percent_rank() OVER po END"
            ),
            RANK_WINDOWS,
        ),
    ),
    Variant(
        "held-random",
        "diagnostic: random steps among those where the gripper is commanded closed",
        edits=(*HELD, joint_as(f"v.held::INTEGER + {HASH}")),
    ),
    Variant(
        "early",
        "diagnostic: the first steps (frames 1, 2, ...)",
        edits=(joint_as("-v.frame_index"),),
    ),
    Variant("late", "diagnostic: the last steps", edits=(joint_as("v.frame_index"),)),
    Variant(
        "contrast-ahead",
        "o_t is the outcome contrast of the window after t (centred at t + w), not around t: "
        "a decision should come before the siblings' actions diverge",
        edits=(
            ("SELECT g, frame_index, sqrt(", "SELECT g, frame_index - $w AS frame_index, sqrt("),
        ),
    ),
)
PROPOSALS = ("switch-weight-0", "beta-1")
"""The controls RESULTS.md checks the package default against (`--variants proposals`)."""


# -- data -------------------------------------------------------------------------------------


def data_path(work: Path, cfg: CollectConfig) -> Path:
    key = json.dumps([cfg.tasks, cfg.groups, cfg.group_size, cfg.seed])
    if cfg.noise != NoisyExpertConfig():  # the default keeps its old cache key
        key += json.dumps([cfg.noise.sigma, cfg.noise.delay_prob, cfg.noise.max_delay])
    return work / f"data-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


@dataclass
class Episodes:
    """What the analysis needs of each episode, in episode_index order."""

    table: pl.DataFrame
    """episode_index, episode_uid, task, group_id, policy_id, policy_seed, success, length,
    mixed (its group holds both outcomes)."""
    blobs: dict[int, bytes]
    """Frame-0 snapshot per episode_index."""
    actions: dict[int, np.ndarray]
    """Logged actions (length, A) per episode_index."""


def load_episodes(ds: Dataset, env: EnvAdapter, tasks: Iterable[str]) -> Episodes:
    table = ds.sql(
        """
        SELECT episode_index, episode_uid, split_part(env_id, '/', 2) AS task, group_id,
               policy_id, policy_seed, success, length,
               bool_or(success) OVER g AND NOT bool_and(success) OVER g AS mixed
        FROM episodes
        WINDOW g AS (PARTITION BY group_id)
        ORDER BY episode_index
        """
    )
    table = table.filter(pl.col("task").is_in(list(tasks)))
    snaps = ds.sql(
        """
        SELECT e.episode_index, s.format, s.state
        FROM snapshots s JOIN episodes e USING (episode_uid)
        WHERE s.frame_index = 0
        """
    )
    formats = set(snaps["format"].to_list())
    if formats - {env.snapshot_format}:
        raise SystemExit(f"snapshot formats {formats}, this simulator reads {env.snapshot_format}")
    blobs = dict(zip(snaps["episode_index"].to_list(), snaps["state"].to_list(), strict=True))
    missing = set(table["episode_index"].to_list()) - set(blobs)
    if missing:
        raise SystemExit(f"{len(missing)} episodes have no frame-0 snapshot")
    steps = ds.arrow("SELECT episode_index, action FROM steps ORDER BY episode_index, frame_index")
    index = steps.column("episode_index").to_numpy()
    flat = steps.column("action").combine_chunks()
    width = flat.type.list_size
    all_actions = flat.values.to_numpy().reshape(-1, width)
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    ends = np.r_[starts[1:], len(index)]
    actions = {int(index[s]): all_actions[s:e] for s, e in zip(starts, ends, strict=True)}
    return Episodes(table, blobs, actions)


# -- which steps each detector picks --------------------------------------------------------


def top_steps(scores: pa.Table, fraction: float) -> dict[int, tuple[int, ...]]:
    """Per episode_index, the frames of the top ceil(fraction * length) scores (descending,
    ties by frame), among frames with a (non-NaN) score; episodes without any are absent."""
    df = pl.from_arrow(scores)
    assert isinstance(df, pl.DataFrame)
    df = (
        df.filter(pl.col("score").is_not_null() & pl.col("score").is_not_nan())
        .with_columns(k=(pl.col("length") * fraction - 1e-9).ceil().cast(pl.Int64))
        .sort(["episode_index", "score", "frame_index"], descending=[False, True, False])
        .with_columns(rank=pl.int_range(pl.len()).over("episode_index"))
        .filter(pl.col("rank") < pl.col("k"))
        .group_by("episode_index")
        .agg(pl.col("frame_index").sort())
    )
    return {
        int(i): tuple(int(f) for f in frames)
        for i, frames in zip(df["episode_index"], df["frame_index"], strict=True)
    }


def planning_windows(
    ds: Dataset, eps: Episodes, detector: str | Variant, seed: int, fraction: float
) -> dict[int, tuple[int, ...]]:
    """Per episode_index, the steps of the detector's planning actions as `papo branch`
    intervenes on them: the window [t, t + window) of each planning action (`segment.detect`:
    every local maximum of the score, non-max suppression over +-w, no threshold, no top-M),
    best rank first, until ceil(fraction x length) steps; the last window is cut to fit."""
    every = {"top_m": 1_000_000, "threshold": -1e12}
    if isinstance(detector, Variant):  # the package's planning_actions.sql over its scores
        sql, params = variant_sql(ds, detector, seed)
        query = segment.planning_actions_sql(sql)
        table = ds.arrow(query, sql_params(query, params | every))
    else:
        table = segment.detect(ds, SegmentConfig(detector=detector, seed=seed, **every))
    actions = pl.from_arrow(table)
    assert isinstance(actions, pl.DataFrame)
    actions = actions.join(
        eps.table.select("episode_uid", "episode_index", "length"), on="episode_uid"
    ).sort("episode_index", "rank")
    out: dict[int, tuple[int, ...]] = {}
    for (i,), part in actions.partition_by("episode_index", as_dict=True).items():
        budget = math.ceil(part["length"][0] * fraction - 1e-9)
        chosen: list[int] = []
        for t, w in zip(part["frame_index"], part["window"], strict=True):
            chosen += range(t, t + min(w, budget - len(chosen)))
            if len(chosen) == budget:
                break
        out[int(i)] = tuple(sorted(chosen))
    return out


def random_runs(
    picks: dict[int, tuple[int, ...]], scores: pa.Table, seed: int
) -> dict[int, tuple[int, ...]]:
    """A control for where `picks` are, not how they are grouped: per episode the same runs of
    consecutive frames (same number and lengths, in random order), placed uniformly at random,
    non-overlapping and non-adjacent, among the frames that have a score. Holding the action
    before a run perturbs more the longer the run, so this separates the choice of place from
    the run structure."""
    df = pl.from_arrow(scores.select(["episode_index", "frame_index", "score"]))
    assert isinstance(df, pl.DataFrame)
    scored = df.filter(pl.col("score").is_not_null() & pl.col("score").is_not_nan())
    frames = {
        int(key[0]): np.sort(part["frame_index"].to_numpy())
        for key, part in scored.partition_by("episode_index", as_dict=True).items()
    }
    out: dict[int, tuple[int, ...]] = {}
    for i, chosen in picks.items():
        breaks = np.flatnonzero(np.diff(chosen) > 1) + 1
        lengths = [len(r) for r in np.split(np.asarray(chosen), breaks)]
        rng = np.random.default_rng([seed, i, 7])
        rng.shuffle(lengths)
        avail = frames[i]
        spare = len(avail) - sum(lengths) - (len(lengths) - 1)  # cells beyond the runs and gaps
        marks = np.sort(rng.choice(spare + len(lengths), size=len(lengths), replace=False))
        start, placed = 0, []
        for k, (mark, n) in enumerate(zip(marks, lengths, strict=True)):
            first = int(mark) - k + start  # free cells before this run + runs and gaps so far
            placed += avail[first : first + n].tolist()
            start += n + 1
        out[i] = tuple(sorted(int(f) for f in placed))
    return out


def sql_params(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the query uses (DuckDB refuses extra ones)."""
    code = re.sub(r"--[^\n]*", "", sql)  # comments name parameters too
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", code)}


def variant_sql(ds: Dataset, v: Variant, seed: int) -> tuple[str, dict[str, Any]]:
    """step_scores.sql of a variant (an edited copy of the package's SQL text), and its
    parameters."""
    cfg = SegmentConfig(**({"detector": "joint", "seed": seed} | v.config))
    params = segment._params(ds, cfg) | v.params
    sql = segment._step_scores_sql(ds)  # the package's SQL with its per-dim slots filled
    for old, new in v.edits:
        if sql.count(old) != 1:
            raise SystemExit(f"variant {v.name}: edit target found {sql.count(old)} times: {old}")
        sql = sql.replace(old, new.replace("{grip}", str(params["grip"])))
    return sql, params


def variant_scores(ds: Dataset, v: Variant, seed: int) -> pa.Table:
    """step_scores of a variant."""
    sql, params = variant_sql(ds, v, seed)
    return ds.arrow(sql, sql_params(sql, params))


# -- simulation (worker side) ----------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One episode and the step sets to perturb (no dataset access in the worker)."""

    episode_index: int
    episode_uid: str
    policy_id: str
    policy_seed: int
    blob: bytes
    horizon: int
    stop_on_success: bool
    seed: int
    perturbation: str
    perturb: tuple[tuple[int, ...], ...]
    baseline: bool
    """Also re-run unperturbed (the exactness check); returns its actions."""


@dataclass
class JobResult:
    episode_index: int
    runs: dict[tuple[int, ...], tuple[bool, int]]
    baseline: tuple[bool, int, np.ndarray] | None
    steps: int


_worker_env = cache(make_env)


def simulate(
    env: EnvAdapter, job: Job, frames: Iterable[int], keep_actions: bool = False
) -> tuple[bool, int, np.ndarray | None]:
    """Re-run the episode from frame 0 with its policy and seed, perturbed at `frames`:
    `uniform` takes a random action there, `hold` repeats the action taken one step before."""
    chosen = frozenset(frames)
    obs = env.restore(job.blob)
    policy = policy_from_id(job.policy_id, env)
    policy.reset()
    rng = np.random.default_rng(job.policy_seed)
    n_dims = len(env.action_names)
    noise = (
        np.random.default_rng([job.seed, job.episode_index])
        .uniform(-1.0, 1.0, size=(job.horizon, n_dims))
        .astype(np.float32)
    )
    taken = []
    success, length = False, 0
    previous: np.ndarray | None = None
    for t in range(job.horizon):
        action, _ = policy.act(obs, rng)  # always: keeps the policy's stream aligned
        if t in chosen:
            if job.perturbation == "uniform":
                action = noise[t]
            elif previous is not None:  # hold: a block repeats the action before it
                action = previous
        previous = action
        if keep_actions:
            taken.append(action)
        obs, _, ok = env.step(action)
        length += 1
        success = success or ok
        if ok and job.stop_on_success:
            break
    return success, length, np.array(taken, dtype=np.float32) if keep_actions else None


def run_job(job: Job) -> JobResult:
    env = _worker_env("metaworld")
    steps = 0
    baseline = None
    if job.baseline:
        ok, length, actions = simulate(env, job, (), keep_actions=True)
        assert actions is not None
        baseline = (ok, length, actions)
        steps += length
    runs = {}
    for frames in job.perturb:
        ok, length, _ = simulate(env, job, frames)
        runs[frames] = (ok, length)
        steps += length
    return JobResult(job.episode_index, runs, baseline, steps)


# -- run cache ---------------------------------------------------------------------------------


def run_key(uid: str, frames: tuple[int, ...] | None) -> str:
    return f"{uid}|{BASELINE if frames is None else ','.join(map(str, frames))}"


def load_cache(path: Path) -> dict[str, list[Any]]:
    return json.loads(path.read_text()) if path.exists() else {}


def save_cache(path: Path, runs: dict[str, list[Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(runs, sort_keys=True))
    tmp.replace(path)


def run_all(
    eps: Episodes,
    picks: dict[str, dict[int, tuple[int, ...]]],
    *,
    cache: Path,
    horizon: int,
    stop_on_success: bool,
    seed: int,
    workers: int,
    perturbation: str = "uniform",
) -> tuple[dict[str, list[Any]], int]:
    """(perturbed success and length by run_key, simulated steps). Every episode's unperturbed
    re-run is checked against the log; a mismatch stops the analysis."""
    tag = f"noise{seed}" if perturbation == "uniform" else perturbation
    cache_path = cache.with_name(f"{cache.name}-runs-{tag}.json")
    runs = load_cache(cache_path)
    jobs = []
    for row in eps.table.iter_rows(named=True):
        i, uid = row["episode_index"], row["episode_uid"]
        sets = sorted({p[i] for p in picks.values() if i in p})
        todo = tuple(s for s in sets if run_key(uid, s) not in runs)
        need_baseline = run_key(uid, None) not in runs
        if todo or need_baseline:
            jobs.append(
                Job(
                    episode_index=i,
                    episode_uid=uid,
                    policy_id=row["policy_id"],
                    policy_seed=row["policy_seed"],
                    blob=eps.blobs[i],
                    horizon=horizon,
                    stop_on_success=stop_on_success,
                    seed=seed,
                    perturbation=perturbation,
                    perturb=todo,
                    baseline=need_baseline,
                )
            )
    logged = {r["episode_index"]: r for r in eps.table.iter_rows(named=True)}
    simulated = 0
    if jobs:
        print(f"simulating {len(jobs)} episodes ...", file=sys.stderr)
        started = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for n, res in enumerate(pool.map(run_job, jobs), 1):
                row = logged[res.episode_index]
                uid = row["episode_uid"]
                if res.baseline is not None:
                    ok, length, actions = res.baseline
                    same = (
                        ok == row["success"]
                        and length == row["length"]
                        and np.array_equal(actions, eps.actions[res.episode_index])
                    )
                    if not same:
                        raise SystemExit(
                            f"{uid}: the unperturbed re-run does not reproduce the log "
                            f"(success {ok} vs {row['success']}, length {length} vs "
                            f"{row['length']})"
                        )
                    runs[run_key(uid, None)] = [ok, length]
                for frames, (ok, length) in res.runs.items():
                    runs[run_key(uid, frames)] = [ok, length]
                simulated += res.steps
                if n % 25 == 0 or n == len(jobs):
                    print(
                        f"  {n}/{len(jobs)} episodes, {simulated} steps, "
                        f"{time.perf_counter() - started:.0f} s",
                        file=sys.stderr,
                    )
                    save_cache(cache_path, runs)
    # The check holds for every analysed episode, cached or not.
    for row in eps.table.iter_rows(named=True):
        ok, length = runs[run_key(row["episode_uid"], None)]
        assert ok == row["success"] and length == row["length"], row["episode_uid"]
    return runs, simulated


# -- statistics -------------------------------------------------------------------------------


@dataclass
class Rate:
    flips: int
    n: int

    @property
    def rate(self) -> float:
        return self.flips / self.n if self.n else math.nan

    @property
    def ci(self) -> tuple[float, float]:
        return proportion_interval(self.flips, self.n)

    def cell(self) -> str:
        if not self.n:
            return "—"
        lo, hi = self.ci
        return f"{100 * self.rate:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] ({self.flips}/{self.n})"


def flip_frame(
    eps: Episodes, picks: dict[str, dict[int, tuple[int, ...]]], runs: dict[str, list[Any]]
) -> pl.DataFrame:
    """One row per (episode, detector where defined): the logged and perturbed outcomes."""
    rows = []
    for row in eps.table.iter_rows(named=True):
        i = row["episode_index"]
        for d, p in picks.items():
            if i not in p:
                continue
            ok, _ = runs[run_key(row["episode_uid"], p[i])]
            rows.append(
                {
                    "episode_index": i,
                    "group_id": row["group_id"],
                    "task": row["task"],
                    "mixed": row["mixed"],
                    "detector": d,
                    "logged": row["success"],
                    "perturbed": ok,
                    "flip": ok != row["success"],
                    "n_steps": len(p[i]),
                }
            )
    return pl.DataFrame(rows)


def rate(df: pl.DataFrame) -> Rate:
    return Rate(int(df["flip"].sum()), df.height)


def paired(flips: pl.DataFrame, a: str, b: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flips of detectors a and b on the episodes where both are defined, and their groups."""
    wide = (
        flips.filter(pl.col("detector").is_in([a, b]))
        .pivot(on="detector", index=["episode_index", "group_id"], values="flip")
        .drop_nulls()
        .sort("episode_index")
    )
    flips_of = [wide[d].to_numpy().astype(float) for d in (a, b)]
    return flips_of[0], flips_of[1], wide["group_id"].to_numpy()


def fmt_ratio(point: float, ci: tuple[float, float]) -> str:
    def f(x: float) -> str:
        return "∞" if math.isinf(x) else f"{x:.2f}"

    return f"{f(point)} [{f(ci[0])}, {f(ci[1])}]"


# -- diagnostics: what the detectors pick ----------------------------------------------------


def diagnostics(
    eps: Episodes,
    picks: dict[str, dict[int, tuple[int, ...]]],
    scores: dict[str, pa.Table],
    window: int,
) -> pl.DataFrame:
    """Per detector, over mixed-group episodes: share of picked steps at a gripper switch and
    within +-window of one, share of the episode's switches picked, mean relative position,
    mean outcome contrast of the picks, runs of consecutive picked steps per episode, overlap
    (Jaccard) with the joint detector's picks."""
    mixed = eps.table.filter(pl.col("mixed"))
    outcome = pl.from_arrow(scores["outcome"])
    assert isinstance(outcome, pl.DataFrame)
    o_by = {
        (int(i), int(f)): o
        for i, f, o in zip(
            outcome["episode_index"],
            outcome["frame_index"],
            outcome["outcome_score"],
            strict=True,
        )
    }
    out = []
    for d, p in picks.items():
        at, near, rel, o, jac, runs = [], [], [], [], [], []
        switches_hit, switches = 0, 0
        for row in mixed.iter_rows(named=True):
            i = row["episode_index"]
            if i not in p:
                continue
            grip = eps.actions[i][:, -1]
            sw = set((np.flatnonzero(np.abs(np.diff(grip)) > 0.5) + 1).tolist())
            near_sw = {t + k for t in sw for k in range(-window, window + 1)}
            chosen = set(p[i])
            at += [t in sw for t in chosen]
            near += [t in near_sw for t in chosen]
            rel += [t / row["length"] for t in chosen]
            o += [o_by.get((i, t)) or 0.0 for t in chosen]
            switches += len(sw)
            switches_hit += len(sw & chosen)
            joint = set(picks["joint"].get(i, ()))
            jac.append(len(chosen & joint) / max(len(chosen | joint), 1))
            runs.append(1 + int(np.sum(np.diff(p[i]) > 1)))
        out.append(
            {
                "detector": d,
                "picks at a gripper switch": float(np.mean(at)),
                f"picks within ±{window} of a switch": float(np.mean(near)),
                "switches picked": switches_hit / max(switches, 1),
                "runs of consecutive picks": float(np.mean(runs)),
                "mean frame / length": float(np.mean(rel)),
                "mean outcome contrast of picks": float(np.mean(o)),
                "Jaccard with joint": float(np.mean(jac)),
            }
        )
    return pl.DataFrame(out)


# -- why: how much any perturbation flips, and where the fragile steps are -------------------


def redraw_rates(eps: Episodes) -> dict[str, float]:
    """Flip rates of mixed-group episodes if the perturbed outcome were a fresh draw from the
    rest of the episode's group (leave-one-out success rate): what a perturbation that only
    decorrelates the rollout from its log would give."""
    t = eps.table.filter(pl.col("mixed")).with_columns(
        ok=pl.col("success").cast(pl.Float64).sum().over("group_id"),
        n=pl.len().over("group_id").cast(pl.Float64),
    )
    t = t.with_columns(
        redraw=pl.when(pl.col("success"))
        .then(1 - (pl.col("ok") - 1) / (pl.col("n") - 1))
        .otherwise(pl.col("ok") / (pl.col("n") - 1))
    )
    return {
        "all": float(t["redraw"].mean()),
        "s→f": float(t.filter(pl.col("success"))["redraw"].mean()),
        "f→s": float(t.filter(~pl.col("success"))["redraw"].mean()),
    }


@dataclass
class Blocks:
    """Contiguous blocks of the budget at each tenth of mixed-group successful episodes."""

    flips: pl.DataFrame
    """episode_index, task, block (0-9), flip, switch (holds a gripper switch), v, o (mean
    variation and outcome score of the block's steps)."""
    repeat: pl.DataFrame
    """The middle blocks again with another noise seed: episode_index, block, flip, flip2."""


def block_sensitivity(
    ds: Dataset, eps: Episodes, joint: pa.Table, args: argparse.Namespace, **run: Any
) -> Blocks:
    blocks = {
        k: top_steps(variant_scores(ds, block(k), args.seed), args.fraction) for k in range(10)
    }
    picks = {f"block{k}": p for k, p in blocks.items()}
    sub = replace(eps, table=eps.table.filter(pl.col("mixed") & pl.col("success")))
    runs, _ = run_all(sub, picks, seed=args.seed, **run)
    flips = flip_frame(sub, picks, runs)
    middle = {d: picks[d] for d in ("block3", "block4", "block5")}
    runs2, _ = run_all(sub, middle, seed=args.seed + 1, **run)
    flips2 = flip_frame(sub, middle, runs2).select("episode_index", "detector", flip2="flip")
    scores = pl.from_arrow(joint)
    assert isinstance(scores, pl.DataFrame)
    rows = []
    for r in flips.iter_rows(named=True):
        i, frames = r["episode_index"], picks[r["detector"]][r["episode_index"]]
        s = scores.filter((pl.col("episode_index") == i) & pl.col("frame_index").is_in(frames))
        grip = eps.actions[i][:, -1]
        switches = set((np.flatnonzero(np.abs(np.diff(grip)) > 0.5) + 1).tolist())
        rows.append(
            {
                "episode_index": i,
                "task": r["task"],
                "block": int(r["detector"].removeprefix("block")),
                "flip": r["flip"],
                "switch": bool(switches & set(frames)),
                "v": s["variation_score"].mean(),
                "o": s["outcome_score"].mean(),
            }
        )
    repeat = flips.join(flips2, on=["episode_index", "detector"]).select(
        "episode_index", "detector", "flip", "flip2"
    )
    return Blocks(pl.DataFrame(rows), repeat)


def block_lines(b: Blocks) -> list[str]:
    f = b.flips
    per_ep = f.group_by("episode_index").agg(n=pl.col("flip").sum())
    lines = [
        "Contiguous blocks (the same budget, ceil(fraction x length) consecutive steps centred "
        "in each tenth of the episode), mixed-group successful episodes:",
        "",
        "| block centre (tenth of the episode) | " + " | ".join(str(k) for k in range(10)) + " |",
        "|" + "---|" * 11,
        "| s→f flip rate | "
        + " | ".join(f"{100 * rate(f.filter(pl.col('block') == k)).rate:.0f}%" for k in range(10))
        + " |",
        "",
        f"- {int((per_ep['n'] > 0).sum())}/{per_ep.height} successful episodes flip for at "
        f"least one of the 10 blocks; a block flips {rate(f).cell()}.",
    ]
    for name, col in (("mean variation score v", "v"), ("mean outcome contrast o", "o")):
        ranked = f.with_columns(
            t=(
                pl.col(col).rank("ordinal").over("episode_index")
                * 3
                / pl.len().over("episode_index")
            )
            .ceil()
            .cast(pl.Int64)
        )
        cells = [rate(ranked.filter(pl.col("t") == t)).cell() for t in (1, 2, 3)]
        lines.append(
            f"- blocks by within-episode rank of their {name} (lowest 3, middle 3, top 4 of 10): "
            + "; ".join(cells)
        )
    lines.append(
        f"- blocks holding a gripper switch: {rate(f.filter(pl.col('switch'))).cell()}; "
        f"without: {rate(f.filter(~pl.col('switch'))).cell()}."
    )
    r = b.repeat
    again = Rate(int(r.filter(pl.col("flip"))["flip2"].sum()), r.filter(pl.col("flip")).height)
    other = Rate(int(r.filter(~pl.col("flip"))["flip2"].sum()), r.filter(~pl.col("flip")).height)
    lines.append(
        "- the same middle blocks (tenths 3-5) with other random actions (noise seed + 1): "
        f"flip again {again.cell()} when they flipped, {other.cell()} when they did not."
    )
    return lines


# -- report -----------------------------------------------------------------------------------


@dataclass
class Report:
    names: list[str]
    flips: pl.DataFrame
    ratios: dict[tuple[str, str, str], tuple[float, tuple[float, float]]]
    """(a, b, scope) -> flip rate of a / that of b over the scope's episodes (SCOPES), with its
    paired bootstrap interval."""
    diag: pl.DataFrame
    tasks: list[str]
    redraw: dict[str, float]
    blocks: Blocks | None


def in_scope(flips: pl.DataFrame, scope: str) -> pl.DataFrame:
    mixed = flips.filter(pl.col("mixed"))
    return mixed.filter(pl.col("logged")) if scope == "s→f" else mixed


def build_report(
    flips: pl.DataFrame,
    names: list[str],
    seed: int,
    diag: pl.DataFrame,
    redraw: dict[str, float],
    blocks: Blocks | None,
) -> Report:
    ratios = {}
    for scope in SCOPES:
        episodes = in_scope(flips, scope)
        for a in names:
            for b in ("random", "joint"):
                if a != b:
                    ratios[(a, b, scope)] = cluster_bootstrap_ratio(
                        *paired(episodes, a, b), seed, BOOTSTRAP_SAMPLES
                    )
    tasks = sorted(set(flips["task"].to_list()))
    return Report(names, flips, ratios, diag, tasks, redraw, blocks)


def scope_rate(rep: Report, d: str, scope: str) -> Rate:
    return rate(in_scope(rep.flips, scope).filter(pl.col("detector") == d))


def goal_lines(rep: Report) -> list[str]:
    yes = {True: "**yes**", False: "**no**"}
    lines = ["| goal | scope | result | met? |", "|---|---|---|---|"]
    for scope in SCOPES:
        r = {d: scope_rate(rep, d, scope).rate for d in DETECTORS}
        ratio, ci = rep.ratios[("joint", "random", scope)]
        where = f"{scope} ({SCOPES[scope]})"
        lines += [
            f"| joint ≥ {RATIO_GOAL:.0f}× random | {where} | {fmt_ratio(ratio, ci)} | "
            f"{yes[ratio >= RATIO_GOAL]} (interval lower bound "
            f"{'≥' if ci[0] >= RATIO_GOAL else '<'} {RATIO_GOAL:.0f}) |",
        ]
        for other in ("variation", "outcome"):
            lines.append(
                f"| joint > {other} | {where} | {100 * r['joint']:.1f}% vs "
                f"{100 * r[other]:.1f}%, {other} / joint "
                f"{fmt_ratio(*rep.ratios[(other, 'joint', scope)])} | "
                f"{yes[r['joint'] > r[other]]} |"
            )
    return lines


def markdown(rep: Report) -> str:
    f = rep.flips
    random_rate = {scope: scope_rate(rep, "random", scope).rate for scope in SCOPES}
    rd = rep.redraw
    lines = [
        f"If the perturbed outcome were a fresh draw from the rest of the group, mixed-group "
        f"episodes would flip {100 * rd['all']:.1f}% (s→f {100 * rd['s→f']:.1f}%, f→s "
        f"{100 * rd['f→s']:.1f}%). A flip rate is at most 100%, so with random at "
        f"{100 * random_rate['s→f']:.1f}% s→f ({100 * random_rate['both ways']:.1f}% both ways) "
        f"no detector can exceed {1 / random_rate['s→f']:.2f}× "
        f"({1 / random_rate['both ways']:.2f}×) random here.",
        "",
        "| detector | flip rate, mixed groups | s→f, mixed | f→s, mixed "
        "| flip rate, all episodes | s→f, all | f→s, all |",
        "|" + "---|" * 7,
    ]
    for d in rep.names:
        fd = f.filter(pl.col("detector") == d)
        cells = []
        for scope in (fd.filter(pl.col("mixed")), fd):
            cells += [
                rate(scope).cell(),
                rate(scope.filter(pl.col("logged"))).cell(),
                rate(scope.filter(~pl.col("logged"))).cell(),
            ]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    lines += ["", "Per task, success-flip rate (s→f) of mixed-group successes:", ""]
    lines += ["| task | " + " | ".join(DETECTORS) + " |", "|" + "---|" * (len(DETECTORS) + 1)]
    for task in rep.tasks:
        ft = in_scope(f.filter(pl.col("task") == task), "s→f")
        cells = [rate(ft.filter(pl.col("detector") == d)).cell() for d in DETECTORS]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios of flip rates (paired bootstrap over groups, 95% interval); s→f over "
        "mixed-group successes, both ways over all mixed-group episodes:",
        "",
        "| detector | s→f ÷ random | s→f ÷ joint | both ways ÷ random | both ways ÷ joint |",
        "|---|---|---|---|---|",
    ]
    for d in rep.names:
        cells = [
            fmt_ratio(*rep.ratios[(d, b, scope)]) if (d, b, scope) in rep.ratios else "—"
            for scope in SCOPES
            for b in ("random", "joint")
        ]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    lines += ["", *goal_lines(rep), "", "What each detector picks (mixed-group episodes):", ""]
    cols = rep.diag.columns
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rep.diag.iter_rows():
        lines.append("| " + " | ".join(v if isinstance(v, str) else f"{v:.3f}" for v in row) + " |")
    if rep.blocks is not None:
        lines += ["", *block_lines(rep.blocks)]
    return "\n".join(lines) + "\n"


def plot(rep: Report, path: Path, perturbation: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = rep.flips
    mixed = f.filter(pl.col("mixed"))
    colors = dict(zip(DETECTORS, ("tab:red", "tab:blue", "tab:green", "tab:grey"), strict=True))
    fig, axes = plt.subplots(2, 2, figsize=(15, 10), width_ratios=[1, 2.2])

    def bars(ax: Any, groups: list[tuple[str, pl.DataFrame]]) -> None:
        width = 0.8 / len(DETECTORS)
        for j, d in enumerate(DETECTORS):
            xs, ys, errs = [], [], [[], []]
            for g, (_, df) in enumerate(groups):
                r = rate(df.filter(pl.col("detector") == d))
                if not r.n:
                    continue
                lo, hi = r.ci
                xs.append(g + (j - (len(DETECTORS) - 1) / 2) * width)
                ys.append(100 * r.rate)
                errs[0].append(100 * (r.rate - lo))
                errs[1].append(100 * (hi - r.rate))
            ax.bar(xs, ys, width, yerr=errs, capsize=2, label=d, color=colors[d], alpha=0.85)
        ax.set_xticks(range(len(groups)), [g for g, _ in groups], fontsize=8)
        ax.set_ylabel("success flip rate (%)")

    successes = in_scope(f, "s→f")
    bars(axes[0, 0], [("mixed-group successes", successes), ("all successes", f.filter("logged"))])
    axes[0, 0].axhline(100 * rep.redraw["s→f"], color="black", linestyle=":", linewidth=1)
    axes[0, 0].set_title("s→f, pooled (Wilson 95%); dotted: outcome re-drawn", fontsize=10)
    axes[0, 0].legend(fontsize=8)
    tasks = [(t.removesuffix("-v3"), successes.filter(pl.col("task") == t)) for t in rep.tasks]
    bars(axes[0, 1], tasks)
    axes[0, 1].set_title("s→f per task, mixed-group successes", fontsize=10)

    ax = axes[1, 1]
    for j, d in enumerate(rep.names):
        for k, (logged, marker) in enumerate(((None, "o"), (True, "v"), (False, "^"))):
            df = mixed.filter(pl.col("detector") == d)
            if logged is not None:
                df = df.filter(pl.col("logged") == logged)
            r = rate(df)
            lo, hi = r.ci
            ax.errorbar(
                j + (k - 1) * 0.22,
                100 * r.rate,
                yerr=[[100 * (r.rate - lo)], [100 * (hi - r.rate)]],
                fmt=marker,
                color=colors.get(d, "tab:purple"),
                capsize=2,
                label=("all", "s→f", "f→s")[k] if j == 0 else None,
            )
    ax.set_xticks(range(len(rep.names)), rep.names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("flip rate (%), mixed groups")
    ax.set_title("detectors and variants of the joint SQL (copy): all / s→f / f→s", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    if rep.blocks is not None:
        b = rep.blocks.flips
        rates = [rate(b.filter(pl.col("block") == k)) for k in range(10)]
        ax.errorbar(
            range(10),
            [100 * r.rate for r in rates],
            yerr=[
                [100 * (r.rate - r.ci[0]) for r in rates],
                [100 * (r.ci[1] - r.rate) for r in rates],
            ],
            fmt="o-",
            color="black",
            capsize=2,
        )
        for d, style in (("joint", "--"), ("random", ":")):
            r = rate(mixed.filter((pl.col("detector") == d) & pl.col("logged")))
            ax.axhline(100 * r.rate, color=colors[d], linestyle=style, label=f"{d} (top 10%), s→f")
        ax.legend(fontsize=8)
        ax.set_xlabel("tenth of the episode where the contiguous block sits")
        ax.set_ylabel("s→f flip rate (%)")
        ax.set_title("contiguous blocks, mixed-group successes", fontsize=10)
    else:
        ax.axis("off")
    fig.suptitle(
        f"Detector fidelity: {PERTURBATIONS[perturbation]} at each detector's top 10% steps, "
        "success flip rate"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), help="Meta-World tasks")
    p.add_argument("--groups", type=int, default=4, help="initial states per task")
    p.add_argument("--group-size", type=int, default=8, help="rollouts per group")
    p.add_argument("--seed", type=int, default=0, help="collection, random detector, noise, CIs")
    p.add_argument("--workers", type=int, default=2, help="simulation processes")
    p.add_argument(
        "--sigma",
        type=float,
        default=NoisyExpertConfig.sigma,
        help="the noisy expert's Gaussian action noise (xyz dims) in the collected data",
    )
    p.add_argument(
        "--delay-prob",
        type=float,
        default=NoisyExpertConfig.delay_prob,
        help="the noisy expert's probability of delaying a gripper switch",
    )
    p.add_argument("--fraction", type=float, default=0.1, help="share of steps perturbed")
    p.add_argument(
        "--perturbation",
        choices=PERTURBATIONS,
        default="uniform",
        help="at a chosen step: a uniform random action (EDGE/StateMask), or hold the action "
        "taken one step before (the branch engine's `hold`: the decision not taken)",
    )
    p.add_argument(
        "--work", type=Path, default=Path("/tmp/papo-detector-fidelity"), help="cache folder"
    )
    p.add_argument(
        "--variants",
        nargs="*",
        default=[],
        help="variants of the joint detector to measure too: 'all', 'proposals' or names ("
        + ", ".join(v.name for v in VARIANTS)
        + ")",
    )
    p.add_argument(
        "--unit",
        choices=("steps", "windows"),
        default="steps",
        help="what a detector ranks: single steps by their per-step score (EDGE/StateMask), "
        "or its planning actions (local maxima after non-max suppression), each with its "
        "window of w steps as `papo branch` intervenes on it",
    )
    p.add_argument(
        "--random-runs",
        action="store_true",
        help="also perturb a control: joint's runs of consecutive steps at random places",
    )
    p.add_argument(
        "--blocks",
        action="store_true",
        help="also perturb contiguous blocks at each tenth of mixed-group successes",
    )
    p.add_argument("--out-md", type=Path, help="also write the markdown here")
    p.add_argument(
        "--figure",
        type=Path,
        help="also draw flip rates per detector to this PNG (none by default, so that a quick "
        "run does not overwrite a figure RESULTS.md shows)",
    )
    args = p.parse_args(argv)
    if not 0 < args.fraction <= 1:
        p.error("--fraction must be in (0, 1]")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.blocks and args.perturbation != "uniform":
        p.error("--blocks redraws the random actions, so it needs --perturbation uniform")
    known = {v.name for v in VARIANTS}
    if args.variants == ["all"]:
        args.variants = [v.name for v in VARIANTS]
    elif args.variants == ["proposals"]:
        args.variants = list(PROPOSALS)
    bad = [v for v in args.variants if v not in known]
    if bad:
        p.error(f"unknown variants {bad}; known: {sorted(known)}")
    return args


def measure(args: argparse.Namespace) -> tuple[Report, str]:
    """Collect (or reuse) the data, run every perturbation, and return the report and its
    markdown."""
    started = time.perf_counter()
    cfg = CollectConfig(
        tasks=tuple(args.tasks),
        groups=args.groups,
        group_size=args.group_size,
        seed=args.seed,
        noise=NoisyExpertConfig(sigma=args.sigma, delay_prob=args.delay_prob),
    )
    path = data_path(args.work, cfg)
    counts = collect(path, cfg, workers=args.workers)
    print(f"dataset {path}: {counts}", file=sys.stderr)
    env = make_env("metaworld")
    with Dataset(path) as ds:
        papo = ds.info["papo"]
        run = {
            "cache": args.work / path.name,
            "horizon": int(papo["horizon"]),
            "stop_on_success": papo["episode_end"] == "first_success",
            "workers": args.workers,
            "perturbation": args.perturbation,
        }
        eps = load_episodes(ds, env, args.tasks)
        scores = {d: step_scores(ds, SegmentConfig(detector=d, seed=args.seed)) for d in DETECTORS}
        variants = [v for v in VARIANTS if v.name in args.variants]
        for v in variants:
            scores[v.name] = variant_scores(ds, v, args.seed)
        if args.unit == "windows":
            picks = {d: planning_windows(ds, eps, d, args.seed, args.fraction) for d in DETECTORS}
            for v in variants:
                picks[v.name] = planning_windows(ds, eps, v, args.seed, args.fraction)
        else:
            picks = {d: top_steps(s, args.fraction) for d, s in scores.items()}
        if args.random_runs:
            picks["random-runs"] = random_runs(picks["joint"], scores["joint"], args.seed)
        runs, simulated = run_all(eps, picks, seed=args.seed, **run)
        blocks = block_sensitivity(ds, eps, scores["joint"], args, **run) if args.blocks else None
    flips = flip_frame(eps, picks, runs)
    diag = diagnostics(eps, picks, scores, SegmentConfig().window)
    rep = build_report(flips, list(picks), args.seed, diag, redraw_rates(eps), blocks)
    t = eps.table
    header = (
        f"{t.height} episodes ({int(t['success'].sum())} successes) on {len(args.tasks)} tasks "
        f"({', '.join(args.tasks)}), {args.groups} groups x {args.group_size}, seed "
        f"{args.seed}, expert noise sigma {args.sigma:g}, delay_prob {args.delay_prob:g}; "
        f"{t.filter(pl.col('mixed'))['group_id'].n_unique()}/"
        f"{t['group_id'].n_unique()} groups mixed ({int(t['mixed'].sum())} episodes, "
        f"{int(t.filter(pl.col('mixed'))['success'].sum())} successes); top "
        f"{100 * args.fraction:g}% steps perturbed ({PERTURBATIONS[args.perturbation]}; "
        f"{'planning-action windows' if args.unit == 'windows' else 'single steps'}); "
        f"unperturbed re-runs reproduce the log: "
        f"{t.height}/{t.height}; ran in {time.perf_counter() - started:.0f} s "
        f"({simulated} detector-run steps simulated, not counting cached runs)\n"
    )
    if variants:
        header += "\nVariants (each a change of the joint detector on a copy of the SQL):\n\n"
        header += "".join(f"- `{v.name}`: {v.about}\n" for v in variants)
    return rep, header + "\n" + markdown(rep)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rep, text = measure(args)
    print(text)
    if args.out_md:
        args.out_md.write_text(text)
    if args.figure:
        plot(rep, args.figure, args.perturbation)
    return 0


if __name__ == "__main__":
    sys.exit(main())
