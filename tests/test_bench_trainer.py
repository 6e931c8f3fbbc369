"""analyses/bench_trainer.py runs end to end at tiny size (its numbers are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "analyses" / "bench_trainer.py"


def test_bench_trainer_quick_prints_the_ratio() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"PAPO / GRPO time per update: \*\*\d+\.\d{3}\*\*", done.stdout)
    assert "| GRPO | " in done.stdout and "| PAPO | " in done.stdout
