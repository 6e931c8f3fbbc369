"""`papo demo`: the whole pipeline on a small real dataset, each stage through its own command.

The demo folder holds everything it made, so a user can open each piece afterwards:

    OUT/dataset/        the rollouts (a LeRobot v3 dataset) with every papo sidecar table
    OUT/weights.parquet the exported per-step weights, for a trainer of your own
    OUT/bc.pt           the starting policy, cloned from the dataset's successful episodes
    OUT/train.toml      the config of the short PAPO training run
    OUT/run/            the training run (metrics.parquet, one dataset per iteration, policies)
    OUT/report.html     the report of all of it
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from papo_data import open_dataset
from papo_data.branches.run import BranchConfig
from papo_data.data import commit
from papo_data.data.validate import validate
from papo_data.errors import BadInput
from papo_data.sim.collect import CollectConfig, collect, make_env

QUERIES = [
    "select count(*) as frames, count(distinct episode_uid) as episodes from steps",
    "select group_id, count(*) as rollouts, avg(success::int) as success_rate, "
    "avg(length) as mean_length from episodes group by group_id order by group_id",
    "select count(*) as checkpoints, avg(octet_length(state))::int as mean_bytes from snapshots",
]
TOP_IMPORTANCE = (
    "select episode_uid, frame_index, intervention, n_pairs, pn, ps, importance "
    "from causal order by importance desc nulls last limit 8"
)
# A run long enough to show every phase, short enough for a demo (about a minute here).
TRAIN_TOML = """\
# papo train --config {config} --run {run}
init = "bc.pt"
mode = "papo"
iterations = {iterations}
groups_per_task = 2
max_steps = {max_steps}
workers = 1  # iterations this small finish before a process pool starts
seed = {seed}

[grpo]
group_size = 4
mini_batch_episodes = 8

[branch]
k = 4
limit = 4
interventions = ["noise"]
"""


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "demo",
        help="the whole pipeline on a small real dataset, ending with a report",
        description="The whole pipeline, small: 'papo collect' of a noisy scripted expert on "
        "Meta-World (groups of rollouts from shared initial states, with simulator "
        "checkpoints), 'papo validate' and a few 'papo sql' queries, 'papo segment', 'papo "
        "branch', 'papo estimate', 'papo export-weights', behaviour cloning of a token policy "
        "from the successful rollouts ('papo train --bc'), a short PAPO training run ('papo "
        "train --config') and 'papo report'. Each stage is printed as the command that "
        "reproduces it. Everything lands under --out: dataset/, weights.parquet, bc.pt, "
        "train.toml, run/ and report.html.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("papo-demo"), help="demo folder (default papo-demo)"
    )
    p.add_argument("--tasks", default="pick-place-v3", help="tasks (default pick-place-v3)")
    p.add_argument("--groups", type=int, default=3, help="initial states per task (default 3)")
    p.add_argument("--group-size", type=int, default=6, help="rollouts per group (default 6)")
    p.add_argument("--workers", type=int, default=2, help="simulation processes (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--branch-k", type=int, default=8, help="seeds per planning action (default 8)")
    p.add_argument(
        "--branch-limit", type=int, default=12, help="planning actions to branch (default 12)"
    )
    p.add_argument(
        "--train-iterations",
        type=int,
        default=2,
        help="iterations of the PAPO training run (default 2; 0 skips training)",
    )
    p.add_argument(
        "--train-max-steps",
        type=int,
        default=150,
        help="episode horizon during training (default 150)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace --out if an earlier demo made it"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    cfg = _check_options(args)  # before anything is deleted or run
    _prepare(out, args.overwrite)
    data = out / "dataset"
    print(
        f"papo collect {data} --tasks {args.tasks} --groups {args.groups} "
        f"--group-size {args.group_size} --seed {args.seed}"
    )
    counts = collect(data, cfg, workers=args.workers)
    print(f"wrote {counts['written']} episodes to {data}")
    problems = validate(data)
    for problem in problems:
        print(problem)
    if problems:
        return 1  # our own pipeline produced an invalid dataset: a bug
    print(f"\npapo validate {data}: valid")
    _show(data, QUERIES)
    code = _stages(_analysis(data, out, args))
    if code:
        return code
    _show(data, [TOP_IMPORTANCE])
    code = _stages(_training(data, out, args))
    if code:
        return code
    _where(out, trained=args.train_iterations > 0)
    return 0


def _check_options(args: argparse.Namespace) -> CollectConfig:
    """Every option the stages will use, checked up front: a typo fails in a second, not
    after collection, and leaves nothing behind."""
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    cfg = CollectConfig(tasks=tasks, groups=args.groups, group_size=args.group_size, seed=args.seed)
    env = make_env("metaworld")
    cfg.check(env)
    if args.workers < 1:
        raise BadInput(f"--workers must be at least 1, got {args.workers}")
    try:
        BranchConfig(k=args.branch_k, limit=args.branch_limit).check()
    except BadInput as e:  # in this command's option names
        message = str(e).replace("--k ", "--branch-k ").replace("--limit ", "--branch-limit ")
        raise BadInput(message) from None
    if args.train_iterations < 0:
        raise BadInput("--train-iterations must be 0 or more")
    if not 1 <= args.train_max_steps <= env.max_steps:
        raise BadInput(f"--train-max-steps must be in [1, {env.max_steps}]")
    return cfg


MARK = ".papo-demo"  # written first into --out: a demo killed midway is still a demo's folder


def _prepare(out: Path, overwrite: bool) -> None:
    """Refuse to clobber anything but an earlier demo's folder, then start a new one."""
    commit.remove_stale_siblings(out)  # an earlier demo folder set aside, killed mid-delete
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        if not overwrite:
            raise BadInput(f"{out}: exists and is not an empty folder (use --overwrite)")
        if not ((out / MARK).exists() or (out / "dataset" / "meta" / "info.json").exists()):
            raise BadInput(f"{out}: --overwrite only replaces an earlier demo's folder")
        aside = commit.temp_name(out)
        os.rename(out, aside)  # one step: a kill leaves no half-deleted demo behind
        shutil.rmtree(aside)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARK).write_text("made by papo demo; papo demo --overwrite may replace this folder\n")


