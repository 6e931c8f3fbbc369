"""The analysis scripts behind RESULTS.md still run against the package, at tiny size.

They reach into package internals (the branch targets SQL, job building), so a change there can
break them silently; these smoke runs catch that. Their measured numbers are not checked; the
fidelity report's statistics are, on a hand-made table of flips.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from papo_data.data.dataset import Dataset
from papo_data.sim.collect import CollectConfig, collect

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"


def quick(script: str, *args: str | Path) -> str:
    done = subprocess.run(
        [sys.executable, str(ANALYSES / script), "--quick", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_estimator_validation_quick(tmp_path: Path) -> None:
    out = quick("estimator_validation.py", "--workdir", tmp_path / "ev")
    assert "### (c) Amortised importance" in out
    assert "| 0.5 |" in out  # the audit-fraction table of part (c)


def test_bench_branch_quick(tmp_path: Path) -> None:
    out = quick("bench_branch.py", "--work", tmp_path / "bb")
    assert "Branch steps saved" in out and "agreement" in out


def load_fidelity(monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location(
        "detector_fidelity", ANALYSES / "detector_fidelity.py"
    )
    assert spec is not None and spec.loader is not None
    fidelity = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fidelity)  # its dataclasses look it up there
    spec.loader.exec_module(fidelity)
    return fidelity


def runs_of(frames: tuple[int, ...]) -> list[list[int]]:
    out: list[list[int]] = []
    for f in frames:
        if out and f == out[-1][-1] + 1:
            out[-1].append(f)
        else:
            out.append([f])
    return out


def test_random_runs_keeps_the_run_structure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The random-runs control moves joint's runs of consecutive picks to random places: same
    run lengths, inside the scored frames, apart from each other, seeded."""
    fidelity = load_fidelity(monkeypatch)
    scored = {0: range(5, 95), 1: range(5, 15)}  # episode 1: the runs exactly fill it
    scores = pa.table(
        {
            "episode_index": [i for i, r in scored.items() for _ in r],
            "frame_index": [f for r in scored.values() for f in r],
            "score": [float(f % 7) for r in scored.values() for f in r],
        }
    )
    picks = {0: (10, 11, 12, 30, 31, 50), 1: (5, 6, 7, 8, 10, 11, 12, 13, 14)}
    seen = set()
    for seed in range(20):
        moved = fidelity.random_runs(picks, scores, seed)
        assert moved == fidelity.random_runs(picks, scores, seed)
        for i, frames in moved.items():
            assert sorted(map(len, runs_of(frames))) == sorted(map(len, runs_of(picks[i])))
            assert set(frames) <= set(scored[i])
        assert moved[1] in (picks[1], (5, 6, 7, 8, 9, 11, 12, 13, 14))  # the two orders
        seen.add(moved[0])
    assert len(seen) > 10


def test_detector_fidelity_variants_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every detector variant and block of detector_fidelity.py is a set of text edits of the
    package's step_scores.sql; each must still apply and run on a real Meta-World dataset."""
    fidelity = load_fidelity(monkeypatch)
    path = tmp_path / "ds"
    collect(path, CollectConfig(tasks=("pick-place-v3",), groups=1, group_size=4, max_steps=60))
    with Dataset(path) as ds:
        n = ds.sql("SELECT count(*) AS n FROM steps")["n"][0]
        for variant in (*fidelity.VARIANTS, fidelity.block(0), fidelity.block(9)):
            scores = fidelity.variant_scores(ds, variant, seed=0)
            assert 0 < scores.num_rows < n, variant.name
            assert scores.column("score").null_count < scores.num_rows, variant.name
        # --unit windows: planning actions of the package detectors and of a variant, each with
        # its window, best first, filling exactly the 10% budget.
        table = ds.sql("SELECT episode_uid, episode_index, length FROM episodes")
        eps = SimpleNamespace(table=table)
        lengths = dict(zip(eps.table["episode_index"], eps.table["length"], strict=True))
        for detector in ("joint", "random", fidelity.VARIANTS[0]):
            picks = fidelity.planning_windows(ds, eps, detector, 0, 0.1)
            assert picks, detector
            for i, frames in picks.items():
                assert len(frames) == len(set(frames)) == math.ceil(0.1 * lengths[i]), detector


def test_fidelity_headline_is_the_success_flip_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The goal is judged on mixed-group successes that fail (s→f); rescued failures only count
    in the 'both ways' rows, and one-outcome groups in neither."""
    fidelity = load_fidelity(monkeypatch)
    flipped = {"joint": 7, "variation": 5, "outcome": 1, "random": 2}  # of 10 successes
    rows = []
    for d, k in flipped.items():
        for i in range(10):
            rows.append((i, True, True, d, i < k))
        for i in range(10, 15):  # failures: random rescues all five, the others none
            rows.append((i, True, False, d, d == "random"))
        rows.append((15, False, True, d, True))  # a one-outcome group: out of every scope
    flips = pl.DataFrame(
        rows, schema=["episode_index", "mixed", "logged", "detector", "flip"], orient="row"
    ).with_columns(task=pl.lit("pick-place-v3"), group_id=pl.format("g{}", pl.col("episode_index")))
    rep = fidelity.build_report(flips, list(flipped), 0, pl.DataFrame(), {}, None)
    assert rep.ratios[("joint", "random", "s→f")][0] == pytest.approx(3.5)
    assert rep.ratios[("variation", "joint", "s→f")][0] == pytest.approx(5 / 7)
    assert rep.ratios[("joint", "random", "both ways")][0] == pytest.approx(1.0)
    goals = fidelity.goal_lines(rep)
    assert goals[2].startswith("| joint ≥ 3× random | s→f") and "**yes**" in goals[2]
    assert goals[5].startswith("| joint ≥ 3× random | both ways") and "**no**" in goals[5]
