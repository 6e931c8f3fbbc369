"""Detector fidelity against the behaviour policy's noise: does joint / random grow when the
expert's outcomes depend less on per-step jitter and more on its decisions?

This sweep reruns `detector_fidelity.py`'s measurement unchanged (same tasks, detectors,
top-10% picks, flip statistics and paired bootstrap; see that script's docstring) on data
collected with xyz noise `--sigmas` (the gripper-decision delays stay at their default), for
each `--perturbations` and `--seeds`, and pools the seeds. Rates are success-flip rates
(mixed-group successes that fail when perturbed); the last column counts flips both ways.
Each setting is cached under `--work` like detector_fidelity's runs, so a rerun only prints.

Every setting also runs detector_fidelity's `--random-runs` control (joint's runs of consecutive
steps at random places), so joint / random-runs separates where joint perturbs from how its
picks are grouped. Prints a markdown table (also --out-md) and draws --figure: joint / random,
variation / random and joint / random-runs with 95% intervals against sigma, one panel per
perturbation. Run it with:

    .venv/bin/python analyses/detector_fidelity_noise.py --out-md /tmp/df-noise.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import detector_fidelity as fidelity
import polars as pl

from papo_data.causal import cluster_bootstrap_ratio

DETECTORS = ("joint", "variation", "outcome", "random", "random-runs")
RATIOS = (
    ("joint", "random"),
    ("variation", "random"),
    ("variation", "joint"),
    ("joint", "random-runs"),
)
EPISODES_PER_SEED = 1_000_000


def measure_one(args: argparse.Namespace, seed: int, perturbation: str, sigma: float) -> Any:
    """One detector_fidelity run: its mixed-group flips (one row per episode and detector),
    episode_index and group_id made unique across seeds so that seeds can be pooled."""
    argv = [
        "--seed", str(seed), "--sigma", str(sigma), "--perturbation", perturbation,
        "--groups", str(args.groups), "--workers", str(args.workers), "--work", str(args.work),
        "--random-runs", "--unit", args.unit,
    ]  # fmt: skip
    rep, _ = fidelity.measure(fidelity.parse_args(argv))
    mixed = rep.flips.filter(pl.col("mixed"))
    return mixed.with_columns(
        pl.col("episode_index") + EPISODES_PER_SEED * seed, pl.lit(f"{seed}/") + pl.col("group_id")
    )


def summarise(flips: Any, seed: str, perturbation: str, sigma: float) -> dict:
    """Success-flip rates (s→f: mixed-group successes that fail when perturbed) and their
    paired-bootstrap ratios (bootstrap seed 0) of one setting as a row, plus joint / random
    counted both ways (all mixed-group episodes, either direction)."""
    row: dict = {"seed": seed, "perturbation": perturbation, "sigma": sigma}
    successes = fidelity.in_scope(flips, "s→f")
    by = {d: successes.filter(pl.col("detector") == d) for d in DETECTORS}
    row["episodes"] = by["joint"].height
    for d in DETECTORS:
        row[d] = fidelity.rate(by[d])
    for a, b in RATIOS:
        row[f"{a}/{b}"] = cluster_bootstrap_ratio(*fidelity.paired(successes, a, b), 0)
    row["both ways"] = cluster_bootstrap_ratio(*fidelity.paired(flips, "joint", "random"), 0)
    return row


def markdown(rows: list[dict]) -> str:
    lines = [
        "| perturbation | σ | seed | mixed-group successes | joint | variation | outcome "
        "| random | random-runs | joint ÷ random | variation ÷ random | variation ÷ joint "
        "| joint ÷ random-runs | joint ÷ random, both ways |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rates = " | ".join(f"{100 * r[d].rate:.1f}%" for d in DETECTORS)
        ratios = " | ".join(
            fidelity.fmt_ratio(*r[k])
            for k in (
                "joint/random",
                "variation/random",
                "variation/joint",
                "joint/random-runs",
                "both ways",
            )
        )
        lines.append(
            f"| {r['perturbation']} | {r['sigma']:g} | {r['seed']} | {r['episodes']} | {rates} "
            f"| {ratios} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, goal: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    perts = sorted({r["perturbation"] for r in rows})
    seeds = list(dict.fromkeys(r["seed"] for r in rows))  # in run order, "pooled" last
    # At least 10 in wide: the title and the legend's columns must fit one panel too.
    width = max(10.0, 5.5 * len(perts))
    fig, axes = plt.subplots(1, len(perts), figsize=(width, 5.6), squeeze=False)
    for ax, pert in zip(axes[0], perts, strict=True):
        series = (("joint/random", "C0"), ("variation/random", "C1"), ("joint/random-runs", "C2"))
        for i, (key, colour) in enumerate(series):
            for j, seed in enumerate(seeds):
                sel = sorted(
                    (r for r in rows if r["perturbation"] == pert and r["seed"] == seed),
                    key=lambda r: r["sigma"],
                )
                slot = i * len(seeds) + j - (3 * len(seeds) - 1) / 2
                x = [r["sigma"] * (1 + 0.025 * slot) for r in sel]
                y = [r[key][0] for r in sel]
                lo = [r[key][0] - r[key][1][0] for r in sel]
                # An infinite upper end (random flipped none in a resample) is drawn at 100.
                hi = [min(r[key][1][1], 100) - r[key][0] for r in sel]
                ax.errorbar(
                    x,
                    y,
                    yerr=[lo, hi],
                    color=colour,
                    marker="os^"[j % 3],
                    capsize=3,
                    linestyle=("-", ":", "--")[j % 3],
                    alpha=1.0 if seed == "pooled" else 0.45,
                    # One legend entry per ratio for the seeds (in run order, left to right)
                    # and one for the pooled estimate: ten seeds would not fit.
                    label=f"{key.replace('/', ' ÷ ')}, pooled"
                    if seed == "pooled"
                    else f"{key.replace('/', ' ÷ ')}, each seed (faint)"
                    if j == 0
                    else "_nolegend_",
                )
        ax.axhline(goal, color="grey", linestyle="--", label=f"goal {goal:g}×")
        ax.axhline(1, color="black", linewidth=0.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_yticks([1, 2, 3, 5, 10, 20, 50], ["1", "2", "3", "5", "10", "20", "50"])
        sigmas = sorted({r["sigma"] for r in rows})
        ax.set_xticks(sigmas, [f"{x:g}" for x in sigmas])
        ax.minorticks_off()
        ax.set_xlabel("expert xyz noise σ (log scale)")
        ax.set_ylabel("ratio of success-flip rates (log scale)")
        ax.set_title(f"perturbation: {pert}")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(
        "Detector fidelity vs the behaviour policy's noise (95% paired bootstrap over groups)"
    )
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    p.add_argument("--perturbations", nargs="+", default=["hold"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--groups", type=int, default=8, help="initial states per task")
    p.add_argument(
        "--unit",
        choices=("steps", "windows"),
        default="steps",
        help="single steps or planning-action windows (detector_fidelity's --unit)",
    )
    p.add_argument("--workers", type=int, default=2, help="simulation processes")
    p.add_argument("--work", type=Path, default=Path("/tmp/papo-detector-fidelity"))
    p.add_argument("--out-md", type=Path, help="also write the markdown here")
    p.add_argument(
        "--figure",
        type=Path,
        default=Path(__file__).parent / "figures" / "detector_fidelity_noise.png",
    )
    args = p.parse_args(argv)
    bad = set(args.perturbations) - set(fidelity.PERTURBATIONS)
    if bad:
        p.error(f"unknown perturbations {sorted(bad)}; known: {sorted(fidelity.PERTURBATIONS)}")
    if any(not s > 0 for s in args.sigmas):
        p.error("--sigmas must be > 0 (the figure's axis is logarithmic)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows, pooled = [], []
    for pert in args.perturbations:
        for sigma in args.sigmas:
            flips = []
            for seed in args.seeds:
                print(f"seed {seed}, {pert}, sigma {sigma:g} ...", file=sys.stderr)
                flips.append(measure_one(args, seed, pert, sigma))
                rows.append(summarise(flips[-1], str(seed), pert, sigma))
            if len(flips) > 1:
                pooled.append(summarise(pl.concat(flips), "pooled", pert, sigma))
    text = markdown(rows + pooled)
    print(text)
    if args.out_md:
        args.out_md.write_text(text)
    plot(rows + pooled, args.figure, fidelity.RATIO_GOAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
