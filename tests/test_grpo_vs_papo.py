"""analyses/grpo_vs_papo.py --quick: the whole comparison at tiny size (numbers not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

SCRIPT = Path(__file__).resolve().parents[1] / "analyses" / "grpo_vs_papo.py"


def test_quick_comparison_trains_every_method_and_evaluates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--no-figure"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = pl.read_parquet(out / "metrics.parquet")
    assert sorted(metrics["method"].unique()) == ["grpo", "papo", "papo-amortized"]
    assert metrics.filter(pl.col("method") == "grpo")["branch_steps"].sum() == 0
    assert metrics.filter(pl.col("method") == "papo")["planning_actions"].min() > 0
    evaluation = pl.read_parquet(out / "evaluation.parquet")
    assert set(evaluation["budget"]) == {"start", "equal_updates", "equal_steps"}
    assert (evaluation["n"] == 4).all()
    for line in ("| equal_updates | papo |", "| equal_steps | papo-amortized |"):
        assert line in done.stdout
    # The state-by-state comparison: the same states for every policy, and its mean difference
    # agrees with the pooled counts.
    episodes = pl.read_parquet(out / "evaluation_episodes.parquet")
    states = episodes.group_by("budget", "method", "seed").agg(pl.col("group_id").sort())
    assert len({tuple(g) for g in states["group_id"].to_list()}) == 1
    counts = (
        evaluation.filter(pl.col("budget") == "equal_updates")
        .group_by("method")
        .agg(pl.col("s").sum(), pl.col("n").sum())
    )
    rate = {m: s / n for m, s, n in counts.rows()}
    expected = f"| equal_updates | papo | {rate['papo'] - rate['grpo']:+.3f} ["
    assert expected in done.stdout, done.stdout
