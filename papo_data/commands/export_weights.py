"""`papo export-weights DATASET ...`: per-step advantage weights into papo/weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from papo_data import open_dataset
from papo_data.data.commit import check_writable
from papo_data.data.dataset import check_root
from papo_data.data.sqlfiles import sql_text
from papo_data.data.validate import check_tables
from papo_data.errors import BadInput
from papo_data.weights import export
from papo_data.weights.export import WeightsConfig, export_weights


def add_parser(verbs: Any) -> None:
    d = WeightsConfig()
    p = verbs.add_parser(
        "export-weights",
        help="export per-step advantage weights into papo/weights",
        description="Exactly one row per step: weight 1 + lambda I on the windows of planning "
        "actions that have an estimate (I = the causal rows' importance, averaged over the "
        "action's interventions; for an unbranched action, the importance 'estimate --amortize' "
        "predicted, if it ran), clipped to [min, max]; exactly 1 elsewhere. '--normalize "
        "episode' then rescales each episode to mean 1, so weights may leave [min, max] and "
        "steps outside windows fall below 1. Joins onto steps by 'index'. A rerun replaces the "
        "rows of the same --run-id; other runs stay.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder (estimated)")
    p.add_argument("--lambda", dest="lam", type=float, default=d.lam, help="default 1.0")
    p.add_argument("--clip", default=f"{d.w_min},{d.w_max}", help="MIN,MAX (default 0.5,3.0)")
    p.add_argument(
        "--normalize",
        choices=("none", "episode"),
        default=d.normalize,
        help=f"episode: rescale to mean 1 per episode (default {d.normalize})",
    )
    p.add_argument(
        "--window-from",
        choices=("planning", "fixed"),
        default=d.window_from,
        help="planning: each action's own window; fixed: --fixed-window steps from its frame "
        f"(default {d.window_from})",
    )
    p.add_argument("--fixed-window", type=int, default=d.fixed_window, help="default 5")
    p.add_argument("--method", default=d.method, help="causal rows to use (default paired)")
    p.add_argument("--run-id", default=d.run_id, help="default papo")
    p.add_argument("--out", type=Path, help="also write this run's weights to FILE.parquet")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_root(args.dataset)
    if args.out is not None:
        check_writable(args.out, dataset=args.dataset)
    try:
        w_min, w_max = (float(x) for x in args.clip.split(","))
    except ValueError:
        raise BadInput(f"--clip must be MIN,MAX, got {args.clip!r}") from None
    cfg = WeightsConfig(
        lam=args.lam,
        w_min=w_min,
        w_max=w_max,
        normalize=args.normalize,
        window_from=args.window_from,
        fixed_window=args.fixed_window,
        method=args.method,
        run_id=args.run_id,
    )
    cfg.check()
    # the actions, not the 39-d states: a NaN action is a broken rollout, the states cost seconds
    tables = ("steps", "episodes", "planning_actions", "causal")
    check_tables(args.dataset, tables, columns=("action",))
    table = export_weights(args.dataset, cfg, args.out)
    with open_dataset(args.dataset) as ds:
        stale = ds.sql(sql_text(export.__file__, "stale.sql"), {"method": cfg.method}).item()
    if stale:
        print(
            f"warning: {stale} estimated actions are not planning actions of the current "
            f"segmentation (segment ran after estimate): their windows are --fixed-window "
            f"{cfg.fixed_window} steps; rerun estimate to drop them (and branch, for the new "
            "planning actions)",
            file=sys.stderr,
        )
    planning = pc.sum(table.column("is_planning")).as_py() or 0
    print(
        f"{args.dataset}: {table.num_rows} weights ({planning} steps in windows of estimated "
        f"planning actions), run {cfg.run_id}" + (f"; also {args.out}" if args.out else "")
    )
    return 0
