"""Branch every planning action of a dataset: build jobs with SQL, simulate them on a process
pool or Ray, write `papo/branches` in batches, and record the branch budget.

Rows are a pure function of (dataset, config): a rerun skips branches whose `branch_uid` is
written and reuses their outcomes (adaptive stopping sees the same numbers), so a killed run
finishes, on rerun, with exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from papo_data.branches.engine import (
    INTERVENTIONS,
    REPLAY,
    Job,
    JobResult,
    branch_seed,
    branch_uid,
    run_job,
)
from papo_data.causal.amortized import audited
from papo_data.data.dataset import Dataset
from papo_data.data.files import POLICY_DIR
from papo_data.data.sqlfiles import sql_text
from papo_data.data.writer import DatasetWriter
from papo_data.errors import BadInput
from papo_data.sim.collect import _worker_env, init_ray, make_env
from papo_data.sim.policies import policy_from_id


@dataclass(frozen=True)
class BranchConfig:
    """Knobs of `papo branch`; each has a flag of the same name."""

    detector: str = "joint"
    """Branch the planning actions of this detector."""
    k: int = 16
    """Seeds per planning action (with --adaptive: the first round)."""
    interventions: tuple[str, ...] = ("hold", "noise", "sibling")
    """Alternative arms: hold (repeat a_{t-1}), noise (a + sigma eps), sibling (an opposite-
    outcome sibling's actions at the same frames)."""
    noise_sigma: float = 0.5
    """Std of the `noise` intervention, on every action dim."""
    adaptive: bool = False
    """Stop a planning action once its PN and PS interval half-widths are below `tol`."""
    tol: float = 0.1
    max_k: int = 64
    """Adaptive mode: never more seeds than this."""
    adaptive_step: int = 8
    """Adaptive mode: seeds added between two convergence checks."""
    seed: int = 0
    """Root seed of the branch seeds."""
    limit: int | None = None
    """Branch at most this many planning actions (in episode, frame order; the first of the
    audit set when `audit_fraction` < 1)."""
    audit_fraction: float = 1.0
    """Branch only this hashed share of planning actions (the audit set of the amortised
    importance model, `papo estimate --amortize`)."""
    mixed_groups_only: bool = False
    """Branch only planning actions of groups holding both outcomes: GRPO gives the others a
    zero advantage, so their weights change nothing (the training loop's choice)."""

    def check(self) -> None:
        if isinstance(self.interventions, str):  # ("hold") is a string, not a tuple
            raise BadInput(f"interventions: give a tuple, e.g. ({self.interventions!r},)")
        unknown = [i for i in self.interventions if i not in INTERVENTIONS]
        if unknown or not self.interventions:
            raise BadInput(
                f"--interventions: {unknown[0] if unknown else 'none given'!r}; "
                f"choose from {','.join(INTERVENTIONS)}"
            )
        if self.k < 1:
            raise BadInput(f"--k must be at least 1, got {self.k}")
        if not self.noise_sigma >= 0:
            raise BadInput(f"--noise-sigma must be >= 0, got {self.noise_sigma}")
        if self.adaptive and not 0 < self.tol < 0.5:
            raise BadInput(f"--tol must be in (0, 0.5), got {self.tol}")
        if self.adaptive and self.max_k < self.k:
            raise BadInput(f"--max-k ({self.max_k}) must be at least --k ({self.k})")
        if self.adaptive_step < 1:
            raise BadInput("--adaptive-step must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise BadInput(f"--limit must be at least 1, got {self.limit}")
        if self.seed < 0:
            raise BadInput(f"--seed must be >= 0, got {self.seed}")
        if not 0 < self.audit_fraction <= 1:
            raise BadInput(f"--audit-fraction must be in (0, 1], got {self.audit_fraction}")

    @property
    def n_seeds(self) -> int:
        return self.max_k if self.adaptive else self.k


@dataclass
class BranchSummary:
    planning_actions: int
    branches_written: int
    simulated_steps: int
    not_exact: list[str]
    skipped: dict[str, int]
    branch_steps: int
    logged_steps: int

    @property
    def budget(self) -> float:
        return self.branch_steps / self.logged_steps if self.logged_steps else 0.0


def _horizon(ds: Dataset, papo: dict[str, Any], max_steps: int) -> int:
    if "horizon" in papo:
        return int(papo["horizon"])
    # Older datasets: failed (or full-horizon) episodes ran to the horizon.
    row = ds.arrow(
        "SELECT max(length) AS h FROM episodes WHERE NOT success OR $full",
        {"full": papo.get("episode_end") == "full_horizon"},
    ).to_pylist()[0]
    return int(row["h"] or max_steps)


def _jobs(
    ds: Dataset, targets: list[dict[str, Any]], cfg: BranchConfig, horizon: int, stop: bool
) -> Iterator[tuple[Job, dict[str, int]]]:
    """Jobs for a chunk of targets; the dict counts interventions skipped and why."""
    uids = sorted(
        {t["episode_uid"] for t in targets} | {t["sibling_uid"] for t in targets} - {None}
    )
    steps = ds.arrow(sql_text(__file__, "episode_steps.sql"), {"uids": uids})
    known = {
        r["branch_uid"]: r["success"]
        for r in ds.arrow(sql_text(__file__, "existing.sql"), {"uids": uids}).to_pylist()
    }
    frame = pl.DataFrame(pl.from_arrow(steps))
    by_episode = {
        str(uid): {c: part[c].to_numpy() for c in ("state", "action", "reward", "success")}
        for (uid,), part in frame.partition_by("episode_uid", as_dict=True).items()
    }
    for t in targets:
        skipped: dict[str, int] = {}
        ep = by_episode[t["episode_uid"]]
        frame, window, c0 = t["frame_index"], t["window"], t["checkpoint_frame"]
        alternatives: dict[str, np.ndarray | None] = {}
        for name in cfg.interventions:
            if name == "hold":
                if frame == 0:
                    skipped["hold at frame 0"] = 1
                    continue
                alternatives[name] = np.repeat(ep["action"][frame - 1 : frame], window, axis=0)
            elif name == "noise":
                alternatives[name] = None
            elif name == "sibling":
                if t["sibling_uid"] is None:
                    why = (
                        "every opposite-outcome sibling ended before the window's end"
                        if t["mixed_group"]
                        else "the group holds one outcome"
                    )
                    skipped[f"sibling: {why}"] = 1
                    continue
                alternatives[name] = by_episode[t["sibling_uid"]]["action"][frame : frame + window]
        seeds = [branch_seed(cfg.seed, t["episode_uid"], frame, k) for k in range(cfg.n_seeds)]
        job = Job(
            episode_uid=t["episode_uid"],
            frame=frame,
            window=window,
            policy_id=t["policy_id"],
            checkpoint=t["checkpoint"],
            checkpoint_frame=c0,
            states=ep["state"][c0:],
            actions=ep["action"][c0:],
            rewards=ep["reward"][c0:],
            successes=ep["success"][c0:],
            alternatives=alternatives,
            horizon=horizon,
            stop_on_success=stop,
            seeds=seeds,
            noise_sigma=cfg.noise_sigma,
            adaptive_tol=cfg.tol if cfg.adaptive else None,
            adaptive_min=cfg.k,
            adaptive_step=cfg.adaptive_step,
            # Only this planning action's written outcomes travel to the worker.
            known={
                uid: known[uid]
                for seed in seeds
                for i in alternatives
                for arm in ("factual", "alternative")
                if (uid := branch_uid(t["episode_uid"], frame, i, arm, seed)) in known
            },
            need_replay=branch_uid(t["episode_uid"], frame, REPLAY, "replay", 0) not in known,
            policy_dir=str(ds.root / POLICY_DIR),
        )
        yield job, skipped


def _work(job: Job, env_name: str) -> JobResult:
    return run_job(job, _worker_env(env_name))


def _results(
    jobs: Iterator[Job], env_name: str, workers: int, backend: str, ray_address: str | None
) -> Iterator[JobResult]:
    """Results in job order; at most a few jobs per worker in flight (jobs carry snapshots)."""
    if backend == "local" and workers == 1:
        for job in jobs:
            yield _work(job, env_name)
        return
    inflight: deque[Any] = deque()
    if backend == "ray":
        import ray

        init_ray(workers, ray_address)
        remote = ray.remote(_work)
        for job in jobs:
            inflight.append(remote.remote(job, env_name))
            if len(inflight) >= 4 * workers:
                yield ray.get(inflight.popleft())
        while inflight:
            yield ray.get(inflight.popleft())
        return
    # spawn, not fork: the parent holds DuckDB and polars thread pools.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        try:
            for job in jobs:
                inflight.append(pool.submit(_work, job, env_name))
                if len(inflight) >= 4 * workers:
                    yield inflight.popleft().result()
            while inflight:
                yield inflight.popleft().result()
        finally:
            for future in inflight:
                future.cancel()


def branch(
    path: Path,
    cfg: BranchConfig,
    *,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
    commit_every: int = 16,
    progress: Callable[[int], Callable[[int], Any]] | None = None,
) -> BranchSummary:
    """Branch the planning actions of `cfg.detector` in the dataset at `path`; commits every
    `commit_every` planning actions, so a kill loses at most that much work."""
    path = Path(path)
    cfg.check()
    if workers < 1:
        raise BadInput("--workers must be at least 1")
    if commit_every < 1:
        raise BadInput("--commit-every must be at least 1")
    if backend not in ("local", "ray"):
        raise BadInput(f"--backend must be local or ray, got {backend!r}")
    with DatasetWriter.open(path) as writer:
        papo = writer.info.get("papo", {})
        if papo.get("env") != "metaworld":  # e.g. imported from LeRobot: no simulator states
            raise BadInput(
                f"{path}: meta/info.json: papo.env is {papo.get('env')!r}; branching re-simulates "
                "from saved simulator states, which only datasets collected with 'papo collect' "
                "(env metaworld) have"
            )
        env = make_env(papo["env"])
        stop = papo.get("episode_end", "first_success") == "first_success"
        with Dataset(path) as ds:
            targets = ds.arrow(
                sql_text(__file__, "targets.sql"),
                {
                    "detector": cfg.detector,
                    # --limit counts audited actions: with an audit, it applies below
                    "limit": 2**62 if cfg.limit is None or cfg.audit_fraction < 1 else cfg.limit,
                    "mixed_only": cfg.mixed_groups_only,
                },
            ).to_pylist()
            horizon = _horizon(ds, papo, env.max_steps)
        if not targets and not cfg.mixed_groups_only:  # mixed only: maybe no group is mixed
            raise BadInput(
                f"{path}: no planning actions of detector {cfg.detector!r}; "
                f"run 'papo segment {path} --detector {cfg.detector}' first"
            )
        if cfg.audit_fraction < 1:  # may leave none: then there is nothing to branch
            targets = [
                t
                for t in targets
                if audited(t["episode_uid"], t["frame_index"], cfg.audit_fraction)
            ][: cfg.limit]
        bad = {t["checkpoint_format"] for t in targets} - {env.snapshot_format, None}
        if bad:
            raise BadInput(
                f"{path}: snapshots: format {bad.pop()!r}, the simulator reads "
                f"{env.snapshot_format!r}"
            )
        # Inputs the workers would trip over are refused here, before any work or progress bar.
        for t in targets:
            if t["checkpoint_frame"] is None:
                raise BadInput(
                    f"{path}: snapshots: episode {t['episode_uid']!r} has no checkpoint at or "
                    f"before frame {t['frame_index']}"
                )
        for policy_id in sorted({t["policy_id"] for t in targets}):
            policy_from_id(policy_id, env, path / POLICY_DIR)
        summary = BranchSummary(len(targets), 0, 0, [], {}, 0, 0)
        advance = progress(len(targets)) if progress else None

        def jobs() -> Iterator[Job]:
            for i in range(0, len(targets), 64):
                with Dataset(path) as ds:
                    for job, skipped in _jobs(ds, targets[i : i + 64], cfg, horizon, stop):
                        for reason, n in skipped.items():
                            summary.skipped[reason] = summary.skipped.get(reason, 0) + n
                        yield job

        rows: list[dict[str, object]] = []
        pending = 0
        for n, result in enumerate(_results(jobs(), papo["env"], workers, backend, ray_address)):
            rows += result.rows
            pending += 1
            summary.simulated_steps += result.simulated_steps
            if result.replay_exact is False:
                summary.not_exact.append(f"{result.episode_uid} frame {result.frame}")
            if pending >= commit_every or n == len(targets) - 1:
                if rows:
                    writer.write_sidecar("branches", pa.Table.from_pylist(rows))
                    summary.branches_written += len(rows)
                rows, pending = [], 0
            if advance:
                advance(1)
        writer.compact("branches")
        with Dataset(path) as ds:
            budget = ds.arrow(sql_text(__file__, "budget.sql")).to_pylist()[0]
        summary.branch_steps = int(budget["branch_steps"])
        summary.logged_steps = int(budget["logged_steps"])
        writer.update_papo(
            branch={**asdict(cfg), "interventions": list(cfg.interventions)},
            branch_budget={
                "branch_steps": summary.branch_steps,
                "logged_steps": summary.logged_steps,
                "ratio": round(summary.budget, 4),
            },
        )
    return summary
