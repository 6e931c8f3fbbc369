"""`papo branch DATASET ...`: re-simulate counterfactual branches of planning actions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from papo_data.branches.run import BranchConfig, branch
from papo_data.commands.progress import progress_bar
from papo_data.data.dataset import check_root
from papo_data.data.validate import check_tables


def add_parser(verbs: Any) -> None:
    d = BranchConfig()
    p = verbs.add_parser(
        "branch",
        help="re-simulate counterfactual branches of planning actions into papo/branches",
        description="For each planning action (e, t): restore the simulator state at t (nearest "
        "checkpoint, then the logged actions, checked bit for bit) and run K seeds in two arms "
        "with common random numbers: 'factual' (the logged window, then the episode's policy) "
        "and 'alternative' (an intervention for the window, then the same policy and seed); "
        "plus one 'replay' arm that replays the log to the end and records whether it matched "
        "exactly. A rerun skips branches already written, so a killed run resumes with no row "
        "lost or repeated. Prints and stores (info.json papo.branch_budget) the branch budget: "
        "simulated branch steps as a multiple of the logged rollout steps.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder (segmented)")
    p.add_argument("--detector", default=d.detector, help="whose planning actions (default joint)")
    p.add_argument("--k", type=int, default=d.k, help=f"seeds per planning action (default {d.k})")
    p.add_argument(
        "--interventions",
        default=",".join(d.interventions),
        help=f"comma-separated, from hold,noise,sibling (default {','.join(d.interventions)})",
    )
    p.add_argument(
        "--noise-sigma",
        type=float,
        default=d.noise_sigma,
        help=f"std of the noise intervention (default {d.noise_sigma})",
    )
    p.add_argument(
        "--adaptive",
        action="store_true",
        help="add seeds until the PN/PS interval half-widths are below --tol",
    )
    p.add_argument("--tol", type=float, default=d.tol, help=f"adaptive tolerance (default {d.tol})")
    p.add_argument("--max-k", type=int, default=d.max_k, help=f"adaptive cap (default {d.max_k})")
    p.add_argument(
        "--adaptive-step",
        type=int,
        default=d.adaptive_step,
        help=f"seeds between adaptive checks (default {d.adaptive_step})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="root seed of branch seeds")
    p.add_argument(
        "--limit",
        type=int,
        help="branch at most N planning actions, in episode and frame order (with "
        "--audit-fraction: the first N of the audit set)",
    )
    p.add_argument(
        "--audit-fraction",
        type=float,
        default=d.audit_fraction,
        help="branch only this hashed share of planning actions; 'papo estimate --amortize' "
        "predicts the rest (default 1.0)",
    )
    p.add_argument(
        "--commit-every",
        type=int,
        default=16,
        help="planning actions per commit; a kill loses at most this much work (default 16)",
    )
    p.add_argument(
        "--mixed-groups-only",
        action="store_true",
        help="only groups holding both outcomes (GRPO's advantage is 0 in the others)",
    )
    p.add_argument("--workers", type=int, default=1, help="simulation processes (default 1)")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="default local")
    p.add_argument("--ray-address", help="Ray cluster address (default: start a local instance)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_root(args.dataset)
    cfg = BranchConfig(
        detector=args.detector,
        k=args.k,
        interventions=tuple(i.strip() for i in args.interventions.split(",") if i.strip()),
        noise_sigma=args.noise_sigma,
        adaptive=args.adaptive,
        tol=args.tol,
        max_k=args.max_k,
        adaptive_step=args.adaptive_step,
        seed=args.seed,
        limit=args.limit,
        audit_fraction=args.audit_fraction,
        mixed_groups_only=args.mixed_groups_only,
    )
    cfg.check()
    check_tables(
        args.dataset,
        ("steps", "episodes", "tasks", "snapshots", "planning_actions", "branches"),
    )
    with progress_bar("branch", "action") as progress:
        s = branch(
            args.dataset,
            cfg,
            workers=args.workers,
            backend=args.backend,
            ray_address=args.ray_address,
            commit_every=args.commit_every,
            progress=progress,
        )
    for where in s.not_exact:
        print(f"replay not exact: {where} (excluded from estimates)", file=sys.stderr)
    for reason, n in sorted(s.skipped.items()):
        print(f"skipped {n} interventions: {reason}")
    print(
        f"{args.dataset}: {s.planning_actions} planning actions, {s.branches_written} new "
        f"branches ({s.simulated_steps} steps simulated now); branch budget "
        f"{s.branch_steps} steps = {s.budget:.2f}x the {s.logged_steps} logged steps"
    )
    return 0
