"""`papo collect DATASET ...`: grouped rollouts of a noisy scripted expert, with checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from papo_data.commands.progress import progress_bar
from papo_data.errors import BadInput
from papo_data.sim.collect import CollectConfig, collect
from papo_data.sim.policies import NoisyExpertConfig


def add_parser(verbs: Any) -> None:
    defaults = NoisyExpertConfig()
    p = verbs.add_parser(
        "collect",
        help="collect grouped rollouts from a simulator into a dataset",
        description="For each task, N initial states (GRPO groups) and G rollouts from each "
        "(same initial state, different policy seeds), with simulator snapshots at frame 0 and "
        "every K frames. Creates DATASET or appends to it; a rerun skips episodes already "
        "written, so a killed collection resumes where it stopped. Same arguments, same tables.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder (created if absent)")
    p.add_argument("--env", default="metaworld", help="simulator (default metaworld)")
    p.add_argument("--tasks", required=True, help="comma-separated task names, e.g. pick-place-v3")
    p.add_argument("--groups", type=int, default=4, help="initial states per task (default 4)")
    p.add_argument("--group-size", type=int, default=8, help="rollouts per group (default 8)")
    p.add_argument(
        "--policy",
        default="expert",
        help="behaviour policy: 'expert' (the scripted expert with the noise below, default) or "
        "a trained policy checkpoint (.pt from 'papo train'), copied into papo/policies/",
    )
    p.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature of a trained policy"
    )
    p.add_argument(
        "--noise",
        type=float,
        default=defaults.sigma,
        help=f"std of Gaussian noise on the xyz action dims (default {defaults.sigma})",
    )
    p.add_argument(
        "--delay-prob",
        type=float,
        default=defaults.delay_prob,
        help=f"probability a gripper switch is delayed (default {defaults.delay_prob})",
    )
    p.add_argument(
        "--max-delay",
        type=int,
        default=defaults.max_delay,
        help=f"longest delay of a gripper switch in steps (default {defaults.max_delay})",
    )
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument(
        "--checkpoint-every", type=int, default=25, help="snapshot every K frames (default 25)"
    )
    p.add_argument("--max-steps", type=int, help="horizon (default: the simulator's)")
    p.add_argument("--workers", type=int, default=1, help="simulation processes (default 1)")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="default local")
    p.add_argument("--ray-address", help="Ray cluster address (default: start a local instance)")
    end = p.add_mutually_exclusive_group()
    end.add_argument(
        "--stop-on-success",
        dest="stop_on_success",
        action="store_true",
        default=True,
        help="end an episode at its first success (default)",
    )
    end.add_argument(
        "--full-horizon",
        dest="stop_on_success",
        action="store_false",
        help="run every episode to the horizon",
    )
    p.set_defaults(handler=run)


def config(args: argparse.Namespace) -> CollectConfig:
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    return CollectConfig(
        tasks=tasks,
        groups=args.groups,
        group_size=args.group_size,
        seed=args.seed,
        env=args.env,
        policy=args.policy,
        temperature=args.temperature,
        noise=NoisyExpertConfig(
            sigma=args.noise, delay_prob=args.delay_prob, max_delay=args.max_delay
        ),
        checkpoint_every=args.checkpoint_every,
        stop_on_success=args.stop_on_success,
        max_steps=args.max_steps,
    )


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    if args.dataset.exists() and not args.dataset.is_dir():
        raise BadInput(f"{args.dataset}: exists and is not a folder")
    with progress_bar("collect", "episode") as progress:
        counts = collect(
            args.dataset,
            cfg,
            workers=args.workers,
            backend=args.backend,
            ray_address=args.ray_address,
            progress=progress,
        )
    print(
        f"{args.dataset}: wrote {counts['written']} episodes"
        + (f", {counts['skipped']} were already there" if counts["skipped"] else "")
    )
    return 0
