"""`papo import-lerobot`: a LeRobot v3.0 dataset written by another tool becomes a papo dataset.

The source is built here from the LeRobot v3.0 layout with pyarrow, pandas and json only (not
our writer), with what other tools put in: a video feature, extra observation columns,
per-episode stats, other names for success and reward, two data files, names as
{"motors": [...]}. It must pass the independent v3 checker (tests/lerobot_v3.py) before we
import it, and our import must pass the same checker after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lerobot_v3 import check_lerobot_v3

from papo_data import open_dataset
from papo_data.cli import main
from papo_data.data.validate import validate
from papo_data.sim.collect import CollectConfig, collect

FPS = 15
S, A, ENV = 6, 7, 3
LENGTHS = [7, 12, 5, 9, 11]
FILE_OF_EPISODE = [0, 0, 0, 1, 1]  # data/chunk-000/file-000 and file-001
TASKS = ["pick up the red cube", "open the top drawer"]
TASK_OF_EPISODE = [0, 1, 0, 1, 0]
VIDEO = "observation.images.front"
PAPO = str(Path(sys.executable).with_name("papo"))


def _stats(values: np.ndarray) -> dict[str, list]:
    v = values.reshape(len(values), -1).astype(np.float64)
    return {
        "min": v.min(0).tolist(),
        "max": v.max(0).tolist(),
        "mean": v.mean(0).tolist(),
        "std": v.std(0).tolist(),
        "count": [len(v)],
    }


def build_foreign_v3(root: Path, *, outcomes: bool = True) -> dict[str, np.ndarray]:
    """A LeRobot v3.0 dataset as another recorder writes it; returns the per-frame source
    values (in global index order) the tests compare against."""
    rng = np.random.default_rng(3)
    n = sum(LENGTHS)
    episode = np.repeat(np.arange(len(LENGTHS)), LENGTHS)
    frame = np.concatenate([np.arange(k) for k in LENGTHS])
    starts = np.concatenate([[0], np.cumsum(LENGTHS)[:-1]])
    state = rng.normal(size=(n, S)).astype(np.float32)
    state[starts[2]] = state[starts[0]]  # episodes 0 and 2: same task, same initial state
    src = {
        "index": np.arange(n),
        "episode_index": episode,
        "frame_index": frame,
        "timestamp": (frame / FPS).astype(np.float32),
        "task_index": np.array(TASK_OF_EPISODE)[episode],
        "observation.state": state,
        "action": rng.normal(size=(n, A)).astype(np.float32),
        "observation.environment_state": rng.normal(size=(n, ENV)).astype(np.float32),
        "complementary_info.discount": np.full(n, 0.99, dtype=np.float32),
    }
    if outcomes:
        src["next.reward"] = rng.random(n).astype(np.float32)
        src["next.done"] = np.isin(np.arange(n), np.cumsum(LENGTHS) - 1)
        success = np.zeros(n, dtype=bool)
        success[[starts[0] + 5, starts[0] + 6, starts[3] + 8]] = True  # episodes 0 and 3
        src["is_success"] = success
    # A variable-length list for the state, a fixed-size list for the rest (both load as
    # LeRobot's Sequence(length=n)).
    arrow = {
        k: (
            pa.array(list(v), pa.list_(pa.float32()))
            if k == "observation.state"
            else pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])
            if v.ndim == 2
            else pa.array(v)
        )
        for k, v in src.items()
    }
    table = pa.table(arrow)
    for f in (0, 1):
        rows = np.flatnonzero(np.array(FILE_OF_EPISODE)[episode] == f)
        path = root / f"data/chunk-000/file-{f:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.take(rows), path)
    (root / f"videos/{VIDEO}/chunk-000").mkdir(parents=True)
    (root / f"videos/{VIDEO}/chunk-000/file-000.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")

    features = {
        k: (
            {"dtype": "float32", "shape": [v.shape[1]], "names": None}
            if v.ndim == 2
            else {"dtype": str(v.dtype), "shape": [1], "names": None}
        )
        for k, v in src.items()
    }
    features["observation.state"]["names"] = [f"joint{i}" for i in range(S)]
    features["action"]["names"] = {"motors": [f"m{i}" for i in range(A)]}
    features[VIDEO] = {
        "dtype": "video",
        "shape": [48, 64, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": 48,
            "video.width": 64,
            "video.codec": "av1",
            "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False,
            "video.fps": FPS,
            "video.channels": 3,
            "has_audio": False,
        },
    }
    info = {
        "codebase_version": "v3.0",
        "robot_type": "so100_follower",
        "total_episodes": len(LENGTHS),
        "total_frames": n,
        "total_tasks": len(TASKS),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": FPS,
        "splits": {"train": f"0:{len(LENGTHS)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features,
    }
    (root / "meta").mkdir(exist_ok=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    tasks = pd.DataFrame({"task_index": range(len(TASKS))}, index=pd.Index(TASKS, name="task"))
    tasks.to_parquet(root / "meta/tasks.parquet")
    (root / "meta/stats.json").write_text(json.dumps({"action": _stats(src["action"])}))

    rows = []
    for e, length in enumerate(LENGTHS):
        lo, hi = int(starts[e]), int(starts[e] + length)
        row = {
            "episode_index": e,
            "tasks": [TASKS[TASK_OF_EPISODE[e]]],
            "length": length,
            "data/chunk_index": 0,
            "data/file_index": FILE_OF_EPISODE[e],
            "dataset_from_index": lo,
            "dataset_to_index": hi,
            f"videos/{VIDEO}/chunk_index": 0,
            f"videos/{VIDEO}/file_index": 0,
            f"videos/{VIDEO}/from_timestamp": lo / FPS,
            f"videos/{VIDEO}/to_timestamp": hi / FPS,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
        }
        for key in ("observation.state", "action"):
            for stat, value in _stats(src[key][lo:hi]).items():
                row[f"stats/{key}/{stat}"] = value
        rows.append(row)
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return src


@pytest.fixture
def foreign(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path / "so100_pick"
    return root, build_foreign_v3(root)


def run_import(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["import-lerobot", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def steps_of(path: Path) -> pd.DataFrame:
    with open_dataset(path) as ds:
        return ds.sql("select * from steps order by index").to_pandas()


# -- the fixture is a LeRobot v3 dataset, and the checker can tell when one is not ---------


@pytest.mark.parametrize("outcomes", [True, False])
def test_foreign_fixture_keeps_the_v3_contract(tmp_path: Path, outcomes: bool) -> None:
    build_foreign_v3(tmp_path / "src", outcomes=outcomes)
    assert check_lerobot_v3(tmp_path / "src") == []


def _drop_column(root: Path) -> None:
    path = root / "data/chunk-000/file-001.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["action"]), path)


def _shift_range(root: Path) -> None:
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    eps = pq.read_table(path).to_pandas()
    eps.loc[3, "dataset_from_index"] += 1
    eps.to_parquet(path, index=False)


def _unnamed_task_index(root: Path) -> None:
    pd.DataFrame({"task": TASKS, "task_index": [0, 1]}).to_parquet(
        root / "meta/tasks.parquet", index=False
    )


def _wrong_shape(root: Path) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["action"]["shape"] = [8]
    (root / "meta/info.json").write_text(json.dumps(info))


def _wrong_total(root: Path) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info["total_frames"] += 1
    (root / "meta/info.json").write_text(json.dumps(info))


def _missing_video(root: Path) -> None:
    (root / f"videos/{VIDEO}/chunk-000/file-000.mp4").unlink()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_drop_column, "data/chunk-000/file-001.parquet: feature action has no column"),
        (_shift_range, "dataset_from_index 25 leaves a gap or overlap"),
        (_unnamed_task_index, "meta/tasks.parquet: the pandas index does not hold the task texts"),
        (_wrong_shape, "column action: dimension 0 has fixed size 7, shape [8]"),
        (_wrong_total, "total_frames is 45, the episodes end at 44"),
        (_missing_video, "file-000.mp4: video file named by the episodes metadata is missing"),
    ],
)
def test_checker_finds_each_breach(tmp_path: Path, damage, expected: str) -> None:
    build_foreign_v3(tmp_path / "src")
    damage(tmp_path / "src")
    problems = check_lerobot_v3(tmp_path / "src")
    assert any(expected in p for p in problems), problems
    assert len(problems) <= 3, problems  # the breach and its direct consequences


# -- importing ------------------------------------------------------------------------------


def test_import_keeps_every_frame_and_maps_outcomes(
    foreign: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src, values = foreign
    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, str(src), str(out))
    assert code == 0
    assert validate(out) == []
    assert main(["validate", str(out)]) == 0
    steps = steps_of(out)
    assert len(steps) == len(values["index"])
    assert steps["episode_index"].tolist() == values["episode_index"].tolist()
    assert steps["frame_index"].tolist() == values["frame_index"].tolist()
    for papo_col, src_col in [
        ("observation.state", "observation.state"),
        ("action", "action"),
        ("next.reward", "next.reward"),
        ("next.success", "is_success"),
        ("next.done", "next.done"),
    ]:
        assert np.array_equal(np.stack(steps[papo_col]), values[src_col]), papo_col
    assert steps["policy.log_prob"].isna().all()

    with open_dataset(out) as ds:
        eps = ds.sql("select * from episodes order by episode_index").to_pandas()
        info = ds.info
    assert eps["episode_uid"].tolist() == [f"so100_pick/{e}" for e in range(len(LENGTHS))]
    assert eps["length"].tolist() == LENGTHS
    assert eps["success"].tolist() == [True, False, False, True, False]
    assert eps["tasks"].map(list).tolist() == [[TASKS[t]] for t in TASK_OF_EPISODE]
    assert set(eps["env_id"]) == {"lerobot/so100_pick"}
    assert set(eps["policy_id"]) == {"unknown"}
    assert set(eps["init_seed"]) == set(eps["policy_seed"]) == {-1}
    # Episodes 0 and 2 share task and initial state: one group; the others are alone.
    groups = eps["group_id"].tolist()
    assert groups[0] == groups[2] and len(set(groups)) == 4
    assert eps["group_member"].tolist() == [0, 0, 1, 0, 0]
    assert info["fps"] == FPS and info["robot_type"] == "so100_follower"
    assert info["papo"]["action_names"] == [f"m{i}" for i in range(A)]
    assert info["papo"]["state_names"] == [f"joint{i}" for i in range(S)]
    imported = info["papo"]["imported"]
    assert imported["mapped"]["next.success"] == "is_success"
    assert imported["success_known"] is True
    assert list(imported["not_mapped"]) == ["policy.log_prob"]

    lines = stdout.splitlines()
    assert f"not imported: {VIDEO} (video)" in lines
    assert "not imported: observation.environment_state (no papo column)" in lines
    assert "not imported: complementary_info.discount (no papo column)" in lines
    assert "not imported: stats/observation.state/{min,max,mean,std,count} " in stdout
    assert "not imported: stats/action/" in stdout
    assert "not imported: meta/stats.json (papo computes its own statistics)" in lines
    assert not any("not mapped: next.success" in line for line in lines)
    assert any(
        line.startswith("imported 5 episodes (44 frames, 2 tasks, 4 groups)") for line in lines
    )


def test_import_without_outcome_columns_says_success_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "no_outcomes"
    values = build_foreign_v3(src, outcomes=False)
    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, str(src), str(out))
    assert code == 0 and validate(out) == []
    steps = steps_of(out)
    assert np.array_equal(np.stack(steps["action"]), values["action"])
    assert not steps["next.success"].any()
    assert (steps["next.reward"] == 0).all()
    last = np.isin(np.arange(len(steps)), np.cumsum(LENGTHS) - 1)
    assert steps["next.done"].tolist() == last.tolist()
    with open_dataset(out) as ds:
        imported = ds.info["papo"]["imported"]
        assert ds.sql("select bool_or(success) as s from episodes")["s"][0] is False
    assert imported["success_known"] is False
    assert set(imported["not_mapped"]) == {"next.reward", "next.success", "next.done"} | {
        "policy.log_prob"
    }
    assert any(
        line.startswith("not mapped: next.success (no usable source feature): false on every frame")
        for line in stdout.splitlines()
    )


@pytest.fixture
def imported(
    foreign: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> Path:
    out = tmp_path / "imported"
    assert run_import(capsys, str(foreign[0]), str(out))[0] == 0
    return out


def test_imported_dataset_is_itself_lerobot_v3(imported: Path, tmp_path: Path) -> None:
    out = imported
    assert check_lerobot_v3(out) == []
    # Exported back out (the Hub folder `papo publish` writes) it is still LeRobot v3.
    assert main(["publish", str(out), "--out", str(tmp_path / "hub")]) == 0
    assert check_lerobot_v3(tmp_path / "hub") == []


def test_imported_dataset_segments_and_reports_but_cannot_branch(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = imported
    assert main(["segment", str(out)]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    capsys.readouterr()
    assert main(["branch", str(out), "--k", "2"]) == 2  # no simulator states to restore
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "papo.env is 'lerobot/so100_pick'" in err[0]
    with open_dataset(out) as ds:
        assert ds.sql("select count(*) n from branches")["n"][0] == 0


def test_overwrite_replaces_a_papo_dataset_only(
    foreign: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src, _ = foreign
    out = tmp_path / "imported"
    assert run_import(capsys, str(src), str(out))[0] == 0
    before = steps_of(out)
    assert run_import(capsys, str(src), str(out), "--overwrite")[0] == 0
    assert steps_of(out).equals(before)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    other = tmp_path / "not-papo"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = run_import(capsys, str(src), str(other), "--overwrite")
    assert code == 2 and "only replaces a papo dataset" in err
    assert (other / "notes.txt").read_text() == "mine"


def test_overwrite_through_a_symlink_replaces_the_folder_it_points_to(
    foreign: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src, _ = foreign
    real = tmp_path / "disk" / "imported"
    assert run_import(capsys, str(src), str(real))[0] == 0
    before = steps_of(real)
    (real / "mine.txt").write_text("replaced by the import")
    link = tmp_path / "imported"
    link.symlink_to(real, target_is_directory=True)
    assert run_import(capsys, str(src), str(link), "--overwrite")[0] == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert steps_of(link).equals(before) and not (real / "mine.txt").exists()
    assert [p.name for p in real.parent.iterdir()] == ["imported"]  # no staging left behind
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_source_without_log_probs_imports_without_the_column(
    foreign: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """LeRobot passes a null feature through as None, and torch cannot batch None: a dataset
    with no behaviour log-probs at all leaves the column and its feature out."""
    from papo_data import DatasetWriter, Episode
    from papo_data.errors import BadInput

    src, _ = foreign
    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, str(src), str(out))
    assert code == 0 and validate(out) == [] and check_lerobot_v3(out) == []
    assert "not mapped: policy.log_prob (no usable source feature): left out" in stdout
    info = json.loads((out / "meta/info.json").read_text())
    assert "policy.log_prob" not in info["features"]
    assert all("policy.log_prob" not in pq.read_schema(p).names for p in out.glob("data/*/*"))
    with open_dataset(out) as ds:  # queries still see the column, as nulls
        assert ds.sql('select count(*) n, count("policy.log_prob") k from steps').row(0)[1] == 0
    n = 3
    episode = Episode("late", TASKS[0], np.zeros((n, S)), np.zeros((n, A)), np.zeros(n),
                      np.zeros(n, dtype=bool), log_prob=np.zeros((n, A)))  # fmt: skip
    with DatasetWriter.open(out) as w:
        with pytest.raises(BadInput, match="holds no behaviour log-probs"):
            w.add_episode(episode)
        episode.log_prob = None
        w.add_episode(episode)
    assert validate(out) == [] and check_lerobot_v3(out) == []


def test_a_log_prob_feature_null_on_every_frame_is_left_out(
    foreign: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """E.g. an import of an older papo import: declared, but no frame holds a value."""
    src, _ = foreign
    for path in sorted(src.glob("data/*/*.parquet")):
        table = pq.read_table(path)
        nulls = pa.nulls(len(table), pa.list_(pa.float32(), A))
        pq.write_table(table.append_column("policy.log_prob", nulls), path)
    info = json.loads((src / "meta/info.json").read_text())
    info["features"]["policy.log_prob"] = {"dtype": "float32", "shape": [A], "names": None}
    (src / "meta/info.json").write_text(json.dumps(info))
    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, str(src), str(out))
    assert code == 0 and validate(out) == [] and check_lerobot_v3(out) == []
    assert "not mapped: policy.log_prob (no usable source feature): left out" in stdout
    assert "policy.log_prob" not in json.loads((out / "meta/info.json").read_text())["features"]


def test_what_papo_cannot_hold_is_said(
    foreign: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """An episode whose task changes midway and behaviour log-probs null on part of an
    episode: LeRobot allows both, papo keeps one task and whole-episode log-probs."""
    src, values = foreign
    rng = np.random.default_rng(5)
    log_prob = rng.normal(size=(len(values["index"]), A)).astype(np.float32)
    null = np.zeros(len(log_prob), dtype=bool)
    null[[33 + 2, 33 + 3]] = True  # part of episode 4
    task_index = values["task_index"].copy()
    task_index[7 + 6 :] = np.where(values["episode_index"][7 + 6 :] == 1, 0, task_index[7 + 6 :])
    for path in sorted(src.glob("data/*/*.parquet")):
        table = pq.read_table(path)
        rows = table.column("index").to_numpy()
        fsl = pa.FixedSizeListArray.from_arrays(pa.array(log_prob[rows].reshape(-1)), A)
        lp = pa.array(
            [None if null[r] else v for r, v in zip(rows, fsl.to_pylist(), strict=True)],
            pa.list_(pa.float32(), A),
        )
        i = table.schema.get_field_index("task_index")
        table = table.set_column(i, "task_index", pa.array(task_index[rows]))
        pq.write_table(table.append_column("policy.log_prob", lp), path)
    info = json.loads((src / "meta/info.json").read_text())
    info["features"]["policy.log_prob"] = {"dtype": "float32", "shape": [A], "names": None}
    (src / "meta/info.json").write_text(json.dumps(info))
    episodes_path = src / "meta/episodes/chunk-000/file-000.parquet"
    eps = pq.read_table(episodes_path).to_pandas()
    eps.at[1, "tasks"] = [TASKS[1], TASKS[0]]
    eps.to_parquet(episodes_path, index=False)
    assert check_lerobot_v3(src) == []  # still a LeRobot v3 dataset

    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, str(src), str(out))
    assert code == 0 and validate(out) == []
    lines = stdout.splitlines()
    assert (
        "not imported: task_index of 6 frames in 1 episodes (papo keeps one task per "
        "episode: its first frame's)" in lines
    )
    assert (
        "not imported: policy.log_prob of 1 episodes null on some frames only (kept null "
        "for the whole episode)" in lines
    )
    steps = steps_of(out)
    assert steps.loc[steps["episode_index"] == 1, "task_index"].tolist() == [1] * 12
    kept = steps["episode_index"] != 4
    assert np.array_equal(np.stack(steps.loc[kept, "policy.log_prob"]), log_prob[kept.to_numpy()])
    assert steps.loc[~kept, "policy.log_prob"].isna().all()


# -- bad input: exit 2, one line, nothing left behind ---------------------------------------


def _drop_action_feature(root: Path) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    del info["features"]["action"]
    (root / "meta/info.json").write_text(json.dumps(info))
    for path in root.glob("data/*/*.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["action"]), path)


def _nan_action(root: Path) -> None:
    path = root / "data/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    action = np.stack(table.column("action").to_pylist()).astype(np.float32)
    action[4, 2] = np.nan
    fsl = pa.FixedSizeListArray.from_arrays(pa.array(action.reshape(-1)), A)
    pq.write_table(table.set_column(table.schema.get_field_index("action"), "action", fsl), path)


def _nan_state(root: Path) -> None:
    path = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    state = table.column("observation.state").to_pylist()
    state[10][0] = float("nan")
    col = pa.array(state, pa.list_(pa.float32()))
    i = table.schema.get_field_index("observation.state")
    pq.write_table(table.set_column(i, "observation.state", col), path)


def _truncate(root: Path) -> None:
    path = root / "data/chunk-000/file-001.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _v21(root: Path) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info["codebase_version"] = "v2.1"
    (root / "meta/info.json").write_text(json.dumps(info))


def _orphan_data_file(root: Path) -> None:
    data = (root / "data/chunk-000/file-001.parquet").read_bytes()
    (root / "data/chunk-000/file-002.parquet").write_bytes(data)


def _integer_action(root: Path) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["action"]["dtype"] = "int64"
    (root / "meta/info.json").write_text(json.dumps(info))


def _undeclared_reward(root: Path) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    del info["features"]["next.reward"]
    (root / "meta/info.json").write_text(json.dumps(info))


def _edit_parquet(rel: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    def damage(root: Path) -> None:
        path = root / rel
        edit(pd.read_parquet(path)).to_parquet(path)

    return damage


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(
            object if isinstance(value, str) else frame[column].dtype
        )
        frame.loc[frame.index[row], column] = value
        return frame

    return edit


EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            _edit_parquet(EPISODES_FILE, lambda f: f.astype({"data/file_index": "float64"})),
            "field data/file_index is not all integers",
        ),
        (_edit_parquet(EPISODES_FILE, _set("length", 2, 0)), "episode 2 has length < 1"),
        (
            _edit_parquet("meta/tasks.parquet", lambda f: f.reset_index(drop=True)),
            "the task texts (the index, or a column 'task') are not all text",
        ),
        (
            _edit_parquet("meta/tasks.parquet", _set("task_index", 1, 0)),
            "task_index 0 appears twice",
        ),
        (
            _edit_parquet("data/chunk-000/file-000.parquet", _set("frame_index", 3, 2)),
            "row 3: frame_index 2 of episode 0 appears twice",
        ),
        (_drop_action_feature, "meta/info.json: feature action is missing"),
        (_integer_action, "feature action is int64 of shape [7], expected a fixed-length float"),
        (_nan_action, "data/chunk-000/file-001.parquet: row 4: field action is NaN or infinite"),
        (
            _nan_state,
            "data/chunk-000/file-000.parquet: row 10: field observation.state is NaN or infinite",
        ),
        (_truncate, "data/chunk-000/file-001.parquet: not a readable Parquet file"),
        (_v21, "field codebase_version is 'v2.1', expected 'v3.0'"),
        (
            _undeclared_reward,
            "file-000.parquet: column next.reward is not declared in meta/info.json features",
        ),
        (_orphan_data_file, "file-002.parquet: no episode of the episodes metadata refers to"),
    ],
)
def test_bad_source_exits_2_with_one_line_and_writes_nothing(
    foreign: tuple[Path, dict[str, np.ndarray]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    damage,
    expected: str,
) -> None:
    src, _ = foreign
    damage(src)
    out = tmp_path / "new" / "imported"
    code, stdout, err = run_import(capsys, str(src), str(out))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err
    assert lines[0].startswith("papo import-lerobot: error: ")
    assert not out.exists() and not out.parent.exists()
    assert "imported" not in stdout


def test_existing_dataset_folder_without_overwrite_is_refused(
    foreign: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    """Through the installed `papo` command, as a user runs it."""
    src, _ = foreign
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    done = subprocess.run(
        [PAPO, "import-lerobot", str(src), str(out)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"papo import-lerobot: error: {out}: exists and is not an empty folder (use --overwrite)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["so100_pick", "taken"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# -- a real Meta-World collection through the LeRobot door -------------------------------


@pytest.fixture(scope="module")
def metaworld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mw") / "reach"
    collect(
        path,
        CollectConfig(tasks=("reach-v3",), groups=2, group_size=3, max_steps=40, seed=0),
        workers=1,
    )
    return path


def test_metaworld_collect_keeps_the_v3_contract(metaworld: Path) -> None:
    assert check_lerobot_v3(metaworld) == []


def test_reimported_collect_recovers_its_groups_from_initial_states(
    metaworld: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "again"
    code, stdout, _ = run_import(capsys, str(metaworld), str(out))
    assert code == 0 and validate(out) == [] and check_lerobot_v3(out) == []
    with open_dataset(metaworld) as a, open_dataset(out) as b:
        q = "select episode_index, group_id, success, {} from episodes order by episode_index"
        before = a.sql(q.format("episode_uid")).to_pandas()
        after = b.sql(q.format("episode_uid")).to_pandas()
        steps_a = a.sql("select * from steps order by index").to_pandas()
        steps_b = b.sql("select * from steps order by index").to_pandas()
    # Same partition of episodes into groups (collect: same seed, same initial state).
    pairs = set(zip(before["group_id"], after["group_id"], strict=True))
    assert len(pairs) == before["group_id"].nunique() == after["group_id"].nunique() == 2
    assert after["success"].tolist() == before["success"].tolist()
    assert after["episode_uid"].tolist() == [f"reach/{e}" for e in before["episode_index"]]
    for col in ("observation.state", "action", "policy.log_prob"):
        a_col, b_col = steps_a[col], steps_b[col]
        assert a_col.isna().tolist() == b_col.isna().tolist()
        if not a_col.isna().all():
            assert np.array_equal(np.stack(a_col.dropna()), np.stack(b_col.dropna()))
    for col in ("next.reward", "next.success", "next.done", "timestamp"):
        assert steps_a[col].tolist() == steps_b[col].tolist(), col
    lines = stdout.splitlines()
    assert "not imported: episode_uid (papo derives its own)" in lines
    assert "not imported: group_id (episodes metadata column; papo derives its own)" in lines
    assert (
        "not imported: snapshots (papo sidecar table: it refers to the source's episode_uids)"
        in lines
    )
