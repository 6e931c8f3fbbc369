"""Snapshot fidelity and checkpointing cost of the Meta-World adapter, task by task.

For every Meta-World v3 task (all 50 by default) this measures:

1. fidelity: the noisy expert runs from `reset` to frame `--snapshot-at`, the env is
   snapshotted, and the expert keeps playing `--play` steps. The snapshot is restored into a
   fresh `MetaWorldEnv` and the recorded actions are replayed; the task is *exact* when
   `restore()` returns the observation the original env had at the snapshot and every replayed
   observation is bit-identical (`np.array_equal`), with equal rewards and successes;
2. snapshot size (bytes), `snapshot()` time and `restore()` time (into a warm instance that
   already ran the task), medians over `--repeats`;
3. env steps/s on the recorded actions, bare (`step` only) and with a checkpoint every 25 frames
   (`snapshot()` at frames 0, 25, 50, ... as `papo collect` does), a/b repeats interleaved in
   the same run; the overhead is (time with checkpoints / bare time - 1), with a seeded 95%
   bootstrap interval over tasks for the aggregate.

Prints a markdown table and a summary; exits 1 if any task is not exact. Run it with:

    .venv/bin/python analyses/snapshot_fidelity.py --out-md /tmp/sf.md \
        --figure analyses/figures/snapshot_overhead.png
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from papo_data.sim.collect import CollectConfig, plan
from papo_data.sim.metaworld import MetaWorldEnv
from papo_data.sim.policies import NoisyExpert, NoisyExpertConfig

CHECKPOINT_EVERY = 25
"""As `papo collect` (CollectConfig.checkpoint_every)."""
OVERHEAD_GOAL = 0.10
BOOTSTRAP_SAMPLES = 10_000


@dataclass
class Recording:
    """One noisy-expert episode with a snapshot taken part-way."""

    init_seed: int
    actions: list[np.ndarray]
    """Every action from frame 0, the ones before the snapshot included."""
    blob: bytes
    obs_at_snapshot: np.ndarray
    obs_after: list[np.ndarray]
    """Observation, reward and success of each step after the snapshot."""
    rewards_after: list[float]
    successes_after: list[bool]


@dataclass
class Fidelity:
    restore_obs_equal: bool
    first_divergence: int | None
    """Steps after the snapshot at which the replay first differed (None: never)."""

    @property
    def exact(self) -> bool:
        return self.restore_obs_equal and self.first_divergence is None


@dataclass
class TaskResult:
    task: str
    fidelity: Fidelity
    snapshot_bytes: int
    snapshot_ms: float
    restore_ms: float
    steps: int
    """Steps per timed replay (from frame 0)."""
    bare_s: float
    """Median time of a timed replay, bare and with checkpoints."""
    checkpointed_s: float

    @property
    def exact(self) -> bool:
        return self.fidelity.exact

    @property
    def steps_per_s_bare(self) -> float:
        return self.steps / self.bare_s

    @property
    def steps_per_s_checkpointed(self) -> float:
        return self.steps / self.checkpointed_s

    @property
    def overhead(self) -> float:
        return self.checkpointed_s / self.bare_s - 1


@dataclass
class Summary:
    exact: int
    total: int
    median_snapshot_bytes: float
    median_snapshot_ms: float
    median_restore_ms: float
    steps_per_s_bare: float
    steps_per_s_checkpointed: float
    overhead: float
    overhead_ci: tuple[float, float]


def init_seed_for(task: str, seed: int) -> int:
    """The initial state `papo collect --seed seed` uses for the task's first group."""
    spec = plan(CollectConfig(tasks=(task,), groups=1, group_size=1, seed=seed))[0]
    return spec.init_seed


def record(env: MetaWorldEnv, task: str, seed: int, snapshot_at: int, play: int) -> Recording:
    """Run the noisy expert, snapshot at frame `snapshot_at`, keep playing `play` steps."""
    init_seed = init_seed_for(task, seed)
    policy = NoisyExpert(env, NoisyExpertConfig())
    policy.reset()
    rng = np.random.default_rng(seed)
    obs = env.reset(task, init_seed)
    actions: list[np.ndarray] = []
    for _ in range(snapshot_at):
        action, _ = policy.act(obs, rng)
        actions.append(action)
        obs, _, _ = env.step(action)
    blob, obs_at_snapshot = env.snapshot(), obs
    rec = Recording(init_seed, actions, blob, obs_at_snapshot, [], [], [])
    for _ in range(play):
        action, _ = policy.act(obs, rng)
        actions.append(action)
        obs, reward, success = env.step(action)
        rec.obs_after.append(obs)
        rec.rewards_after.append(reward)
        rec.successes_after.append(success)
    return rec


