"""LeRobot's feature statistics: per-episode `stats/...` columns and `meta/stats.json`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from conftest import create, random_episode

from papo_data import DatasetWriter, open_dataset
from papo_data.data.validate import validate

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


def _frames(root: Path) -> dict[str, np.ndarray]:
    """Every numeric steps column as an (n, dims) float array, with episode_index."""
    steps = pq.read_table(sorted(root.glob("data/*/*.parquet")))
    out = {}
    for name in steps.column_names:
        if name == "episode_uid":
            continue
        values = steps.column(name).to_pylist()
        out[name] = np.array(
            [[np.nan] * 4 if v is None else v for v in values] if name == "policy.log_prob"
            else [v if isinstance(v, list) else [v] for v in values],
            dtype=np.float64,
        )  # fmt: skip
    return out


def _episode_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "min": values.min(0), "max": values.max(0), "mean": values.mean(0),
        "std": values.std(0), "count": np.array([len(values)]),
        **{q: np.quantile(values, p, axis=0) for q, p in QUANTILES.items()},
    }  # fmt: skip


def test_stats_match_the_frames_episode_by_episode_and_in_aggregate(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    root = tmp_path / "ds"
    with create(root, flush_every=2) as w:  # several flushes: stats.json is updated each time
        for i in range(5):
            ep = random_episode(rng, f"ep{i}", 6 + 3 * i)
            if i != 2:  # episode 2 has no behaviour log-probs: null stats for that feature
                ep.log_prob = rng.normal(size=ep.action.shape)
            w.add_episode(ep)
    assert validate(root) == []
    frames = _frames(root)
    episodes = pq.read_table(sorted(root.glob("meta/episodes/*/*.parquet")))
    aggregate = json.loads((root / "meta/stats.json").read_text())
    assert set(aggregate) == set(frames)  # every numeric feature, the uid (a string) aside
    episode = frames["episode_index"][:, 0]
    for name, values in frames.items():
        per_episode = []
        for e in range(5):
            mine = values[episode == e]
            column = episodes.column(f"stats/{name}/mean")[e].as_py()
            if np.isnan(mine).all():
                assert name == "policy.log_prob" and e == 2 and column is None
                continue
            expected = _episode_stats(mine)
            per_episode.append(expected)
            for stat, value in expected.items():
                got = episodes.column(f"stats/{name}/{stat}")[e].as_py()
                np.testing.assert_allclose(got, value, rtol=1e-6, atol=1e-6, err_msg=stat)
        kept = values[~np.isnan(values).any(1)]
        counts = np.array([s["count"][0] for s in per_episode], dtype=np.float64)[:, None]
        exact = {"min": kept.min(0), "max": kept.max(0), "mean": kept.mean(0),
                 "std": kept.std(0), "count": [len(kept)]}  # fmt: skip
        for q in QUANTILES:  # LeRobot's aggregate: the count-weighted mean of the episodes'
            exact[q] = (np.stack([s[q] for s in per_episode]) * counts).sum(0) / counts.sum()
        for stat, value in exact.items():
            np.testing.assert_allclose(aggregate[name][stat], value, rtol=1e-6, atol=1e-6)
    assert aggregate["next.success"]["max"] in ([True], [False])  # bools stay bools, as LeRobot's


def test_the_episodes_view_shows_the_schema_columns_only(small_dataset: Path) -> None:
    with open_dataset(small_dataset) as ds:
        names = ds.sql("select * from episodes limit 0").columns
    stored = pq.read_schema(sorted(small_dataset.glob("meta/episodes/*/*.parquet"))[0]).names
    assert any(n.startswith("stats/") for n in stored)
    assert not any(n.startswith("stats/") for n in names)


def test_a_dataset_without_stats_does_not_get_partial_ones(small_dataset: Path) -> None:
    """An older dataset has no stats.json: appending must not write one that describes the
    newest episodes only."""
    (small_dataset / "meta/stats.json").unlink()
    with DatasetWriter.open(small_dataset) as w:
        w.add_episode(random_episode(np.random.default_rng(1), "late", 5))
    assert not (small_dataset / "meta/stats.json").exists()
    assert validate(small_dataset) == []
