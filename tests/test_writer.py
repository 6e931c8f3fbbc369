"""The writer: appends, file roll-over, bad episodes, crash consistency."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import create, random_episode

from papo_data import DatasetWriter, open_dataset
from papo_data.data import commit
from papo_data.data.validate import validate
from papo_data.errors import BadInput


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_appends_keep_index_global_and_contiguous(small_dataset: Path) -> None:
    rng = np.random.default_rng(1)
    with DatasetWriter.open(small_dataset) as w:
        w.add_episode(random_episode(rng, "late-0", 4, "a new task"))
        w.add_episode(random_episode(rng, "late-1", 3))
    assert validate(small_dataset) == []
    with open_dataset(small_dataset) as ds:
        idx = ds.sql("select index from steps order by index")["index"].to_list()
        assert idx == list(range(len(idx)))
        last = ds.sql("select * from episodes where episode_uid = 'late-0'").row(0, named=True)
        assert last["episode_index"] == 5
        assert ds.sql("select count(*) n from tasks")["n"][0] == 3
        assert ds.info["total_episodes"] == 7


def test_files_roll_over_by_size_and_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    root = tmp_path / "ds"
    # ~1 KB per file and two files per chunk: every flush opens a new file.
    with create(root, data_files_size_in_mb=0.001, chunks_size=2, flush_every=1) as w:
        for i in range(5):
            w.add_episode(random_episode(rng, f"e{i}", 30))
    data = sorted(str(p.relative_to(root)) for p in root.glob("data/*/*.parquet"))
    assert data[:3] == [
        "data/chunk-000/file-000.parquet",
        "data/chunk-000/file-001.parquet",
        "data/chunk-001/file-000.parquet",
    ]
    assert len(data) == 5
    assert validate(root) == []
    with open_dataset(root) as ds:
        files = ds.sql('select "data/chunk_index" c, "data/file_index" f from episodes')
        assert files.rows()[:3] == [(0, 0), (0, 1), (1, 0)]


def test_small_flushes_share_a_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    root = tmp_path / "ds"
    with create(root, flush_every=1) as w:
        for i in range(4):
            w.add_episode(random_episode(rng, f"e{i}", 5))
    assert [p.name for p in root.glob("data/*/*.parquet")] == ["file-000.parquet"]
    assert validate(root) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action": np.full((3, 4), np.nan)}, "frame 0: field action is NaN or infinite"),
        ({"observation_state": np.zeros((3, 5))}, "field observation.state has shape (3, 5)"),
        ({"reward": np.zeros(2)}, "field next.reward has shape (2,)"),
        ({"episode_uid": "ep0"}, "field episode_uid is already in the dataset"),
    ],
)
def test_bad_episodes_are_refused_with_a_clear_line(
    small_dataset: Path, change: dict[str, object], message: str
) -> None:
    ep = random_episode(np.random.default_rng(0), "fresh", 3)
    for key, value in change.items():
        setattr(ep, key, value)
    before = snapshot(small_dataset)
    with (
        DatasetWriter.open(small_dataset) as w,
        pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")),
    ):
        w.add_episode(ep)
    assert snapshot(small_dataset) == before


def test_create_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("mine")
    with pytest.raises(BadInput, match="not an empty folder"):
        create(tmp_path)


def test_one_writer_at_a_time(small_dataset: Path) -> None:
    with DatasetWriter.open(small_dataset), pytest.raises(BadInput, match="another papo command"):
        DatasetWriter.open(small_dataset)


def test_reader_sees_a_committed_journal_before_it_is_rolled_forward(small_dataset: Path) -> None:
    """A writer killed after its commit point but before its renames: readers already see the
    new state, change nothing, and the next writer finishes the renames."""
    rng = np.random.default_rng(4)
    w = DatasetWriter.open(small_dataset)
    w.add_episode(random_episode(rng, "pending", 6, "pending task"))
    txn = commit.Transaction(small_dataset)
    w._stage_buffer(txn)
    assert txn.prepare()
    w._lock.__exit__(None, None, None)  # the process "dies" here
    before = snapshot(small_dataset)
    assert validate(small_dataset) == []
    with open_dataset(small_dataset) as ds:
        assert ds.sql("select count(*) n from episodes where episode_uid = 'pending'")["n"][0] == 1
        assert ds.info["total_episodes"] == 6
    assert snapshot(small_dataset) == before
    with DatasetWriter.open(small_dataset):
        pass
    assert not (small_dataset / commit.JOURNAL).exists()
    assert not list(small_dataset.rglob(f"*{commit.TMP_MARK}*"))
    assert validate(small_dataset) == []


def test_staged_files_of_an_uncommitted_flush_are_ignored(small_dataset: Path) -> None:
    rng = np.random.default_rng(5)
    w = DatasetWriter.open(small_dataset)
    w.add_episode(random_episode(rng, "lost", 6))
    w._stage_buffer(commit.Transaction(small_dataset))  # staged, never committed
    w._lock.__exit__(None, None, None)
    assert validate(small_dataset) == []
    with open_dataset(small_dataset) as ds:
        assert ds.info["total_episodes"] == 5
    with DatasetWriter.open(small_dataset):
        pass
    assert not list(small_dataset.rglob(f"*{commit.TMP_MARK}*"))


WRITER_LOOP = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from conftest import random_episode
from papo_data import DatasetWriter
rng = np.random.default_rng(int(sys.argv[2]))
with DatasetWriter.open(sys.argv[1], flush_every=1) as w:
    for i in range(100000):
        w.add_episode(random_episode(rng, f"run{{sys.argv[2]}}-{{i}}", int(rng.integers(5, 60))))
"""