def _analysis(data: Path, out: Path, args: argparse.Namespace) -> list[list[str]]:
    k, limit, workers = str(args.branch_k), str(args.branch_limit), str(args.workers)
    return [
        ["segment", str(data)],
        ["branch", str(data), "--k", k, "--limit", limit, "--workers", workers],
        ["estimate", str(data)],
        ["export-weights", str(data), "--out", str(out / "weights.parquet")],
        ["validate", str(data)],
    ]


def _training(data: Path, out: Path, args: argparse.Namespace) -> list[list[str]]:
    report = ["report", str(data), "--out", str(out / "report.html")]
    if args.train_iterations == 0:
        return [report]
    config, run = out / "train.toml", out / "run"
    config.write_text(
        TRAIN_TOML.format(
            config=config,
            run=run,
            iterations=args.train_iterations,
            max_steps=args.train_max_steps,
            seed=args.seed,
        )
    )
    return [
        # 8 demos: pick-place clones to a policy that succeeds some of the time (2 give none).
        ["train", "--bc", str(data), "--out", str(out / "bc.pt"), "--demos-per-task", "8"],
        ["train", "--config", str(config), "--run", str(run)],
        [*report, "--run", str(run)],
    ]


def _stages(commands: list[list[str]]) -> int:
    from papo_data.cli import main

    for argv in commands:
        print("\npapo " + " ".join(argv), flush=True)
        code = main(argv)
        if code:
            return code
    return 0


def _show(data: Path, queries: list[str]) -> None:
    with open_dataset(data) as ds, pl.Config(tbl_rows=20, tbl_cols=-1):
        for query in queries:
            print(f'\npapo sql {data} "{query}"')
            print(ds.sql(query))


def _where(out: Path, trained: bool) -> None:
    places = [
        ("dataset/", "rollouts + papo/ sidecar (planning_actions, branches, causal, weights)"),
        ("weights.parquet", "per-step weights for your own trainer (join on index)"),
    ]
    if trained:
        places += [
            ("bc.pt", "starting policy, cloned from the successful rollouts"),
            ("train.toml", "training config"),
            ("run/", "training run: metrics.parquet, iterations/, policies/, checkpoints/"),
        ]
    places.append(("report.html", "the report: open it in a browser"))
    print(f"\nEverything is in {out}/:")
    for name, what in places:
        print(f"  {out / name}  {what}")
