"""GRPO vs PAPO (branches) vs PAPO (amortised) on Meta-World, from one behaviour-cloned start.

    python analyses/grpo_vs_papo.py            # default: 3 tasks x 3 seeds x 3 methods
    python analyses/grpo_vs_papo.py --quick    # a minute; what the test suite runs

1. Start: one noise-free expert demo per task (`papo collect --noise 0 --delay-prob 0`), cloned
   into one multi-task token policy (`papo train --bc --demos-per-task 1`). One demo puts the
   start in the regime where RL has room (it succeeds part of the time; measured below).
2. Each (method, seed) is an online run of `papo_data.train.online.train` from that start with
   the same config except `mode`: grpo (w = 1), papo (branch the first `--branch-limit` planning
   actions per iteration, K = `--k` seeds, noise intervention), papo-amortized (branch a hashed
   half of them, predict the importance of every other planning action with the amortised
   model). Runs go two at a time (one per core); each run simulates in its own process.
3. Evaluation: `--eval-episodes` held-out initial states per task (seed 2026, never trained on),
   one rollout each at temperature 1, for (a) every run's final policy: equal update count,
   and (b) each run's last policy whose cumulative simulator steps (rollouts + branches) do not
   exceed its seed's GRPO run total: equal simulator steps. Success pooled over seeds and tasks,
   Wilson 95% intervals; per-seed values beside them. Every policy is evaluated on the same
   states with the same seeds, so each PAPO method is also compared with GRPO state by state:
   the mean success difference, with a bootstrap interval over initial states.
4. Figure `analyses/figures/grpo_vs_papo.png`: training success rate per iteration and against
   cumulative simulator steps (mean over seeds, band = min..max).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import binomtest

from papo_data.causal.paired import cluster_bootstrap_ratio, proportion_interval
from papo_data.data.dataset import Dataset
from papo_data.sim.collect import CollectConfig, collect
from papo_data.sim.policies import NoisyExpertConfig
from papo_data.train.bc import BCConfig, behaviour_clone
from papo_data.train.grpo import GRPOConfig
from papo_data.train.online import TrainConfig, train
from papo_data.train.policy import save_checkpoint

TASKS = ("button-press-topdown-v3", "plate-slide-v3", "reach-v3")
METHODS = ("grpo", "papo", "papo-amortized")
EVAL_SEED = 2026
FIGURE = Path(__file__).parent / "figures" / "grpo_vs_papo.png"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("analyses/out/grpo_vs_papo"))
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--groups-per-task", type=int, default=2)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=150)
    p.add_argument("--lr", type=float, default=1e-3, help="GRPO learning rate")
    p.add_argument("--k", type=int, default=8, help="branch seeds per planning action")
    p.add_argument("--branch-limit", type=int, default=12, help="planning actions branched/iter")
    p.add_argument("--eval-episodes", type=int, default=30, help="per task and policy")
    p.add_argument("--parallel", type=int, default=2, help="runs at once")
    p.add_argument("--quick", action="store_true", help="tiny sizes (the test suite's run)")
    p.add_argument("--no-figure", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.tasks, args.seeds, args.iterations = "reach-v3", 1, 2
        args.groups_per_task, args.group_size, args.max_steps = 2, 4, 60
        args.k, args.branch_limit, args.eval_episodes = 2, 4, 4
    args.tasks = tuple(args.tasks.split(","))
    return args


def make_start(out: Path, args: argparse.Namespace) -> Path:
    """One expert demo per task, cloned."""
    demos = out / "demos"
    shutil.rmtree(demos, ignore_errors=True)
    collect(
        demos,
        CollectConfig(
            tasks=args.tasks,
            groups=1,
            group_size=1,
            seed=100,
            noise=NoisyExpertConfig(sigma=0, delay_prob=0),
            max_steps=200,
        ),
    )
    result = behaviour_clone(demos, BCConfig(demos_per_task=1, epochs=100))
    start = out / "bc.pt"
    save_checkpoint(start, result.policy, bc={"demos": result.demos})
    return start


def run_config(start: Path, method: str, seed: int, args: argparse.Namespace) -> TrainConfig:
    default = TrainConfig(init=str(start))
    return TrainConfig(
        init=str(start),
        mode=method,
        iterations=args.iterations,
        seed=seed,
        tasks=args.tasks,
        groups_per_task=args.groups_per_task,
        max_steps=args.max_steps,
        grpo=GRPOConfig(group_size=args.group_size, learning_rate=args.lr),
        branch=replace(default.branch, k=args.k, limit=args.branch_limit),
    )


def run_one(job: tuple[Path, TrainConfig]) -> Path:
    import torch

    torch.set_num_threads(1)  # one run per core
    run, cfg = job
    shutil.rmtree(run, ignore_errors=True)
    train(run, cfg)
    return run


def evaluate(job: tuple[Path, Path, argparse.Namespace]) -> list[tuple[str, str, bool]]:
    """(task, group_id, success) of one policy on each held-out initial state. Every policy
    sees the same states (and seeds), so methods can be compared state by state."""
    import torch

    torch.set_num_threads(1)
    policy, out, args = job
    shutil.rmtree(out, ignore_errors=True)
    collect(
        out,
        CollectConfig(
            tasks=args.tasks,
            groups=args.eval_episodes,
            group_size=1,
            seed=EVAL_SEED,
            policy=str(policy),
            max_steps=args.max_steps,
        ),
    )
    with Dataset(out) as ds:
        rows = ds.sql(
            "SELECT split_part(env_id, '/', 2) AS task, group_id, success FROM episodes "
            "ORDER BY group_id"
        ).rows()
    shutil.rmtree(out)
    return [(str(task), str(group), bool(ok)) for task, group, ok in rows]


def equal_steps_policy(run: Path, metrics: pl.DataFrame, budget: int, start: Path) -> Path:
    """The last policy of `run` whose cumulative simulator steps stay within `budget`."""
    cumulative = (metrics["rollout_steps"] + metrics["branch_steps"]).cum_sum().to_list()
    done = [i for i, c in enumerate(cumulative) if c <= budget]
    if not done:
        return start
    last = done[-1]  # the policy after iteration `last` is the one that collected `last + 1`
    if last + 1 == len(cumulative):
        return run / "checkpoints" / "last.pt"
    return run / "policies" / f"{last + 1:04d}.pt"


def paired_differences(episodes: pl.DataFrame) -> list[str]:
    """Markdown rows: success of each PAPO method minus GRPO's on the same held-out initial
    states, seeds and budget, with a 95% bootstrap interval that resamples initial states (a
    state is shared by every seed; its difficulty is the noise the pairing removes)."""
    grpo = episodes.filter(pl.col("method") == "grpo").select(
        "budget", "seed", "group_id", grpo="success"
    )
    lines = [
        "| budget | method − grpo | success difference [95% CI] | per seed | state-seed pairs "
        "won / lost | exact sign test p (two-sided) |",
        "|---|---|---|---|---|---|",
    ]
    for budget in ("equal_updates", "equal_steps"):
        for method in METHODS[1:]:
            pairs = (
                episodes.filter((pl.col("budget") == budget) & (pl.col("method") == method))
                .join(grpo, on=["budget", "seed", "group_id"])
                .with_columns(diff=pl.col("success").cast(pl.Int8) - pl.col("grpo").cast(pl.Int8))
            )
            if pairs.is_empty():
                continue
            diff = pairs["diff"].to_numpy()
            _, (lo, hi) = cluster_bootstrap_ratio(diff, np.ones_like(diff), pairs["group_id"], 0)
            per_seed = pairs.group_by("seed").agg(pl.col("diff").mean()).sort("seed")["diff"]
            wins, losses = int((pairs["diff"] > 0).sum()), int((pairs["diff"] < 0).sum())
            lines.append(
                f"| {budget} | {method} | {pairs['diff'].mean():+.3f} [{lo:+.3f}, {hi:+.3f}] | "
                + ", ".join(f"{v:+.2f}" for v in per_seed)
                + f" | {wins} / {losses} | {sign_test_p(wins, losses):.3f} |"
            )
    return lines


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign (McNemar) test on the discordant state-seed pairs: with few of
    them the bootstrap interval is optimistic, this is not."""
    return float(binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0


def interval_text(s: int, n: int) -> str:
    lo, hi = proportion_interval(s, n)
    return f"{s / n:.3f} [{lo:.3f}, {hi:.3f}]"


def figure(metrics: pl.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for method in METHODS:
        m = metrics.filter(pl.col("method") == method).sort("seed", "iteration")
        if m.is_empty():
            continue
        m = m.with_columns(
            (pl.col("rollout_steps") + pl.col("branch_steps")).cum_sum().over("seed").alias("sim")
        )
        curve = m.group_by("iteration").agg(
            pl.col("success_rate").mean().alias("mean"),
            pl.col("success_rate").min().alias("lo"),
            pl.col("success_rate").max().alias("hi"),
            pl.col("sim").mean().alias("sim"),
        )
        curve = curve.sort("iteration")
        for ax, x in ((axes[0], curve["iteration"] + 1), (axes[1], curve["sim"])):
            ax.plot(x, curve["mean"], marker="o", ms=3, label=method)
            ax.fill_between(x, curve["lo"], curve["hi"], alpha=0.2)
    axes[0].set_xlabel("update (iteration)")
    axes[1].set_xlabel("cumulative simulator steps (rollouts + branches)")
    axes[0].set_ylabel("training success rate\n(mean over seeds, band = min..max)")
    axes[0].legend()
    fig.suptitle("GRPO vs PAPO from one behaviour-cloned start (Meta-World)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    start = make_start(out, args)
    jobs = [
        (out / "runs" / f"{method}-s{seed}", run_config(start, method, seed, args))
        for seed in range(args.seeds)
        for method in METHODS
    ]
    context = get_context("spawn")
    with ProcessPoolExecutor(args.parallel, mp_context=context) as pool:
        runs = list(pool.map(run_one, jobs))
        metrics = pl.concat(
            [
                pl.read_parquet(run / "metrics.parquet").with_columns(
                    pl.lit(cfg.mode).alias("method"), pl.lit(cfg.seed).alias("seed")
                )
                for run, (_, cfg) in zip(runs, jobs, strict=True)
            ],
            how="diagonal",
        )
        trained = time.perf_counter() - began

        budgets = {
            seed: int(
                metrics.filter((pl.col("method") == "grpo") & (pl.col("seed") == seed))
                .select((pl.col("rollout_steps") + pl.col("branch_steps")).sum())
                .item()
            )
            for seed in range(args.seeds)
        }
        policies: dict[tuple[str, str, int], Path] = {("start", "start", 0): start}
        for run, (_, cfg) in zip(runs, jobs, strict=True):
            m = metrics.filter((pl.col("method") == cfg.mode) & (pl.col("seed") == cfg.seed))
            policies[("equal_updates", cfg.mode, cfg.seed)] = run / "checkpoints" / "last.pt"
            policies[("equal_steps", cfg.mode, cfg.seed)] = equal_steps_policy(
                run, m.sort("iteration"), budgets[cfg.seed], start
            )
        keys = list(policies)
        evals = list(
            pool.map(
                evaluate,
                [(policies[k], out / "eval" / "-".join(map(str, k)), args) for k in keys],
            )
        )
    episodes = pl.DataFrame(
        [
            dict(budget=budget, method=method, seed=seed, task=task, group_id=group, success=ok)
            for (budget, method, seed), rows in zip(keys, evals, strict=True)
            for task, group, ok in rows
        ]
    )
    frame = (
        episodes.group_by("budget", "method", "seed", "task", maintain_order=True)
        .agg(s=pl.col("success").cast(pl.Int64).sum(), n=pl.len().cast(pl.Int64))
        .sort("budget", "method", "seed", "task")
    )
    frame.write_parquet(out / "evaluation.parquet")
    episodes.write_parquet(out / "evaluation_episodes.parquet")
    metrics.write_parquet(out / "metrics.parquet")
    if not args.no_figure:
        figure(metrics, FIGURE)

    lines = [
        f"Tasks {', '.join(args.tasks)}; {args.seeds} seeds; {args.iterations} updates of "
        f"{len(args.tasks) * args.groups_per_task} groups x {args.group_size} rollouts; "
        f"horizon {args.max_steps}; PAPO branches {args.branch_limit} planning actions/iteration "
        f"x K={args.k} (noise); evaluation {args.eval_episodes} held-out initial states per "
        f"task and policy. Training {trained / 60:.1f} min, total "
        f"{(time.perf_counter() - began) / 60:.1f} min.",
        "",
        "| budget | method | success (pooled, Wilson 95%) | per seed | "
        + " | ".join(args.tasks)
        + " | sim steps (mean/run) |",
        "|---|---|---|---|" + "---|" * len(args.tasks) + "---|",
    ]
    sim = metrics.group_by("method").agg(
        ((pl.col("rollout_steps") + pl.col("branch_steps")).sum() / args.seeds).alias("steps")
    )
    steps_of = dict(sim.rows())
    for budget in ("start", "equal_updates", "equal_steps"):
        for method in ("start",) if budget == "start" else METHODS:
            part = frame.filter((pl.col("budget") == budget) & (pl.col("method") == method))
            if part.is_empty():
                continue
            per_seed = part.group_by("seed").agg(pl.col("s").sum() / pl.col("n").sum()).sort("seed")
            per_task = [
                part.filter(pl.col("task") == t).select(pl.col("s").sum(), pl.col("n").sum()).row(0)
                for t in args.tasks
            ]
            lines.append(
                f"| {budget} | {method} | {interval_text(part['s'].sum(), part['n'].sum())} | "
                + ", ".join(f"{v:.2f}" for v in per_seed[:, 1])
                + " | "
                + " | ".join(f"{s / n:.2f}" for s, n in per_task)
                + f" | {steps_of.get(method, 0):,.0f} |"
            )
    lines += ["", *paired_differences(episodes)]
    report = "\n".join(lines)
    print(report)
    print(f"\ncommand: python analyses/grpo_vs_papo.py {' '.join(argv or sys.argv[1:])}")
    (out / "summary.md").write_text(report + "\n")
    return {"frame": frame, "metrics": metrics, "report": report}


if __name__ == "__main__":
    main()
