"""`papo train`: behaviour cloning, the online GRPO/PAPO loop, or offline updates."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from papo_data.commands.progress import tqdm_bars
from papo_data.data.commit import check_writable
from papo_data.data.dataset import check_root
from papo_data.data.validate import check_tables
from papo_data.errors import BadInput


def add_parser(verbs: Any) -> None:
    from papo_data.train.bc import BCConfig

    bc = BCConfig()
    p = verbs.add_parser(
        "train",
        help="behaviour cloning and GRPO/PAPO training of the token policy",
        description="Three modes. --bc DATASET: clone the successful episodes of a dataset "
        "(e.g. collected with --noise 0 --delay-prob 0) into a starting policy. --config "
        "FILE.toml: the online loop collect -> segment -> branch -> estimate -> export-weights "
        "-> GRPO/PAPO update, one dataset per iteration under --run, metrics in "
        "RUN/metrics.parquet, RUN/checkpoints/last.pt for --resume. --offline DATASET: "
        "GRPO/PAPO epochs over logged rollouts, advantages weighted by an exported --weights "
        "file.",
        epilog="Config keys: see papo_data.train.online.TrainConfig and "
        "papo_data.train.grpo.GRPOConfig; README has an example.",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--bc", type=Path, metavar="DATASET", help="behaviour cloning source")
    mode.add_argument("--config", type=Path, metavar="FILE.toml", help="online run config")
    mode.add_argument("--offline", type=Path, metavar="DATASET", help="logged rollouts")
    p.add_argument("--out", type=Path, help="checkpoint to write (--bc, --offline)")
    p.add_argument("--run", type=Path, help="run folder (--config; default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue a killed run (--config)")
    p.add_argument("--weights", type=Path, help="exported weights FILE.parquet (--offline)")
    p.add_argument("--init", type=Path, help="starting checkpoint (--offline)")
    p.add_argument(
        "--grpo-config",
        type=Path,
        metavar="FILE.toml",
        help="--offline: take the [grpo] table (and reward) of this file",
    )
    p.add_argument("--epochs", type=int, help=f"passes over the data (--bc default {bc.epochs})")
    p.add_argument(
        "--behaviour",
        choices=("logged", "init"),
        default="logged",
        help="--offline: pi_old from the logged log-probs (default) or the --init policy",
    )
    p.add_argument("--demos-per-task", type=int, default=bc.demos_per_task, help="--bc budget")
    p.add_argument("--label-sigma", type=float, default=bc.label_sigma, help="--bc, in bins")
    p.add_argument("--bins", type=int, default=bc.bins, help="--bc: action tokens per dim")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run, option_defaults={n: p.get_default(n) for n in _ALL_OTHER})


# Options each mode does not read: given anyway, they are refused rather than ignored.
OTHER_MODES_OPTIONS = {
    "bc": ("run", "resume", "weights", "init", "grpo_config", "behaviour"),
    "offline": ("run", "resume", "demos_per_task", "label_sigma", "bins"),
    "config": (
        *("out", "weights", "init", "grpo_config", "epochs", "behaviour"),
        *("demos_per_task", "label_sigma", "bins", "seed"),
    ),
}
_ALL_OTHER = sorted({n for names in OTHER_MODES_OPTIONS.values() for n in names})


def run(args: argparse.Namespace) -> int:
    mode = "bc" if args.bc is not None else "offline" if args.offline is not None else "config"
    for name in OTHER_MODES_OPTIONS[mode]:
        if getattr(args, name) != args.option_defaults[name]:
            raise BadInput(f"--{name.replace('_', '-')} does not apply to --{mode}")
    if mode == "bc":
        return _bc(args)
    if mode == "offline":
        return _offline(args)
    return _online(args)


def _need(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) is None:
            raise BadInput(f"--{name} is required here")


def _bc(args: argparse.Namespace) -> int:
    from papo_data.train.bc import BCConfig, behaviour_clone
    from papo_data.train.policy import save_checkpoint

    _need(args, "out")
    check_root(args.bc)
    check_writable(args.out, dataset=args.bc)
    cfg = BCConfig(
        demos_per_task=args.demos_per_task,
        label_sigma=args.label_sigma,
        bins=args.bins,
        seed=args.seed,
        **({"epochs": args.epochs} if args.epochs is not None else {}),
    )
    cfg.check()
    check_tables(args.bc, ("steps", "episodes", "tasks"))
    result = behaviour_clone(args.bc, cfg)
    save_checkpoint(args.out, result.policy, bc={"dataset": str(args.bc), "demos": result.demos})
    print(
        f"{args.out}: cloned {result.demos} demos ({result.steps} steps) of "
        f"{len(result.policy.config.tasks)} tasks; final loss {result.final_loss:.3f}"
    )
    return 0


def _offline(args: argparse.Namespace) -> int:
    from papo_data.train.grpo import GRPOConfig
    from papo_data.train.offline import OfflineConfig, train_offline
    from papo_data.train.online import config_from_table, read_toml

    _need(args, "init", "out")
    check_root(args.offline)
    check_writable(args.out, dataset=args.offline)
    grpo, reward = GRPOConfig(), "success"
    if args.grpo_config is not None:
        raw = read_toml(args.grpo_config)
        if not isinstance(raw.get("grpo"), dict):  # a misspelt table would otherwise be ignored
            raise BadInput(f"{args.grpo_config}: has no [grpo] table")
        grpo = config_from_table(GRPOConfig, raw["grpo"], f"{args.grpo_config} [grpo]")
        reward = raw.get("reward", reward)
    if args.epochs is not None:
        grpo = replace(grpo, epochs_per_batch=args.epochs)
    cfg = OfflineConfig(grpo=grpo, behaviour=args.behaviour, reward=reward, seed=args.seed)
    check_tables(args.offline, ("steps", "episodes", "tasks"))
    with warnings.catch_warnings():
        warnings.showwarning = _one_line  # restored on exit
        metrics = train_offline(args.offline, args.weights, args.init, args.out, cfg)
    if metrics["updates"] == 0:
        print(
            f"{args.out}: no update: every group's outcomes are equal, so no episode has an "
            "advantage; the checkpoint equals --init"
        )
        return 0
    shown = ("loss", "clip_fraction", "approx_kl", "entropy", "zero_variance_share")
    print(f"{args.out}: " + ", ".join(f"{k} {metrics[k]:.4g}" for k in shown))
    return 0


def _one_line(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    tqdm.write(f"papo train: warning: {message}", file=sys.stderr)


def _online(args: argparse.Namespace) -> int:
    from papo_data.train.online import load_config, train

    cfg = load_config(args.config)
    run_dir = args.run or Path("runs") / args.config.stem
    check_writable(run_dir, folder=True)

    with tqdm_bars() as open_bar, warnings.catch_warnings():
        warnings.showwarning = _one_line  # restored on exit

        def progress(start: int, total: int) -> Callable[[dict[str, Any]], Any]:
            bar = open_bar(total=total, initial=start, unit="iter", desc=f"train {cfg.mode}")

            def advance(row: dict[str, Any]) -> None:
                kl = row["approx_kl"]  # NaN: every group had equal outcomes, no update
                success, kl = f"{row['success_rate']:.2f}", "-" if math.isnan(kl) else f"{kl:.3g}"
                bar.set_postfix(success=success, kl=kl, refresh=False)
                bar.update(1)

            return advance

        metrics = train(run_dir, cfg, resume=args.resume, progress=progress)
    last = metrics.to_pylist()[-1] if metrics.num_rows else {}
    print(
        f"{run_dir}: {metrics.num_rows} iterations, last success rate "
        f"{last.get('success_rate', float('nan')):.3f}; metrics {run_dir / 'metrics.parquet'}, "
        f"checkpoint {run_dir / 'checkpoints' / 'last.pt'}",
        file=sys.stdout,
    )
    return 0
