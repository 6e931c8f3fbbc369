"""`papo demo`: collect a small real dataset (Meta-World), validate it, query it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from papo_data import open_dataset
from papo_data.data.validate import validate
from papo_data.errors import BadInput
from papo_data.sim.collect import CollectConfig, collect

QUERIES = [
    "select count(*) as frames, count(distinct episode_uid) as episodes from steps",
    "select group_id, count(*) as rollouts, avg(success::int) as success_rate, "
    "avg(length) as mean_length from episodes group by group_id order by group_id",
    "select count(*) as checkpoints, avg(octet_length(state))::int as mean_bytes from snapshots",
]


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "demo",
        help="the pipeline on a small real dataset: collect, segment, branch, estimate, weights",
        description="The pipeline on a small scale: 'papo collect' of a noisy scripted "
        "expert on Meta-World pick-place-v3 (groups of rollouts from shared initial states, "
        "with simulator checkpoints), 'papo validate', a few 'papo sql' queries, then "
        "'papo segment', 'papo branch', 'papo estimate' and 'papo export-weights'.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("papo-demo"), help="dataset folder (default papo-demo)"
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
    p.add_argument("--overwrite", action="store_true", help="replace --out if it is a papo dataset")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and args.overwrite:
        if not (out / "meta" / "info.json").exists():
            raise BadInput(f"{out}: --overwrite only replaces a papo dataset, and this is not one")
        shutil.rmtree(out)
    elif out.exists():
        raise BadInput(f"{out}: exists and is not an empty folder (use --overwrite)")
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    cfg = CollectConfig(tasks=tasks, groups=args.groups, group_size=args.group_size, seed=args.seed)
    print(
        f"papo collect {out} --tasks {args.tasks} --groups {args.groups} "
        f"--group-size {args.group_size} --seed {args.seed}"
    )
    counts = collect(out, cfg, workers=args.workers)
    print(f"wrote {counts['written']} episodes to {out}")
    problems = validate(out)
    for p in problems:
        print(p)
    if problems:
        return 1  # our own pipeline produced an invalid dataset: a bug
    print(f"\npapo validate {out}: valid")
    with open_dataset(out) as ds, pl.Config(tbl_rows=20, tbl_cols=-1):
        for query in QUERIES:
            print(f'\npapo sql {out} "{query}"')
            print(ds.sql(query))
    return _pipeline(out, args)


def _pipeline(out: Path, args: argparse.Namespace) -> int:
    """The stages after collection, each through its own command."""
    from papo_data.cli import main

    steps = [
        ["segment", str(out)],
        [
            "branch",
            str(out),
            "--k",
            str(args.branch_k),
            "--limit",
            str(args.branch_limit),
            "--workers",
            str(args.workers),
        ],
        ["estimate", str(out)],
        ["export-weights", str(out)],
        ["validate", str(out)],
    ]
    for argv in steps:
        print("\npapo " + " ".join(argv))
        code = main(argv)
        if code:
            return code
    with open_dataset(out) as ds, pl.Config(tbl_rows=20, tbl_cols=-1):
        query = (
            "select episode_uid, frame_index, intervention, n_pairs, pn, ps, importance "
            "from causal order by importance desc nulls last limit 8"
        )
        print(f'\npapo sql {out} "{query}"')
        print(ds.sql(query))
    print(f"\nEverything is in {out}/ (papo/planning_actions, branches, causal, weights).")
    return 0
