"""`papo segment DATASET ...`: detect planning actions with DuckDB SQL."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from papo_data.data.dataset import check_root
from papo_data.data.validate import check_tables
from papo_data.planning.segment import DETECTORS, SegmentConfig, segment


def add_parser(verbs: Any) -> None:
    d = SegmentConfig()
    p = verbs.add_parser(
        "segment",
        help="detect planning actions (DuckDB SQL) into papo/planning_actions",
        description="Score every step with SQL window functions over steps joined to episodes: "
        "action variation (nearness to a gripper switch, then the change of the mean continuous "
        "action before/after t as a robust z-score per episode, squashed to (0, 1)), the outcome "
        "contrast of successful and failed siblings of a group at aligned frames, or their joint "
        "score s = v+ (1 + beta o). Keep local maxima (non-max suppression over the window) "
        "above the threshold, the top M per episode. A rerun replaces this detector's previous "
        "rows.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder")
    p.add_argument("--detector", choices=DETECTORS, default=d.detector, help="default joint")
    p.add_argument("--top-m", type=int, default=d.top_m, help=f"per episode (default {d.top_m})")
    p.add_argument(
        "--window", type=int, default=d.window, help=f"steps a decision spans (default {d.window})"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=d.threshold,
        help=f"minimum score; 0.5 keeps action changes above the episode median (default "
        f"{d.threshold})",
    )
    p.add_argument(
        "--beta", type=float, default=d.beta, help=f"outcome weight in joint (default {d.beta})"
    )
    p.add_argument(
        "--switch-weight",
        type=float,
        default=d.switch_weight,
        help="weight of the nearness (w + 1 - d)+ to the nearest gripper switch in variation; "
        f">= 1 ranks the steps nearest a switch first, 0 ignores switches (default "
        f"{d.switch_weight})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the random detector")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_root(args.dataset)
    cfg = SegmentConfig(
        detector=args.detector,
        top_m=args.top_m,
        window=args.window,
        threshold=args.threshold,
        beta=args.beta,
        switch_weight=args.switch_weight,
        seed=args.seed,
    )
    cfg.check()
    check_tables(args.dataset, ("steps", "episodes"), columns=("action",))  # all it reads
    s = segment(args.dataset, cfg)
    print(
        f"{args.dataset}: {s.planning_actions} planning actions ({s.detector}) in "
        f"{s.episodes - s.episodes_without} of {s.episodes} episodes"
    )
    if s.one_outcome_groups and s.detector in ("joint", "outcome"):
        print(
            f"{s.one_outcome_groups} groups ({s.one_outcome_episodes} episodes) hold one outcome: "
            "no outcome score for them"
            + (" (variation only)" if s.detector == "joint" else ", so no planning actions")
        )
    return 0
