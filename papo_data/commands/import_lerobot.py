"""`papo import-lerobot SRC DATASET`: a LeRobot v3.0 dataset from another tool, as papo data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from papo_data.commands.progress import progress_bar
from papo_data.data.commit import check_writable
from papo_data.interop.lerobot_import import import_lerobot


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "import-lerobot",
        help="import a LeRobot v3.0 dataset written by another tool as a papo dataset",
        description="Read the LeRobot v3.0 dataset in SRC (meta/info.json, meta/tasks.parquet, "
        "meta/episodes/, data/) and write it as the papo dataset DATASET, keeping every frame. "
        "Mapped: observation.state and action (required, fixed-length float vectors, finite); "
        "next.reward from next.reward or reward; next.success from next.success, is_success "
        "or success (per frame; an episode succeeds if any frame did); next.done from "
        "next.done or done; policy.log_prob; tasks; fps and robot_type. Derived: episode_uid "
        "'<SRC folder name>/<episode_index>'; group_id shared by episodes of one task whose "
        "first observation.state is bit-for-bit equal (a group of one otherwise); env_id "
        "'lerobot/<SRC folder name>'; policy_id 'unknown'; seeds -1. A missing reward is 0, "
        "a missing done is true on each episode's last frame, a missing success is false "
        "(success unknown: every episode counts as a failure). Everything not carried over "
        "(videos, images, other columns, stats/ and videos/ columns of the episodes metadata, "
        "meta/stats.json) is printed, one 'not imported:' line each, and the whole mapping is "
        "stored in the papo.imported block of DATASET/meta/info.json. The dataset is built "
        "in a hidden folder next to DATASET, validated, then renamed into place: bad input "
        "(exit 2, one line naming the file, row or field) leaves nothing behind.",
    )
    p.add_argument("src", type=Path, metavar="SRC", help="LeRobot v3.0 dataset folder")
    p.add_argument("dataset", type=Path, metavar="DATASET", help="papo dataset folder to create")
    p.add_argument(
        "--overwrite", action="store_true", help="replace DATASET if it is a papo dataset"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_writable(args.dataset, folder=True)
    # The bar only on a terminal: piped or logged, stderr then holds just the one-line error.
    with progress_bar("import", "episode") as progress:
        report = import_lerobot(
            args.src,
            args.dataset,
            overwrite=args.overwrite,
            progress=progress if sys.stderr.isatty() else None,
        )
    if report.problems:
        for problem in report.problems:
            print(problem)
        print(f"{args.dataset}: the imported dataset is invalid (a bug: please report it)")
        return 1
    for line in report.lines():
        print(line)
    return 0
