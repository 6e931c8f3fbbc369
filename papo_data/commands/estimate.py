"""`papo estimate DATASET ...`: PN / PS / PNS with intervals (or bounds) into papo/causal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from papo_data.causal.estimate import IMPORTANCE, EstimateConfig, estimate
from papo_data.data.dataset import check_root
from papo_data.data.validate import check_tables


def add_parser(verbs: Any) -> None:
    d = EstimateConfig()
    p = verbs.add_parser(
        "estimate",
        help="estimate PN/PS/PNS with intervals into papo/causal",
        description="One causal row per branched planning action and intervention. 'paired': "
        "the factual and alternative arms share seeds, so the pair counts give PN = P(Y_a'=0 | "
        "Y_a=1), PS = P(Y_a=1 | Y_a'=0), PNS and harm with Wilson or Clopper-Pearson intervals "
        "(undefined ones are null). 'bounds': Tian-Pearl bounds from the arms' success rates "
        "and the logged group (siblings matched on their actions in the window), assuming "
        "the siblings still running at the frame stand for the branched state: a diagnostic; "
        "rows the data contradict get none and are counted. Planning "
        "actions whose replay arm was not exact are left out. A rerun replaces the rows of "
        "the same method.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder (branched)")
    p.add_argument("--importance", choices=IMPORTANCE, default=d.importance, help="default mean")
    p.add_argument(
        "--method", choices=("paired", "bounds"), default=d.method, help="default paired"
    )
    p.add_argument(
        "--interval", choices=("wilson", "exact"), default=d.interval, help="default wilson"
    )
    p.add_argument("--confidence", type=float, default=d.confidence, help="default 0.95")
    p.add_argument(
        "--amortize",
        action="store_true",
        help="predict the importance of planning actions outside the audit set with a "
        "scikit-learn model trained on the audit set (reports its cross-validated error)",
    )
    p.add_argument(
        "--audit-fraction",
        type=float,
        default=d.audit_fraction,
        help="hashed share of planning actions used as truth (default 1.0; match papo branch)",
    )
    p.add_argument(
        "--no-dowhy",
        dest="dowhy",
        action="store_false",
        help="skip the DoWhy report (papo/reports/dowhy.json)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_root(args.dataset)
    cfg = EstimateConfig(
        importance=args.importance,
        method=args.method,
        interval=args.interval,
        confidence=args.confidence,
        amortize=args.amortize,
        audit_fraction=args.audit_fraction,
        dowhy=args.dowhy,
    )
    cfg.check()
    check_tables(args.dataset, ("steps", "episodes", "planning_actions", "branches"))
    s = estimate(args.dataset, cfg)
    for where in s.excluded:
        print(f"left out (replay not exact): {where}", file=sys.stderr)
    if s.orphaned:
        print(
            f"left out {s.orphaned} branched actions that are no longer planning actions "
            "(segment ran again after branch)",
            file=sys.stderr,
        )
    for reason, n in sorted(s.skipped.items()):
        if n:
            print(f"{n} rows without bounds: {reason}")
    if s.amortized:
        a = s.amortized
        print(
            f"amortized: trained on {a.n_train} branched planning actions, predicted "
            f"{len(a.rows)}; cross-validated MAE {a.cv_mae:.3f} (predicting the mean: "
            f"{a.baseline_mae:.3f})"
        )
        if a.cv_mae >= a.baseline_mae:
            print(
                "warning: the amortized model predicts no better than the audit set's mean; "
                "export-weights will still use its predictions for unbranched planning actions "
                "(branch more of them, or rerun estimate without --amortize)",
                file=sys.stderr,
            )
    for entry in s.dowhy:
        if "observational_effect" in entry:
            branch = entry.get("branch_effect")
            print(
                f"dowhy {entry['task']}: observational effect {entry['observational_effect']:+.3f}"
                + (
                    f", branches {branch:+.3f}, gap {entry['gap']:+.3f}"
                    if branch is not None
                    else ""
                )
            )
        else:
            print(f"dowhy {entry['task']}: {entry['error']}")
    print(
        f"{args.dataset}: {s.rows} causal rows ({cfg.method}); undefined: "
        + ", ".join(f"{k} {v}" for k, v in s.undefined.items())
    )
    return 0
