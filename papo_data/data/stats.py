"""LeRobot's feature statistics: per-episode `stats/{feature}/{stat}` columns of the episodes
metadata, and `meta/stats.json`, their aggregate over the dataset.

LeRobot's normaliser reads `meta/stats.json`; without it, training on a dataset silently skips
normalisation, and `merge_datasets` fails. Statistics are computed the way LeRobot's
`compute_episode_stats` defines them (per dimension over the episode's frames: min, max, mean,
population std, count, quantiles), with exact quantiles where LeRobot uses a histogram, and
aggregated as its `aggregate_stats` does (count-weighted means and quantiles, pooled variance).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

STATS_PATH = "meta/stats.json"
COLUMN = "stats/{feature}/{stat}"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STATS = ("min", "max", "mean", "std", "count", *QUANTILES)
NO_STATS = ("string", "image", "video")  # LeRobot samples images; papo stores none
# Null on an episode's frames (a log-prob nobody logged) would leave that episode without
# statistics, and LeRobot's delete/split tools fail on that; nobody normalises log-probs.
NO_STATS_FEATURES = ("policy.log_prob",)

Stats = dict[str, dict[str, np.ndarray]]  # feature -> stat -> values (one per dimension)


def numeric_features(features: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The info.json features that get statistics."""
    return {
        k: v
        for k, v in features.items()
        if v.get("dtype") not in NO_STATS and k not in NO_STATS_FEATURES
    }


def episode_stats(steps: pa.Table, features: dict[str, Any]) -> pa.Table:
    """One row per episode of `steps`, in order of `episode_index`: the `stats/...` columns.
    A feature null on every frame of an episode has null stats there."""
    feats = {k: v for k, v in numeric_features(features).items() if k in steps.column_names}
    frame = pl.from_arrow(steps.select(list(dict.fromkeys(["episode_index", *feats]))))
    assert isinstance(frame, pl.DataFrame)
    exprs, packs = [], {}
    for name, feat in feats.items():
        width = int(feat["shape"][0])
        vector = isinstance(frame.schema[name], (pl.Array, pl.List))
        dims = [pl.col(name).arr.get(d) if vector else pl.col(name) for d in range(width)]
        as_float = [d.cast(pl.Float64) for d in dims]
        keep = pl.Int64 if feat["dtype"].startswith(("int", "uint")) else pl.Float64
        extreme = pl.Boolean if feat["dtype"] == "bool" else keep
        per_stat = {
            "min": [d.min().cast(extreme) for d in dims],
            "max": [d.max().cast(extreme) for d in dims],
            "mean": [d.mean() for d in as_float],
            "std": [d.std(ddof=0) for d in as_float],
            "count": [dims[0].count().cast(pl.Int64)],
            **{q: [d.quantile(p, "linear") for d in as_float] for q, p in QUANTILES.items()},
        }
        for stat, parts in per_stat.items():
            cols = [f"{name}\0{stat}\0{i}" for i in range(len(parts))]
            exprs += [e.alias(c) for e, c in zip(parts, cols, strict=True)]
            packs[COLUMN.format(feature=name, stat=stat)] = (cols, f"{name}\0count\0{0}")
    per_episode = frame.group_by(pl.col("episode_index").alias("\0episode")).agg(exprs)
    per_episode = per_episode.sort("\0episode")
    out = per_episode.select(
        pl.when(pl.col(count) > 0).then(pl.concat_list(cols)).alias(column)
        for column, (cols, count) in packs.items()
    )
    table = out.to_arrow()  # polars writes large lists; LeRobot's columns are lists
    return table.cast(
        pa.schema([pa.field(f.name, pa.list_(f.type.value_type)) for f in table.schema])
    )


def rows_to_stats(table: pa.Table) -> list[Stats]:
    """Per-episode stats columns back to LeRobot's per-episode dicts (null stats left out)."""
    out: list[Stats] = [{} for _ in range(table.num_rows)]
    for column in table.column_names:
        _, feature, stat = column.split("/", 2)
        for i, value in enumerate(table.column(column).to_pylist()):
            if value is not None:
                out[i].setdefault(feature, {})[stat] = np.asarray(value)
    return out


def aggregate(stats: list[Stats]) -> Stats:
    """LeRobot's `aggregate_stats`: min of mins, max of maxes, count-weighted mean and
    quantiles, and the pooled variance about the overall mean."""
    out: Stats = {}
    for feature in sorted({f for s in stats for f in s}):
        parts = [s[feature] for s in stats if feature in s]
        counts = np.stack([p["count"] for p in parts]).astype(np.float64)  # (n, 1)
        total = counts.sum(axis=0)
        means = np.stack([p["mean"] for p in parts])
        mean = (means * counts).sum(axis=0) / total
        variance = (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2) * counts
        out[feature] = {
            "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
            "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
            "mean": mean,
            "std": np.sqrt(variance.sum(axis=0) / total),
            "count": np.stack([p["count"] for p in parts]).sum(axis=0),
            **{
                q: (np.stack([p[q] for p in parts]) * counts).sum(axis=0) / total for q in QUANTILES
            },
        }
    return out


def to_json(stats: Stats) -> str:
    return json.dumps(
        {f: {k: v.tolist() for k, v in s.items()} for f, s in stats.items()}, indent=2
    )


def from_json(text: str) -> Stats:
    return {f: {k: np.asarray(v) for k, v in s.items()} for f, s in json.loads(text).items()}
