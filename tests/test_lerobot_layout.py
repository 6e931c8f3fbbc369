"""What a LeRobot v3 reader relies on: info.json, tasks.parquet with a `task` index, episode
metadata, and data files that load under the Hugging Face features info.json declares."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from conftest import create, random_episode
from lerobot_v3 import check_lerobot_v3

from papo_data import DatasetWriter


def hf_features(info: dict) -> datasets.Features:
    """Features the way LeRobot derives them from info.json (scalars and fixed-length lists)."""
    out = {}
    for key, ft in info["features"].items():
        if ft["shape"] == [1]:
            out[key] = datasets.Value(ft["dtype"])
        else:
            out[key] = datasets.List(datasets.Value(ft["dtype"]), length=ft["shape"][0])
    return datasets.Features(out)


def test_info_json_has_the_lerobot_v3_fields(small_dataset: Path) -> None:
    info = json.loads((small_dataset / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    for key in (
        "fps",
        "features",
        "total_episodes",
        "total_frames",
        "total_tasks",
        "chunks_size",
        "data_path",
        "splits",
        "data_files_size_in_mb",
    ):
        assert key in info
    assert info["splits"] == {"train": "0:5"}
    assert info["features"]["action"] == {
        "dtype": "float32",
        "shape": [4],
        "names": ["a0", "a1", "a2", "gripper"],
    }


def test_tasks_parquet_reads_with_task_as_index(small_dataset: Path) -> None:
    tasks = pd.read_parquet(small_dataset / "meta/tasks.parquet")
    assert tasks.index.name == "task"
    assert list(tasks.index) == ["t0", "t1"]
    assert tasks.loc["t1", "task_index"] == 1


def test_data_files_load_with_declared_hf_features(
    small_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    info = json.loads((small_dataset / "meta/info.json").read_text())
    files = sorted(str(p) for p in small_dataset.glob("data/*/*.parquet"))
    ds = datasets.load_dataset(
        "parquet",
        data_files=files,
        features=hf_features(info),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert len(ds) == info["total_frames"]
    assert ds.features == hf_features(info)
    row = ds[0]
    assert len(row["action"]) == 4 and len(row["observation.state"]) == 3
    episodes = pd.read_parquet(small_dataset / "meta/episodes/chunk-000/file-000.parquet")
    first = episodes.iloc[0]
    frames = ds.select(range(first["dataset_from_index"], first["dataset_to_index"]))
    assert set(frames["episode_index"]) == {0}
    assert list(frames["frame_index"]) == list(range(first["length"]))


def test_writer_output_keeps_the_independent_v3_contract(small_dataset: Path) -> None:
    """tests/lerobot_v3.py is written from the LeRobot format, not from our writer."""
    assert check_lerobot_v3(small_dataset) == []
    with DatasetWriter.open(small_dataset) as w:  # appends go into the same data file
        w.add_episode(random_episode(np.random.default_rng(2), "late", 6, "a third task"))
    assert check_lerobot_v3(small_dataset) == []


def test_rolled_over_files_and_chunks_keep_the_contract(tmp_path: Path) -> None:
    """Files roll over at data_files_size_in_mb and chunks at chunks_size files."""
    rng = np.random.default_rng(4)
    path = tmp_path / "big"
    with create(path, data_files_size_in_mb=1, chunks_size=2, flush_every=1) as w:
        for i in range(7):
            w.add_episode(random_episode(rng, f"ep{i}", 12_000))
    files = sorted(p.relative_to(path).as_posix() for p in path.glob("data/*/*.parquet"))
    assert "data/chunk-001/file-000.parquet" in files, files
    assert check_lerobot_v3(path) == []
    broken = path / "meta/episodes/chunk-000/file-000.parquet"
    episodes = pd.read_parquet(broken)
    episodes.loc[6, "data/file_index"] = 0  # point the last episode at the wrong file
    episodes.to_parquet(broken, index=False)
    assert check_lerobot_v3(path) == [
        "meta/episodes/chunk-000/file-000.parquet: row 6 (episode 6): frames lie in "
        "['data/chunk-001/file-001.parquet'], not in data/chunk-001/file-000.parquet",
        "data/chunk-001/file-001.parquet: no episode refers to this data file",
    ]
