"""Time and peak memory of one PAPO vs one GRPO update (`papo_data.train.grpo.update`).

A synthetic batch stands in for collected rollouts (no simulator, so it builds in a second):
`--groups` x `--group-size` episodes of 50-200 steps (one task per group, 1 to G-1 successes in
every group so none is filtered out), random float32 states and tokens, pi_old = the policy's own
token log-probs plus N(0, 0.1) noise, horizon 200. GRPO: w = 1 everywhere; PAPO: the same batch
with ~15% of steps weighted in [1, 3] (the range export-weights produces). Every timed call is
`update(..., GRPOConfig())` on a fresh deepcopy of one starting policy with a fresh Adam and the
same seed, so both variants take the same mini-batch steps; calls alternate (A B, B A, ...) after
one warm-up each, so drift in machine load hits both alike. Peak memory: each variant once in a
fresh subprocess, `ru_maxrss` after the update minus its value before building the batch.
Goal: PAPO takes <= 5% more time per update than GRPO.

    .venv/bin/python analyses/bench_trainer.py
    .venv/bin/python analyses/bench_trainer.py --quick   # tiny sizes (smoke check)
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from papo_data.train.grpo import Batch, GRPOConfig, update
from papo_data.train.policy import PolicyConfig, TokenPolicy

TASKS = ("reach-v3", "push-v3", "pick-place-v3")
VARIANTS = ("grpo", "papo")
GOAL = 1.05
HORIZON = 200
PAPO_SHARE = 0.15
QUICK = {"groups": 2, "group_size": 4, "repeats": 2}


def make_policy(seed: int) -> TokenPolicy:
    torch.manual_seed(seed)
    return TokenPolicy(PolicyConfig(tasks=TASKS))


def make_batch(policy: TokenPolicy, groups: int, group_size: int, seed: int, variant: str) -> Batch:
    """The same steps for both variants (same rng stream); only the weights differ."""
    rng = np.random.default_rng(seed)
    cfg = policy.config
    n = groups * group_size
    lengths = torch.from_numpy(rng.integers(50, HORIZON + 1, size=n))
    episode = torch.repeat_interleave(torch.arange(n), lengths)
    group_task = torch.from_numpy(rng.integers(0, len(TASKS), size=groups))
    tasks = group_task.repeat_interleave(group_size)[episode]
    steps = len(episode)
    states = torch.from_numpy(rng.standard_normal((steps, cfg.state_dim), dtype=np.float32))
    tokens = torch.from_numpy(rng.integers(0, cfg.bins, size=(steps, cfg.action_dim)))
    with torch.no_grad():
        own, _ = policy.token_log_probs(states, tasks, tokens, 1.0)
    noise = rng.normal(0, 0.1, size=tuple(own.shape)).astype(np.float32)
    wins = rng.integers(1, group_size, size=groups)
    rewards = np.concatenate([rng.permutation(np.arange(group_size) < k) for k in wins])
    lifted = rng.random(steps) < PAPO_SHARE
    papo = np.where(lifted, rng.uniform(1, 3, size=steps), 1.0).astype(np.float32)
    return Batch(
        states=states,
        tasks=tasks,
        tokens=tokens,
        old_log_probs=own + torch.from_numpy(noise),
        weights=torch.from_numpy(papo) if variant == "papo" else torch.ones(steps),
        episode=episode,
        rewards=torch.from_numpy(rewards.astype(np.float32)),
        groups=torch.arange(groups).repeat_interleave(group_size),
        horizon=HORIZON,
    )


def timed_update(start: TokenPolicy, batch: Batch, cfg: GRPOConfig, seed: int) -> tuple[float, int]:
    """(seconds of one `update` call, its gradient steps); copy and optimizer not timed."""
    policy = copy.deepcopy(start)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    gc.collect()
    t0 = time.perf_counter()
    metrics = update(policy, optimizer, batch, cfg, seed=seed)
    return time.perf_counter() - t0, int(metrics["updates"])


def child(args: argparse.Namespace) -> None:
    """One update of `args.child` in this fresh process; print its peak RSS as JSON."""
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    policy = make_policy(args.seed)
    batch = make_batch(policy, args.groups, args.group_size, args.seed, args.child)
    timed_update(policy, batch, GRPOConfig(group_size=args.group_size), args.seed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"baseline_mib": baseline / 1024, "peak_mib": peak / 1024}))


def peak_memory(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Both children at once (memory does not mind sharing the cores). Run before this process
    allocates anything: a child's ru_maxrss starts at its parent's RSS, inherited across exec."""
    sizes = ["--groups", str(args.groups), "--group-size", str(args.group_size)]
    common = [*sizes, "--threads", str(args.threads), "--seed", str(args.seed)]
    procs = {
        v: subprocess.Popen(
            [sys.executable, __file__, "--child", v, *common],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in VARIANTS
    }
    out = {}
    for v, proc in procs.items():
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{v} child failed:\n{stderr[-3000:]}")
        out[v] = json.loads(stdout.strip().splitlines()[-1])
    return out


def ratio_ci(grpo: list[float], papo: list[float], seed: int) -> tuple[float, float]:
    """95% bootstrap of median(PAPO) / median(GRPO), resampling the A/B pairs together."""
    a, b = np.array(grpo), np.array(papo)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(2000, len(a)))
    boot = np.median(b[idx], axis=1) / np.median(a[idx], axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(lo), float(hi)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", type=int, default=16, help="groups in the batch")
    p.add_argument("--group-size", type=int, default=8, help="episodes per group")
    p.add_argument("--repeats", type=int, default=7, help="timed updates per variant")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0, help="batch, policy, update and bootstrap")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke check)")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    if args.groups < 1 or args.group_size < 2 or args.repeats < 1 or args.threads < 1:
        p.error("need --groups >= 1, --group-size >= 2, --repeats >= 1, --threads >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return 0
    load_before = "/".join(f"{x:.2f}" for x in os.getloadavg())
    memory = peak_memory(args)
    cfg = GRPOConfig(group_size=args.group_size)
    start = make_policy(args.seed)
    batches = {v: make_batch(start, args.groups, args.group_size, args.seed, v) for v in VARIANTS}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    n_steps = {v: timed_update(start, batches[v], cfg, args.seed)[1] for v in VARIANTS}  # warm-up
    if n_steps["grpo"] != n_steps["papo"]:
        raise RuntimeError(f"the variants took different gradient steps: {n_steps}")
    for r in range(args.repeats):
        for v in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            times[v].append(timed_update(start, batches[v], cfg, args.seed)[0])
        done = ", ".join(f"{v} {times[v][-1]:.3f} s" for v in VARIANTS)
        print(f"repeat {r + 1}/{args.repeats}: {done}", file=sys.stderr)

    med = {v: statistics.median(times[v]) for v in VARIANTS}
    ratio = med["papo"] / med["grpo"]
    lo, hi = ratio_ci(times["grpo"], times["papo"], args.seed)
    pairs = [p / g for g, p in zip(times["grpo"], times["papo"], strict=True)]
    b = batches["grpo"]
    lines = [
        f"Batch: {b.n_episodes} episodes ({args.groups} groups x {args.group_size}), "
        f"{len(b.episode):,} steps; GRPOConfig() defaults: {n_steps['grpo']} gradient steps per "
        f"update; PAPO weights > 1 on {float((batches['papo'].weights > 1).float().mean()):.1%} "
        f"of steps. torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores; "
        f"load average {load_before} before, "
        + "/".join(f"{x:.2f}" for x in os.getloadavg())
        + f" after{' (--quick: numbers not meaningful)' if args.quick else ''}.\n",
        "| variant | s / update (median) | min - max | ms / gradient step "
        "| peak RSS MiB (baseline) | over baseline MiB |",
        "|---|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        m = memory[v]
        lines.append(
            f"| {v.upper()} | {med[v]:.3f} | {min(times[v]):.3f} - {max(times[v]):.3f} "
            f"| {1000 * med[v] / n_steps[v]:.1f} | {m['peak_mib']:.0f} ({m['baseline_mib']:.0f}) "
            f"| {m['peak_mib'] - m['baseline_mib']:.1f} |"
        )
    lines += [
        "",
        f"PAPO / GRPO time per update: **{ratio:.3f}** (95% paired bootstrap {lo:.3f} - "
        f"{hi:.3f}; per-pair ratios {min(pairs):.3f} - {max(pairs):.3f}; {args.repeats} repeats); "
        f"goal <= {GOAL}: {'**met**' if ratio <= GOAL else 'not met'}.\n",
        "`" + shlex.join([".venv/bin/python", "analyses/bench_trainer.py", *argv]) + "`",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
