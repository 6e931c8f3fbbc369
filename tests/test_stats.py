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
    # every numeric feature: the uid (a string) aside, and the log-prob, null where unlogged
    assert set(aggregate) == set(frames) - {"policy.log_prob"}
    assert not [c for c in episodes.column_names if c.startswith("stats/policy.log_prob/")]
    del frames["policy.log_prob"]
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


def _episode_files(root: Path) -> list[Path]:
    return sorted(root.glob("meta/episodes/*/*.parquet"))


def test_a_dataset_without_stats_does_not_get_partial_ones(small_dataset: Path) -> None:
    """A dataset written before papo kept statistics: appending must neither write a
    stats.json of the newest episodes only nor null per-episode statistics (LeRobot's
    delete_episodes and split_dataset fail on those)."""
    for path in _episode_files(small_dataset):  # as an older papo wrote it
        table = pq.read_table(path)
        pq.write_table(table.select([c for c in table.column_names if c[:6] != "stats/"]), path)
    (small_dataset / "meta/stats.json").unlink()
    with DatasetWriter.open(small_dataset) as w:
        w.add_episode(random_episode(np.random.default_rng(1), "late", 5))
    assert not (small_dataset / "meta/stats.json").exists()
    names = {n for p in _episode_files(small_dataset) for n in pq.read_schema(p).names}
    assert not [n for n in names if n.startswith("stats/")]
    assert validate(small_dataset) == []


def test_statistics_an_older_writer_left_behind_are_dropped(small_dataset: Path) -> None:
    """stats.json that covers fewer frames than the dataset (an older papo appended since)
    is removed rather than extended."""
    path = small_dataset / "meta/stats.json"
    kept = json.loads(path.read_text())
    kept["index"]["count"] = [kept["index"]["count"][0] - 1]
    path.write_text(json.dumps(kept))
    with DatasetWriter.open(small_dataset) as w:
        w.add_episode(random_episode(np.random.default_rng(1), "late", 5))
    assert not path.exists()
    names = {n for p in _episode_files(small_dataset) for n in pq.read_schema(p).names}
    assert not [n for n in names if n.startswith("stats/")]
    assert validate(small_dataset) == []


def test_episodes_without_log_probs_leave_the_column_out_unless_asked(tmp_path: Path) -> None:
    """The first flush decides: LeRobot cannot batch a feature null on every frame."""
    import pytest

    from papo_data.errors import BadInput

    rng = np.random.default_rng(2)
    for log_probs, held in ((None, False), (True, True)):
        root = tmp_path / f"ds-{log_probs}"
        with create(root, log_probs=log_probs) as w:
            w.add_episode(random_episode(rng, "ep0", 4))
        info = json.loads((root / "meta/info.json").read_text())
        columns = pq.read_schema(sorted(root.glob("data/*/*.parquet"))[0]).names
        assert ("policy.log_prob" in info["features"]) is held
        assert ("policy.log_prob" in columns) is held
        assert validate(root) == []
    late = random_episode(rng, "late", 4)
    late.log_prob = rng.normal(size=late.action.shape)
    with DatasetWriter.open(tmp_path / "ds-None") as w, pytest.raises(BadInput, match="no beh"):
        w.add_episode(late)


def test_a_log_prob_column_info_json_does_not_declare_is_refused(tmp_path: Path) -> None:
    """It would read as null everywhere: refused when the dataset is opened."""
    import pyarrow as pa
    import pytest

    from papo_data.errors import BadInput

    root = tmp_path / "ds"
    with create(root) as w:
        w.add_episode(random_episode(np.random.default_rng(0), "ep0", 4))
    path = sorted(root.glob("data/*/*.parquet"))[0]
    table = pq.read_table(path)
    values = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(4 * len(table), np.float32)), 4)
    pq.write_table(table.append_column("policy.log_prob", values), path)
    with pytest.raises(BadInput, match=r"policy\.log_prob: column is not declared"):
        open_dataset(root)
