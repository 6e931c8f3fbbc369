"""`papo report DATASET [--run RUN_DIR] --out report.html`: one self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from papo_data.data.commit import check_writable
from papo_data.data.validate import check_tables
from papo_data.planning.segment import DETECTORS
from papo_data.schema import TABLES


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "report",
        help="write a self-contained HTML report of a dataset (and a training run)",
        description="One HTML file that works offline (figures embedded as PNG data, style "
        "inline, nothing fetched): the dataset summary (episodes, frames, tasks, success rate "
        "per task with Wilson 95 percent intervals, groups and how many hold both outcomes, "
        "sidecar tables), action traces of the episodes with the most important planning "
        "actions, a group contrast of successful and failed siblings, PN against PS with "
        "their intervals coloured by intervention, importance by task and the exported "
        "weights, the branch budget (simulated branch steps per arm as a multiple of the "
        "logged steps) with the replay exactness count, and with --run the learning curves "
        "of a `papo train --config` run (success rate with Wilson intervals, mean weight, "
        "zero-variance group share, approximate KL, clip fraction, simulator steps). A "
        "section whose table is still empty says which command fills it, so the report works "
        "on a just-collected dataset. The same inputs give the same bytes; the file is "
        "written atomically. Bad input (not a dataset, a run folder without a valid "
        "metrics.parquet) exits 2 with one line and writes nothing.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder")
    p.add_argument(
        "--run",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="run folder written by `papo train --config` (reads RUN/metrics.parquet)",
    )
    p.add_argument(
        "--out", type=Path, required=True, metavar="FILE.html", help="HTML file to write"
    )
    p.add_argument(
        "--detector",
        choices=DETECTORS,
        default=None,
        help="detector whose planning actions to show (default joint if it has run, else the "
        "one with the most planning actions)",
    )
    p.add_argument(
        "--traces", type=int, default=3, help="episodes to draw action traces of (default 3)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from papo_data.report import write_report  # matplotlib and friends: only when reporting

    check_writable(args.out, dataset=args.dataset)
    check_tables(args.dataset, TABLES, columns=("action",))  # the only vector it draws

    report = write_report(
        args.dataset, args.out, args.run, detector=args.detector, traces=args.traces
    )
    size = args.out.stat().st_size
    empty = f"; empty: {', '.join(report.empty)}" if report.empty else ""
    print(f"{args.out}: report of {args.dataset} ({len(report.figures)} figures, "
          f"{size / 1024:.0f} KiB){empty}")  # fmt: skip
    return 0
