"""Grouped rollout collection: for each task, N initial states (GRPO groups) and G rollouts
from each, with simulator checkpoints, written to a dataset in a deterministic order.

Every rollout is a pure function of its `RolloutSpec` (task, seeds): workers, Ray or not, only
change where it runs. Results are written in plan order, one commit per group, and a rerun skips
episodes already in the dataset, so a killed collection resumes without losing or repeating rows.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from papo_data.data.commit import write_atomic_bytes
from papo_data.data.dataset import has_info
from papo_data.data.files import POLICY_DIR
from papo_data.data.writer import DatasetWriter, Episode, Known
from papo_data.errors import BadInput
from papo_data.sim import EnvAdapter
from papo_data.sim.policies import NoisyExpert, NoisyExpertConfig, Policy


def make_env(name: str) -> EnvAdapter:
    """The simulator family called `name` (only Meta-World for now)."""
    if name != "metaworld":
        raise BadInput(f"--env {name!r} is not supported; available: metaworld")
    from papo_data.sim.metaworld import MetaWorldEnv

    return MetaWorldEnv()


@dataclass(frozen=True)
class CollectConfig:
    """What to collect; every field has a CLI flag of the same name."""

    tasks: tuple[str, ...]
    """Task names of the simulator, e.g. ("pick-place-v3",)."""
    groups: int = 4
    """Initial states (GRPO groups) per task."""
    group_size: int = 8
    """Rollouts per group, same initial state, different policy seeds."""
    seed: int = 0
    """Root seed: initial states and policy seeds derive from it."""
    env: str = "metaworld"
    policy: str = "expert"
    """`expert` (the scripted expert with `noise`) or the path of a trained policy checkpoint."""
    temperature: float = 1.0
    """Sampling temperature of a trained policy."""
    noise: NoisyExpertConfig = field(default_factory=NoisyExpertConfig)
    checkpoint_every: int = 25
    """A simulator snapshot at frame 0 and every this many frames."""
    stop_on_success: bool = True
    """End an episode at its first success (standard in VLA RL) instead of the full horizon."""
    max_steps: int | None = None
    """Horizon; default the simulator's (500 in Meta-World)."""

    def check(self, env: EnvAdapter) -> None:
        if isinstance(self.tasks, str):  # ("pick-place-v3") is a string, not a tuple
            raise BadInput(f"tasks: give a tuple of task names, e.g. ({self.tasks!r},)")
        known = env.tasks()
        for task in self.tasks:
            if task not in known:
                raise BadInput(
                    f"--tasks: unknown task {task!r} (known: {', '.join(sorted(known)[:5])}, ...)"
                )
        if not self.tasks:
            raise BadInput("--tasks: give at least one task")
        for name in ("groups", "group_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_steps is not None and not 1 <= self.max_steps <= env.max_steps:
            raise BadInput(f"--max-steps must be in [1, {env.max_steps}]")
        if self.seed < 0:
            raise BadInput("--seed must be >= 0")
        if self.policy != "expert":
            if not Path(self.policy).is_file():
                raise BadInput(f"--policy {self.policy!r}: give 'expert' or a checkpoint file")
            if not self.temperature > 0:
                raise BadInput(f"--temperature must be > 0, got {self.temperature}")
        self.noise.check()

    @property
    def episode_end(self) -> str:
        return "first_success" if self.stop_on_success else "full_horizon"


@dataclass(frozen=True)
class RolloutSpec:
    task: str
    group: int
    member: int
    init_seed: int
    policy_seed: int
    episode_uid: str
    group_id: str


def derive_seed(*key: int) -> int:
    """A seed from a tuple of integers (root seed, task, group, ...), independent per tuple."""
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def plan(cfg: CollectConfig) -> list[RolloutSpec]:
    """Every rollout of the collection, in write order."""
    specs = []
    for task in cfg.tasks:
        task_key = zlib.crc32(task.encode())
        for g in range(cfg.groups):
            init_seed = derive_seed(cfg.seed, task_key, g)
            group_id = f"{task}/s{cfg.seed}/g{g}"
            for m in range(cfg.group_size):
                specs.append(
                    RolloutSpec(
                        task=task,
                        group=g,
                        member=m,
                        init_seed=init_seed,
                        policy_seed=derive_seed(cfg.seed, task_key, g, m + 1),
                        episode_uid=f"{group_id}/m{m}",
                        group_id=group_id,
                    )
                )
    return specs


@dataclass
class Rollout:
    episode: Episode
    snapshots: pa.Table


def behaviour_policy(env: EnvAdapter, task: str, cfg: CollectConfig) -> Policy:
    if cfg.policy == "expert":
        return NoisyExpert(env, cfg.noise)
    from papo_data.train.policy import file_digest, torch_policy_from_fields

    path = Path(cfg.policy)
    fields = {"sha": file_digest(path), "task": task, "temperature": str(cfg.temperature)}
    return torch_policy_from_fields(fields, path.parent, path.name)


def rollout(env: EnvAdapter, spec: RolloutSpec, cfg: CollectConfig) -> Rollout:
    """Run one episode of the behaviour policy; checkpoint before the action of every K-th
    frame."""
    policy = behaviour_policy(env, spec.task, cfg)
    rng = np.random.default_rng(spec.policy_seed)
    horizon = cfg.max_steps or env.max_steps
    obs = env.reset(spec.task, spec.init_seed)
    states, actions, log_probs, rewards, successes = [], [], [], [], []
    frames, blobs = [], []
    for t in range(horizon):
        if t % cfg.checkpoint_every == 0:
            frames.append(t)
            blobs.append(env.snapshot())
        action, log_prob = policy.act(obs, rng)
        states.append(obs)
        actions.append(action)
        log_probs.append(log_prob)
        obs, reward, success = env.step(action)
        rewards.append(reward)
        successes.append(success)
        if success and cfg.stop_on_success:
            break
    episode = Episode(
        episode_uid=spec.episode_uid,
        task=env.tasks()[spec.task],
        observation_state=np.array(states, dtype=np.float32),
        action=np.array(actions, dtype=np.float32),
        reward=np.array(rewards, dtype=np.float32),
        success=np.array(successes, dtype=bool),
        log_prob=np.array(log_probs, dtype=np.float32),
        group_id=spec.group_id,
        group_member=spec.member,
        env_id=f"{cfg.env}/{spec.task}",
        policy_id=policy.policy_id,
        init_seed=spec.init_seed,
        policy_seed=spec.policy_seed,
    )
    snapshots = pa.table(
        {
            "episode_uid": [spec.episode_uid] * len(frames),
            "frame_index": pa.array(frames, pa.int64()),
            "format": [env.snapshot_format] * len(frames),
            "state": pa.array(blobs, pa.binary()),
        }
    )
    return Rollout(episode, snapshots)


def run_group(specs: list[RolloutSpec], cfg: CollectConfig) -> list[Rollout]:
    """Worker entry point: one env per process, reused across the group."""
    env = _worker_env(cfg.env)
    return [rollout(env, spec, cfg) for spec in specs]


# One env per worker process, built on its first group and reused (building costs ~0.1 s a task).
_worker_env = cache(make_env)


def _groups(specs: list[RolloutSpec]) -> list[list[RolloutSpec]]:
    out: dict[str, list[RolloutSpec]] = {}
    for spec in specs:
        out.setdefault(spec.group_id, []).append(spec)
    return list(out.values())


def _run_local(
    batches: list[list[RolloutSpec]], cfg: CollectConfig, workers: int
) -> Iterator[list[Rollout]]:
    if workers <= 1:
        for batch in batches:
            yield run_group(batch, cfg)
        return
    # spawn, not fork: the parent holds DuckDB and polars thread pools.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        yield from pool.map(run_group, batches, [cfg] * len(batches))


def _run_ray(
    batches: list[list[RolloutSpec]], cfg: CollectConfig, workers: int, address: str | None
) -> Iterator[list[Rollout]]:
    import ray

    init_ray(workers, address)
    remote = ray.remote(run_group)
    refs = [remote.remote(batch, cfg) for batch in batches]
    for ref in refs:  # in plan order, whatever order they finish in
        yield ray.get(ref)


def init_ray(workers: int, address: str | None) -> None:
    """Join the Ray cluster at `address`, or start a local instance with `workers` CPUs."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=None if address else workers,
            include_dashboard=False,
            log_to_driver=False,
        )


def collect(
    path: Path,
    cfg: CollectConfig,
    *,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
    progress: Callable[[int], Callable[[int], Any]] | None = None,
) -> dict[str, int]:
    """Collect into `path` (created if absent); returns counts of written and skipped episodes.
    `progress(total)` is called once the work is known and returns a per-group callback."""
    path = Path(path)
    env = make_env(cfg.env)
    cfg.check(env)
    if workers < 1:
        raise BadInput("--workers must be at least 1")
    if backend not in ("local", "ray"):
        raise BadInput(f"--backend must be local or ray, got {backend!r}")
    if cfg.policy != "expert":  # a bad checkpoint is refused before the dataset is touched
        from papo_data.train.policy import load_checkpoint

        policy, _ = load_checkpoint(Path(cfg.policy))
        for task in cfg.tasks:
            try:
                policy.task_index(task)
            except BadInput as e:
                raise BadInput(f"--policy {cfg.policy}: {e}") from None
    writer = _open_writer(path, env, cfg)
    with writer:
        specs = plan(cfg)
        _check_same_policy(path, specs, writer.episodes, env, cfg)
        if cfg.policy != "expert":
            _keep_policy(Path(cfg.policy), path)
        todo = [s for s in specs if s.episode_uid not in writer.episode_uids]
        skipped = len(specs) - len(todo)
        batches = _groups(todo)
        advance = progress(len(todo)) if progress else None
        results = (
            _run_ray(batches, cfg, workers, ray_address)
            if backend == "ray"
            else _run_local(batches, cfg, workers)
        )
        written = 0
        for batch in results:
            for r in batch:
                writer.add_episode(r.episode, sidecars={"snapshots": r.snapshots})
            writer.flush()  # one commit per group
            written += len(batch)
            if advance:
                advance(len(batch))
    return {"written": written, "skipped": skipped}


def _check_same_policy(
    path: Path,
    specs: list[RolloutSpec],
    have: dict[str, Known],
    env: EnvAdapter,
    cfg: CollectConfig,
) -> None:
    """An episode already in the dataset is skipped, so it must be the one this collection would
    write: the uid names task, seed, group and member, but not the policy or its noise."""
    wanted: dict[str, str] = {}
    for spec in specs:
        if spec.episode_uid not in have:
            continue
        if spec.task not in wanted:
            wanted[spec.task] = behaviour_policy(env, spec.task, cfg).policy_id
        if have[spec.episode_uid].policy_id != wanted[spec.task]:
            raise BadInput(
                f"{path}: episode {spec.episode_uid!r} was collected by policy "
                f"{have[spec.episode_uid].policy_id}, not {wanted[spec.task]} (--policy, --noise, "
                "--delay-prob, --max-delay, --temperature); collect into another dataset, "
                "or with another --seed"
            )


def _keep_policy(checkpoint: Path, dataset: Path) -> None:
    """Copy a trained policy into the dataset (by content digest), so branches can rebuild the
    policy that collected an episode from the dataset alone."""
    from papo_data.train.policy import file_digest

    target = dataset / POLICY_DIR / f"{file_digest(checkpoint)}.pt"
    if not target.exists():
        write_atomic_bytes(checkpoint.read_bytes(), target)


def _open_writer(path: Path, env: EnvAdapter, cfg: CollectConfig) -> DatasetWriter:
    if not (path.is_dir() and has_info(path)):
        writer = DatasetWriter.create(
            path,
            fps=env.fps,
            state_names=env.state_names,
            action_names=env.action_names,
            env=cfg.env,
            robot_type="sawyer",
        )
        writer.update_papo(episode_end=cfg.episode_end, horizon=cfg.max_steps or env.max_steps)
        return writer
    writer = DatasetWriter.open(path)
    papo = writer.info.get("papo", {})
    problems = []
    if papo.get("env") != cfg.env:
        problems.append(f"holds env {papo.get('env')!r}, not {cfg.env!r}")
    if papo.get("state_names") != env.state_names or papo.get("action_names") != env.action_names:
        problems.append("has other state or action names")
    horizon = cfg.max_steps or env.max_steps
    if papo.get("horizon", horizon) != horizon:
        problems.append(f"has horizon {papo.get('horizon')}, not {horizon} (--max-steps)")
    if papo.get("episode_end", cfg.episode_end) != cfg.episode_end:
        problems.append(f"ends episodes at {papo.get('episode_end')}, not {cfg.episode_end}")
    if problems:
        writer.close()
        raise BadInput(f"{path}: cannot append: the dataset {problems[0]}")
    if "episode_end" not in papo or "horizon" not in papo:
        writer.update_papo(episode_end=cfg.episode_end, horizon=horizon)
    return writer
