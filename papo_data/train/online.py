"""The online PAPO loop: collect -> segment -> branch -> estimate -> weights -> update, repeated.

Every iteration is a dataset of its own under `RUN/iterations/NNNN/` (so each can be inspected,
validated, or published), collected by the policy saved as `RUN/policies/NNNN.pt`. Metrics go to
`RUN/metrics.parquet`, one row per iteration; `RUN/checkpoints/last.pt` (policy, optimiser,
iteration) is written every `checkpoint_every` iterations, and `--resume` continues from it:
iterations after the checkpoint are redone from scratch, and every random number derives from
(seed, iteration), so a resumed run gives the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import tomllib
import torch

from papo_data.branches.run import BranchConfig, branch
from papo_data.causal.amortized import MIN_TRAINING
from papo_data.causal.estimate import EstimateConfig, estimate
from papo_data.data import commit
from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.errors import BadInput
from papo_data.planning.segment import SegmentConfig, segment
from papo_data.sim.collect import CollectConfig, collect, derive_seed
from papo_data.train.batch import REWARDS, load_batch, run_weights
from papo_data.train.grpo import GRPOConfig, update
from papo_data.train.policy import TokenPolicy, load_checkpoint, save_checkpoint
from papo_data.weights.export import WeightsConfig, export_weights

MODES = ("grpo", "papo", "papo-amortized")
PHASES = ("collect", "segment", "branch", "estimate", "weights", "update")


@dataclass(frozen=True)
class TrainConfig:
    """A training run; the TOML file holds these keys at the top and one table per section."""

    init: str
    """Starting policy checkpoint (from `papo train --bc`); relative to the TOML file."""
    mode: str = "papo"
    """grpo (w = 1) | papo (weights from branches) | papo-amortized (branch an audit fraction,
    predict the rest with the amortised model)."""
    iterations: int = 10
    seed: int = 0
    tasks: tuple[str, ...] = ()
    """Tasks to train on; default every task the starting policy knows."""
    groups_per_task: int = 2
    """Initial states per task and iteration; each gets `grpo.group_size` rollouts."""
    max_steps: int | None = None
    """Episode horizon; default the simulator's."""
    checkpoint_every: int = 1
    workers: int = 1
    """Simulation workers for collection and branches (1 = in this process)."""
    reward: str = "success"
    """success (0/1, the VLA-RL standard) | return."""
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    branch: BranchConfig = field(
        default_factory=lambda: BranchConfig(
            k=8, interventions=("noise",), limit=16, mixed_groups_only=True
        )
    )
    estimate: EstimateConfig = field(default_factory=lambda: EstimateConfig(dowhy=False))
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    amortize_audit_fraction: float = 0.1
    """papo-amortized: hashed share of all planning actions that is branched (the model's
    training set; `branch.limit` does not apply); the model predicts the rest. With fewer than
    the model's minimum branched, the iteration falls back to the branched ones alone."""

    def check(self) -> None:
        if self.mode not in MODES:
            raise BadInput(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.reward not in REWARDS:
            raise BadInput(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        for name in ("iterations", "groups_per_task", "checkpoint_every", "workers"):
            if getattr(self, name) < 1:
                raise BadInput(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.amortize_audit_fraction < 1:
            raise BadInput("amortize_audit_fraction must be in (0, 1)")
        if self.max_steps is not None and self.max_steps < 1:
            raise BadInput(f"max_steps must be at least 1, got {self.max_steps}")
        if self.seed < 0:
            raise BadInput(f"seed must be >= 0, got {self.seed}")
        self.grpo.check()
        self.segment.check()
        self.branch.check()
        self.estimate.check()
        self.weights.check()


def config_from_table(cls: Any, table: dict[str, Any], where: str, base: Any = None) -> Any:
    """A config dataclass from a TOML table: unknown keys and wrong types are bad input.

    A nested table overrides only the keys it names: the rest keep the enclosing config's
    default (e.g. TrainConfig's `[branch]` keeps `mixed_groups_only = true`), not the nested
    class's own defaults."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise BadInput(f"{where}: unknown key {key!r} (known: {', '.join(fields)})")
        nested = hints[key]
        if dataclasses.is_dataclass(nested):
            if not isinstance(value, dict):
                raise BadInput(f"{where}: [{key}] must be a table")
            inner = getattr(base, key) if base is not None else _default(fields[key])
            values[key] = config_from_table(nested, value, f"{where} [{key}]", inner)
            continue
        if isinstance(value, list):
            value = tuple(value)
        if not _accepts(nested, value):
            raise BadInput(f"{where}: key {key!r}: expected {nested}, got {value!r}")
        values[key] = float(value) if nested is float else value
    try:
        return replace(base, **values) if base is not None else cls(**values)
    except TypeError as e:
        raise BadInput(f"{where}: {e}") from None


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _accepts(hint: Any, value: Any) -> bool:
    """Does a TOML value fit a type hint: int, float, str, bool, tuple[str, ...], X | None?"""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in args)
    if typing.get_origin(hint) is tuple:
        return isinstance(value, tuple) and all(isinstance(v, args[0]) for v in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML ({e})") from None


def load_config(path: Path) -> TrainConfig:
    """Read and check a TOML run config; `init` is resolved against the file's folder."""
    raw = read_toml(path)
    if "init" not in raw:
        raise BadInput(f"{path}: missing key 'init' (the starting checkpoint)")
    cfg: TrainConfig = config_from_table(TrainConfig, raw, str(path))
    cfg = replace(cfg, init=str((path.parent / cfg.init).resolve()))
    cfg.check()
    return cfg


@contextmanager
def _timed(times: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    times[f"time_{phase}"] = time.perf_counter() - start


def _config_record(cfg: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg)))


def _start(
    run: Path, cfg: TrainConfig, resume: bool
) -> tuple[TokenPolicy, torch.optim.Optimizer, int, list[dict[str, Any]]]:
    """(policy, optimiser, first iteration to run, metrics rows kept) for a new or resumed run."""
    record = _config_record(cfg)
    config_file = run / "config.json"
    last = run / "checkpoints" / "last.pt"
    if config_file.exists():
        if not resume:
            raise BadInput(f"{run}: holds a training run; pass --resume or another --run")
        try:
            started_with = json.loads(config_file.read_text())
        except ValueError:
            raise BadInput(f"{config_file}: not valid JSON") from None
        if started_with != record:
            raise BadInput(f"{config_file}: the run was started with another config")
    elif resume:
        raise BadInput(f"{run}: nothing to resume (no config.json)")
    elif run.is_dir() and any(run.iterdir()):
        raise BadInput(f"{run}: not empty and not a training run; give another --run")
    source = last if last.exists() else Path(cfg.init)
    policy, extra = load_checkpoint(source)
    for task in cfg.tasks:  # checked before the run folder exists: bad input leaves nothing
        policy.task_index(task)
    run.mkdir(parents=True, exist_ok=True)
    commit.write_atomic_bytes(json.dumps(record, indent=2).encode(), config_file)

    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.grpo.learning_rate)
    start = 0
    if source == last:
        optimizer.load_state_dict(extra["optimizer"])
        start = int(extra["iteration"])
    rows: list[dict[str, Any]] = []
    if (run / "metrics.parquet").exists():
        try:
            done = pq.read_table(run / "metrics.parquet").to_pylist()
        except (pa.ArrowException, OSError):
            raise BadInput(f"{run / 'metrics.parquet'}: not a readable Parquet file") from None
        rows = [r for r in done if r["iteration"] < start]
    return policy, optimizer, start, rows


def train(
    run: Path,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: Callable[[int, int], Callable[[dict[str, Any]], Any]] | None = None,
) -> pa.Table:
    """Run (or resume) the loop; returns the metrics table. `progress(start, total)` returns a
    callback called with each iteration's metrics."""
    run = Path(run)
    cfg.check()
    policy, optimizer, start, rows = _start(run, cfg, resume)
    reference = load_checkpoint(Path(cfg.init))[0] if cfg.grpo.beta > 0 else None
    tasks = cfg.tasks or policy.config.tasks
    advance = progress(start, cfg.iterations) if progress else None

    for it in range(start, cfg.iterations):
        times = {f"time_{phase}": 0.0 for phase in PHASES}
        began = time.perf_counter()
        data = run / "iterations" / f"{it:04d}"
        shutil.rmtree(data, ignore_errors=True)  # half-done by a killed run: redo it
        policy_file = run / "policies" / f"{it:04d}.pt"
        save_checkpoint(policy_file, policy, iteration=it)

        # 1. Grouped rollouts of the current policy (logging its per-token log-probs).
        with _timed(times, "collect"):
            collect(
                data,
                CollectConfig(
                    tasks=tuple(tasks),
                    groups=cfg.groups_per_task,
                    group_size=cfg.grpo.group_size,
                    seed=derive_seed(cfg.seed, it),
                    policy=str(policy_file),
                    temperature=cfg.grpo.temperature,
                    max_steps=cfg.max_steps,
                ),
                workers=cfg.workers,
            )

        # 2-5. PAPO: planning actions, their branches, PN/PS, weights. GRPO skips all of it.
        branch_steps, planning_actions, amortized = 0, 0, False
        if cfg.mode != "grpo":
            amortized = cfg.mode == "papo-amortized"
            audit = cfg.amortize_audit_fraction if amortized else 1.0
            with _timed(times, "segment"):
                planning_actions = segment(data, cfg.segment).planning_actions
            branched_actions = 0
            # No planning actions (e.g. identical rollouts): nothing to branch, w = 1.
            with _timed(times, "branch"):
                if planning_actions:
                    branched = branch(
                        data,
                        replace(
                            cfg.branch,
                            detector=cfg.segment.detector,
                            seed=derive_seed(cfg.seed, it, 2),
                            audit_fraction=audit,
                            limit=None if amortized else cfg.branch.limit,
                        ),
                        workers=cfg.workers,
                    )
                    branch_steps = branched.simulated_steps
                    branched_actions = branched.planning_actions
            # The amortised model needs a minimum training set; below it, use the branched only.
            amortized = amortized and branched_actions >= MIN_TRAINING
            if branched_actions:  # none audited: w = 1 this iteration
                with _timed(times, "estimate"):
                    estimate(data, replace(cfg.estimate, amortize=amortized, audit_fraction=audit))
                with _timed(times, "weights"):
                    export_weights(data, cfg.weights)

        # 6. The GRPO/PAPO update on this iteration's batch.
        with _timed(times, "update"), Dataset(data) as ds:
            weights = run_weights(ds, cfg.weights.run_id) if cfg.mode != "grpo" else None
            weights = weights if weights is not None and weights.num_rows else None
            batch = load_batch(
                ds, policy, weights, reward=cfg.reward, temperature=cfg.grpo.temperature
            )
            outcomes = ds.arrow(sql_text(__file__, "iteration_outcomes.sql")).to_pylist()[0]
            stats = update(
                policy, optimizer, batch, cfg.grpo, seed=derive_seed(cfg.seed, it, 1),
                reference=reference,
            )  # fmt: skip

        row = {
            "iteration": it,
            **outcomes,
            "rollout_steps": int(outcomes["rollout_steps"]),
            "branch_steps": branch_steps,
            "planning_actions": planning_actions,
            "amortized": amortized,
            "mean_weight": float(batch.weights.mean()),
            **stats,
            **times,
            "time_total": time.perf_counter() - began,
        }
        rows.append(row)
        commit.write_atomic_table(pa.Table.from_pylist(rows), run / "metrics.parquet")
        if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iterations:
            save_checkpoint(
                run / "checkpoints" / "last.pt",
                policy,
                optimizer=optimizer.state_dict(),
                iteration=it + 1,
            )
        if advance:
            advance(row)
    return pq.read_table(run / "metrics.parquet")
