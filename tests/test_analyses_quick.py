"""The analysis scripts behind RESULTS.md still run against the package, at tiny size.

They reach into package internals (the branch targets SQL, job building), so a change there can
break them silently; these smoke runs catch that. Their numbers are not checked.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

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


def test_detector_fidelity_variants_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every detector variant and block of detector_fidelity.py is a set of text edits of the
    package's step_scores.sql; each must still apply and run on a real Meta-World dataset."""
    spec = importlib.util.spec_from_file_location(
        "detector_fidelity", ANALYSES / "detector_fidelity.py"
    )
    assert spec is not None and spec.loader is not None
    fidelity = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fidelity)  # its dataclasses look it up there
    spec.loader.exec_module(fidelity)
    path = tmp_path / "ds"
    collect(path, CollectConfig(tasks=("pick-place-v3",), groups=1, group_size=4, max_steps=60))
    with Dataset(path) as ds:
        n = ds.sql("SELECT count(*) AS n FROM steps")["n"][0]
        for variant in (*fidelity.VARIANTS, fidelity.block(0), fidelity.block(9)):
            scores = fidelity.variant_scores(ds, variant, seed=0)
            assert 0 < scores.num_rows < n, variant.name
            assert scores.column("score").null_count < scores.num_rows, variant.name
