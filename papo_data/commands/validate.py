"""`papo validate DATASET`: report every problem; exit 0 when clean, 2 otherwise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from papo_data.data.dataset import check_root
from papo_data.data.validate import validate


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "validate",
        help="check a dataset against the schemas and report every problem",
        description="Check a papo dataset: schema conformance of every table, unique keys, "
        "contiguous index and frame numbering, episode rows against their frames, info.json "
        "totals and features, NaN/inf in vectors, sidecar rows pointing to existing episodes "
        "and frames. Prints one line per problem on stderr and exits 2 (file: row N: field F: "
        "what is wrong; rows count from 0 within the file), or 'DATASET: valid' on stdout. "
        "Reads only: nothing is modified.",
    )
    p.add_argument("dataset", help="dataset folder (contains meta/info.json)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_root(Path(args.dataset))
    problems = validate(args.dataset)
    for problem in problems:
        print(problem, file=sys.stderr)
    if len(problems) > 1:
        print(f"{args.dataset}: {len(problems)} problems", file=sys.stderr)
    if problems:
        return 2
    print(f"{args.dataset}: valid")
    return 0
