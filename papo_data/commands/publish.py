"""`papo publish DATASET --out DIR ...`: the Hugging Face Hub dataset layout, optionally pushed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from papo_data import schema
from papo_data.data.commit import check_writable
from papo_data.interop import DEFAULT_LICENSE


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "publish",
        help="write a dataset in the Hugging Face Hub layout with a dataset card; --push uploads",
        description="Copy the dataset, file for file, into a new folder OUT laid out for the "
        "Hugging Face Hub: the LeRobot v3 files (meta/info.json, meta/tasks.parquet, "
        "meta/episodes/, data/) and the papo/ sidecar stay where they are, so LeRobot and "
        "papo_data still read it, and README.md is a dataset card. Its YAML header holds the "
        "license, task_categories [robotics], tags (LeRobot, papo, the simulator, the tasks) and "
        f"one 'datasets' configuration per non-empty table ({', '.join(schema.TABLES)}; steps "
        "is the default), so "
        "datasets.load_dataset(OUT, 'weights') works; an empty table gets no configuration and "
        "the card says which command fills it. The body documents every column of every table "
        "(from schemas/) and how the data was produced (simulator, tasks, policies, episodes, "
        "frames, success rate, detectors, interventions, causal methods, weight runs, stage "
        "settings, papo_data version). The dataset is validated first. OUT is built under a "
        "hidden name beside it and renamed into place; an existing non-empty OUT is refused "
        "unless --overwrite is given and it holds an earlier publish. --push then creates the "
        "Hub dataset repo --repo-id if needed, uploads OUT and tags the commit with the LeRobot "
        "codebase version (needs a token: `hf auth login` or HF_TOKEN).",
    )
    p.add_argument("dataset", type=Path, help="dataset folder to publish")
    p.add_argument("--out", type=Path, required=True, help="folder to create (Hub layout)")
    p.add_argument(
        "--repo-id",
        help="Hub dataset id, e.g. you/papo-reach: named in the card, required with --push",
    )
    p.add_argument(
        "--push", action="store_true", help="upload OUT to --repo-id on the Hugging Face Hub"
    )
    p.add_argument(
        "--license",
        default=DEFAULT_LICENSE,
        help=f"Hub license id for the card (default {DEFAULT_LICENSE})",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT if it holds an earlier papo publish (nothing else is ever replaced)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from papo_data.interop.hub import PublishConfig, publish  # huggingface_hub: only when used

    check_writable(args.out, folder=True)

    cfg = PublishConfig(
        out=args.out,
        repo_id=args.repo_id,
        license=args.license,
        push=args.push,
        overwrite=args.overwrite,
    )
    r = publish(args.dataset, cfg)
    rows = ", ".join(f"{t} {r.rows[t]}" for t in r.configs)
    print(f"{r.out}: {r.files} files; configurations (rows): {rows}")
    for table, why in r.left_out.items():
        print(f"no configuration for {table}: {why}")
    if r.url:
        print(f"pushed to {r.url}")
    return 0