def test_sigkill_mid_write_leaves_a_valid_dataset(small_dataset: Path) -> None:
    script = WRITER_LOOP.format(tests=str(Path(__file__).parent))
    committed = 5
    info = small_dataset / "meta" / "info.json"
    for run, delay in enumerate([0.0, 0.05, 0.2]):
        proc = subprocess.Popen([sys.executable, "-c", script, str(small_dataset), str(run)])
        # Kill at a moment after the writer got going (start-up time varies with load).
        deadline = time.time() + 60
        while (
            time.time() < deadline and json.loads(info.read_text())["total_episodes"] <= committed
        ):
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert validate(small_dataset) == [], f"after kill {run}"
        with open_dataset(small_dataset) as ds:
            total = ds.info["total_episodes"]
            assert total > committed, "the writer made no progress before the kill"
            committed = total
    with DatasetWriter.open(small_dataset) as w:  # rolls forward, cleans staged files
        w.add_episode(random_episode(np.random.default_rng(9), "after", 3))
    assert validate(small_dataset) == []


def test_an_open_dataset_sees_later_commits(small_dataset: Path) -> None:
    """A notebook opens `ds` in one cell and runs commands in later ones."""
    ds = open_dataset(small_dataset)
    episodes = ds.sql("select count(*) from episodes").item()
    assert ds.sql("select count(*) from planning_actions").item() == 0
    rows = {"episode_uid": ["ep0"], "frame_index": [1], "window": [2], "variation_score": [1.0],
            "outcome_score": [None], "score": [1.0], "rank": [1], "detector": ["mine"]}  # fmt: skip
    with DatasetWriter.open(small_dataset) as w:
        w.write_sidecar("planning_actions", pa.table(rows))
        w.add_episode(random_episode(np.random.default_rng(9), "later", 4))
    assert ds.sql("select count(*) from planning_actions").item() == 1
    with DatasetWriter.open(small_dataset) as w:  # replaces the part file read above
        w.write_sidecar("planning_actions", pa.table(rows), replace={"detector": "mine"})
    assert ds.sql("select count(*) from planning_actions").item() == 1
    assert ds.sql("select count(*) from episodes").item() == episodes + 1
    assert ds.info["total_episodes"] == episodes + 1
    ds.close()


@pytest.mark.parametrize("flag", [np.nan, 0.7, 2])
def test_a_success_flag_must_be_a_bool_or_0_1(small_dataset: Path, flag: float) -> None:
    ep = random_episode(np.random.default_rng(0), "flags", 3)
    ep.success = np.array([0.0, 0.0, flag])
    with DatasetWriter.open(small_dataset) as w, pytest.raises(ValueError, match="frame 2"):
        w.add_episode(ep)  # BadInput is a ValueError


def test_rows_that_are_not_a_table_are_named(small_dataset: Path) -> None:
    import pandas as pd

    with DatasetWriter.open(small_dataset) as w, pytest.raises(BadInput, match="pandas"):
        w.write_sidecar("planning_actions", pd.DataFrame({"episode_uid": ["ep0"]}))


def test_sidecar_rows_must_refer_to_a_frame_of_a_known_episode(small_dataset: Path) -> None:
    """What `validate` would find afterwards is refused before anything is written."""
    with open_dataset(small_dataset) as ds:
        length = ds.sql("select length from episodes where episode_uid = 'ep1'").item()
    rows = {"episode_uid": ["ep0", "ep1"], "frame_index": [1, length - 1], "window": [2, 2],
            "variation_score": [1.0, 1.0], "outcome_score": [None, None], "score": [1.0, 1.0],
            "rank": [1, 1], "detector": ["mine", "mine"]}  # fmt: skip
    with DatasetWriter.open(small_dataset) as w:
        w.write_sidecar("planning_actions", pa.table(rows))  # the last frame is a frame
        bad = {**rows, "frame_index": [1, length]}
        with pytest.raises(BadInput, match=f"row 1: field frame_index {length} is outside"):
            w.write_sidecar("planning_actions", pa.table(bad), replace={"detector": "mine"})
        bad = {**rows, "frame_index": [-1, 1]}
        with pytest.raises(BadInput, match="row 0: field frame_index -1 is outside episode 'ep0'"):
            w.write_sidecar("planning_actions", pa.table(bad))
        bad = {**rows, "episode_uid": ["ep0", "nope"]}
        with pytest.raises(BadInput, match="row 1: field episode_uid 'nope' is not in episodes"):
            w.write_sidecar("planning_actions", pa.table(bad))
    with open_dataset(small_dataset) as ds:  # the refused writes left the first one alone
        assert ds.sql("select count(*) from planning_actions").item() == 2
        assert validate(small_dataset) == []