def check_replay(rec: Recording, snapshot_at: int) -> Fidelity:
    """Restore into a fresh env, replay the actions after the snapshot, compare bit for bit."""
    env = MetaWorldEnv()
    restored = env.restore(rec.blob)
    restore_ok = np.array_equal(restored, rec.obs_at_snapshot)
    for i, action in enumerate(rec.actions[snapshot_at:]):
        obs, reward, success = env.step(action)
        same = (
            np.array_equal(obs, rec.obs_after[i])
            and reward == rec.rewards_after[i]
            and success == rec.successes_after[i]
        )
        if not same:
            return Fidelity(restore_ok, i)
    return Fidelity(restore_ok, None)


def time_snapshot_restore(env: MetaWorldEnv, blob: bytes, repeats: int) -> tuple[float, float]:
    """Median ms of `restore(blob)` into `env` (warm: it ran the task) and of `snapshot()`
    of the restored state."""
    restore_s, snapshot_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        env.restore(blob)
        t1 = time.perf_counter()
        env.snapshot()
        t2 = time.perf_counter()
        restore_s.append(t1 - t0)
        snapshot_s.append(t2 - t1)
    return 1e3 * statistics.median(snapshot_s), 1e3 * statistics.median(restore_s)


def timed_replay(
    env: MetaWorldEnv, task: str, init_seed: int, actions: list[np.ndarray], every: int | None
) -> float:
    """Seconds to step through `actions` from reset (not timed), with `snapshot()` before the
    action of every `every`-th frame if given (as collection checkpoints)."""
    env.reset(task, init_seed)
    t0 = time.perf_counter()
    if every is None:
        for action in actions:
            env.step(action)
    else:
        for t, action in enumerate(actions):
            if t % every == 0:
                env.snapshot()
            env.step(action)
    return time.perf_counter() - t0


def time_stepping(
    env: MetaWorldEnv, task: str, rec: Recording, repeats: int
) -> tuple[float, float]:
    """Median seconds of a bare and a checkpointed replay, a/b interleaved (order alternating)."""
    bare, checkpointed = [], []
    for r in range(repeats):
        order = (None, CHECKPOINT_EVERY) if r % 2 == 0 else (CHECKPOINT_EVERY, None)
        for every in order:
            seconds = timed_replay(env, task, rec.init_seed, rec.actions, every)
            (bare if every is None else checkpointed).append(seconds)
    return statistics.median(bare), statistics.median(checkpointed)


def measure_task(
    env: MetaWorldEnv, task: str, seed: int, snapshot_at: int, play: int, repeats: int
) -> TaskResult:
    rec = record(env, task, seed, snapshot_at, play)
    fidelity = check_replay(rec, snapshot_at)
    snapshot_ms, restore_ms = time_snapshot_restore(env, rec.blob, repeats)
    bare_s, checkpointed_s = time_stepping(env, task, rec, repeats)
    return TaskResult(
        task=task,
        fidelity=fidelity,
        snapshot_bytes=len(rec.blob),
        snapshot_ms=snapshot_ms,
        restore_ms=restore_ms,
        steps=len(rec.actions),
        bare_s=bare_s,
        checkpointed_s=checkpointed_s,
    )


def aggregate_overhead(bare: np.ndarray, checkpointed: np.ndarray) -> float:
    """Overhead over all tasks together: total checkpointed time / total bare time - 1."""
    return float(checkpointed.sum() / bare.sum() - 1)


def bootstrap_overhead(results: list[TaskResult], seed: int) -> tuple[float, float]:
    """95% percentile bootstrap interval of the aggregate overhead, resampling tasks."""
    bare = np.array([r.bare_s for r in results])
    checkpointed = np.array([r.checkpointed_s for r in results])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(results), size=(BOOTSTRAP_SAMPLES, len(results)))
    ratios = checkpointed[idx].sum(axis=1) / bare[idx].sum(axis=1) - 1
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def summarize(results: list[TaskResult], seed: int) -> Summary:
    bare = np.array([r.bare_s for r in results])
    checkpointed = np.array([r.checkpointed_s for r in results])
    steps = sum(r.steps for r in results)
    return Summary(
        exact=sum(r.exact for r in results),
        total=len(results),
        median_snapshot_bytes=statistics.median(r.snapshot_bytes for r in results),
        median_snapshot_ms=statistics.median(r.snapshot_ms for r in results),
        median_restore_ms=statistics.median(r.restore_ms for r in results),
        steps_per_s_bare=steps / bare.sum(),
        steps_per_s_checkpointed=steps / checkpointed.sum(),
        overhead=aggregate_overhead(bare, checkpointed),
        overhead_ci=bootstrap_overhead(results, seed),
    )


def exact_cell(f: Fidelity) -> str:
    if f.exact:
        return "yes"
    why = [] if f.restore_obs_equal else ["restore obs differs"]
    if f.first_divergence is not None:
        why.append(f"diverges at step {f.first_divergence} after snapshot")
    return "**NO** (" + "; ".join(why) + ")"


