"""`papo export-weights`: the `weights` table (one row per step), and optionally a file."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from papo_data.data import commit
from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.data.writer import DatasetWriter, conform
from papo_data.errors import BadInput


@dataclass(frozen=True)
class WeightsConfig:
    """Knobs of `papo export-weights`; each has a flag of the same name."""

    lam: float = 1.0
    """lambda in w = 1 + lambda I on planning windows."""
    w_min: float = 0.5
    w_max: float = 3.0
    """Weights are clipped to [w_min, w_max] (the --clip flag)."""
    normalize: str = "none"
    """none | episode (rescale to mean 1 per episode)."""
    window_from: str = "planning"
    """planning (each action's own window) | fixed (fixed_window steps from its frame)."""
    fixed_window: int = 5
    method: str = "paired"
    """Which estimate (causal.method) the importance comes from."""
    run_id: str = "papo"
    """Rows of this run id are replaced on a rerun; other runs are kept."""

    def check(self) -> None:
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise BadInput(f"--lambda must be a number >= 0, got {self.lam}")
        if not (0 <= self.w_min <= 1 <= self.w_max and math.isfinite(self.w_max)):
            raise BadInput(f"--clip must satisfy 0 <= min <= 1 <= max: {self.w_min},{self.w_max}")
        if self.normalize not in ("none", "episode"):
            raise BadInput(f"--normalize must be none or episode, got {self.normalize!r}")
        if self.window_from not in ("planning", "fixed"):
            raise BadInput(f"--window-from must be planning or fixed, got {self.window_from!r}")
        if self.fixed_window < 1:
            raise BadInput(f"--fixed-window must be at least 1, got {self.fixed_window}")
        if not self.run_id:
            raise BadInput("--run-id must not be empty")


def weights_table(ds: Dataset, cfg: WeightsConfig) -> pa.Table:
    cfg.check()
    n = ds.arrow("SELECT count(*) AS n FROM causal WHERE method = $m", {"m": cfg.method})
    if not n.column("n")[0].as_py():
        raise BadInput(f"{ds.root}: no causal rows of method {cfg.method!r}; run 'papo estimate'")
    params = {
        "lambda": cfg.lam,
        "w_min": cfg.w_min,
        "w_max": cfg.w_max,
        "normalize": cfg.normalize,
        "window_from": cfg.window_from,
        "fixed_window": cfg.fixed_window,
        "method": cfg.method,
        "run_id": cfg.run_id,
    }
    return conform(ds.arrow(sql_text(__file__, "weights.sql"), params), "weights", ds.dims)


def export_weights(path: Path, cfg: WeightsConfig, out: Path | None = None) -> pa.Table:
    """Write this run's weights into the dataset (replacing the same run id) and to `out`."""
    path, out = Path(path), None if out is None else Path(out)
    cfg.check()
    if out is not None and out.suffix != ".parquet":
        raise BadInput(f"--out {out}: give a .parquet file")
    with DatasetWriter.open(path) as writer:
        with Dataset(path) as ds:
            table = weights_table(ds, cfg)
        done = writer.info.get("papo", {}).get("weights", {})
        writer.write_sidecar(
            "weights",
            table,
            replace={"run_id": cfg.run_id},
            papo={"weights": {**done, cfg.run_id: asdict(cfg)}},
        )
    if out is not None:
        commit.write_atomic_table(table, out)
    return table
