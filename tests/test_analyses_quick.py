"""The analysis scripts behind RESULTS.md still run against the package, at tiny size.

They reach into package internals (the branch targets SQL, job building), so a change there can
break them silently; these smoke runs catch that. Their numbers are not checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