def summary_line(s: Summary) -> str:
    lo, hi = s.overhead_ci
    return (
        f"{s.exact}/{s.total} tasks exact; median over tasks: snapshot "
        f"{s.median_snapshot_bytes:.0f} bytes ({s.median_snapshot_bytes / 1024:.1f} KiB), "
        f"snapshot() {s.median_snapshot_ms:.2f} ms, restore() {s.median_restore_ms:.2f} ms; "
        f"{s.steps_per_s_bare:.0f} steps/s bare, {s.steps_per_s_checkpointed:.0f} steps/s "
        f"checkpointing every {CHECKPOINT_EVERY}; checkpointing overhead "
        f"{100 * s.overhead:+.1f}% (95% bootstrap CI over tasks {100 * lo:+.1f}% "
        f"to {100 * hi:+.1f}%)"
    )


def markdown(results: list[TaskResult], s: Summary) -> str:
    header = (
        "| task | exact | snapshot bytes | snapshot ms | restore ms | steps/s bare "
        "| steps/s with checkpoints | overhead % |"
    )
    rows = [header, "|" + "---|" * 8]
    for r in results:
        rows.append(
            f"| {r.task} | {exact_cell(r.fidelity)} | {r.snapshot_bytes} | {r.snapshot_ms:.2f} "
            f"| {r.restore_ms:.2f} | {r.steps_per_s_bare:.0f} | {r.steps_per_s_checkpointed:.0f} "
            f"| {100 * r.overhead:+.1f} |"
        )
    rows.append(
        f"| **all** | **{s.exact}/{s.total}** | {s.median_snapshot_bytes:.0f} (median) "
        f"| {s.median_snapshot_ms:.2f} (median) | {s.median_restore_ms:.2f} (median) "
        f"| {s.steps_per_s_bare:.0f} | {s.steps_per_s_checkpointed:.0f} "
        f"| {100 * s.overhead:+.1f} |"
    )
    return "\n".join(rows) + "\n"


def plot(results: list[TaskResult], s: Summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overhead = [100 * r.overhead for r in results]
    colors = ["tab:blue" if r.exact else "tab:red" for r in results]
    fig, ax = plt.subplots(figsize=(14, 5))
    ax.bar(range(len(results)), overhead, color=colors)
    ax.axhline(100 * OVERHEAD_GOAL, color="tab:red", linestyle="--", label="goal: ≤ 10%")
    lo, hi = s.overhead_ci
    ax.axhline(
        100 * s.overhead,
        color="black",
        linewidth=1,
        label=f"aggregate {100 * s.overhead:+.1f}% (95% CI {100 * lo:+.1f}% to {100 * hi:+.1f}%)",
    )
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_xticks(range(len(results)), [r.task for r in results], rotation=90, fontsize=7)
    ax.set_ylabel("checkpointing overhead (%)")
    ax.set_title(
        f"Meta-World: env step time with snapshot() every {CHECKPOINT_EVERY} frames vs bare "
        f"({s.exact}/{s.total} tasks bit-exact on restore + replay)"
    )
    ax.legend(loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", help="task names (default: all 50)")
    p.add_argument("--seed", type=int, default=0, help="initial states, policy noise, bootstrap")
    p.add_argument("--snapshot-at", type=int, default=30, help="frame of the snapshot")
    p.add_argument("--play", type=int, default=200, help="steps played after the snapshot")
    p.add_argument("--repeats", type=int, default=3, help="timing repeats (medians)")
    p.add_argument("--out-md", type=Path, help="also write the markdown table here")
    p.add_argument("--figure", type=Path, help="PNG of per-task overhead")
    args = p.parse_args(argv)
    if args.snapshot_at < 0 or args.play < 1 or args.snapshot_at + args.play > 500:
        p.error("need --snapshot-at >= 0, --play >= 1 and --snapshot-at + --play <= 500")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = MetaWorldEnv()
    tasks = args.tasks or sorted(env.tasks())
    unknown = [t for t in tasks if t not in env.tasks()]
    if unknown:
        print(f"unknown tasks: {', '.join(unknown)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = []
    for i, task in enumerate(tasks, 1):
        r = measure_task(env, task, args.seed, args.snapshot_at, args.play, args.repeats)
        results.append(r)
        print(
            f"[{i}/{len(tasks)}] {task}: exact={r.exact} overhead={100 * r.overhead:+.1f}%",
            file=sys.stderr,
        )
    s = summarize(results, args.seed)
    text = (
        f"mujoco {mujoco.__version__}; seed {args.seed}, snapshot at frame {args.snapshot_at}, "
        f"{args.play} steps replayed, {args.repeats} timing repeats; "
        f"ran in {time.perf_counter() - started:.0f} s\n\n"
        f"**Summary:** {summary_line(s)}\n\n{markdown(results, s)}"
    )
    print(text)
    if args.out_md:
        args.out_md.write_text(text)
    if args.figure:
        plot(results, s, args.figure)
    return 0 if s.exact == s.total else 1


if __name__ == "__main__":
    sys.exit(main())
