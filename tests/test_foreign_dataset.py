"""A dataset written by another program from DESIGN §2 alone (polars, pandas and json; not our
writer) must validate and answer queries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

FPS = 50
S, A = 5, 4


def build_foreign(root: Path, lengths: list[int]) -> int:
    rng = np.random.default_rng(11)
    (root / "data/chunk-000").mkdir(parents=True)
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    tasks = ["open the drawer", "press the button"]
    steps, episodes, start = [], [], 0
    for e, n in enumerate(lengths):
        success = np.zeros(n, dtype=bool)
        success[-1] = e % 2 == 0
        reward = rng.random(n).astype(np.float32)
        uid = f"foreign-{e}"
        steps.append(
            pl.DataFrame(
                {
                    "index": np.arange(start, start + n),
                    "episode_index": np.full(n, e),
                    "frame_index": np.arange(n),
                    "timestamp": (np.arange(n) / FPS).astype(np.float32),
                    "task_index": np.full(n, e % 2),
                    "observation.state": rng.normal(size=(n, S)).astype(np.float32),
                    "action": rng.normal(size=(n, A)).astype(np.float32),
                    "next.reward": reward,
                    "next.done": np.arange(n) == n - 1,
                    "next.success": success,
                    "episode_uid": [uid] * n,
                    "policy.log_prob": rng.normal(size=(n, A)).astype(np.float32),
                }
            )
        )
        episodes.append(
            {
                "episode_index": e,
                "tasks": [tasks[e % 2]],
                "length": n,
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": start,
                "dataset_to_index": start + n,
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
                "episode_uid": uid,
                "task_index": e % 2,
                "group_id": f"grp-{e // 2}",
                "group_member": e % 2,
                "env_id": "metaworld/drawer-open-v3",
                "policy_id": "somebody-elses-policy",
                "init_seed": e // 2,
                "policy_seed": e,
                "success": bool(success.any()),
                "return": float(reward.sum()),
                "first_success_frame": n - 1 if success.any() else None,
            }
        )
        start += n
    pl.concat(steps).write_parquet(root / "data/chunk-000/file-000.parquet")
    pl.DataFrame(
        episodes, schema_overrides={"group_member": pl.Int32, "return": pl.Float32}
    ).write_parquet(root / "meta/episodes/chunk-000/file-000.parquet")
    pd.DataFrame({"task_index": [0, 1]}, index=pd.Index(tasks, name="task")).to_parquet(
        root / "meta/tasks.parquet"
    )

    def feature(dtype: str, shape: int, names: list[str] | None = None) -> dict:
        return {"dtype": dtype, "shape": [shape], "names": names}

    state_names = [f"q{i}" for i in range(S)]
    action_names = ["x", "y", "z", "grip"]
    info = {
        "codebase_version": "v3.0",
        "robot_type": "sawyer",
        "total_episodes": len(lengths),
        "total_frames": start,
        "total_tasks": 2,
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "fps": FPS,
        "splits": {"train": f"0:{len(lengths)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": None,
        "features": {
            "index": feature("int64", 1),
            "episode_index": feature("int64", 1),
            "frame_index": feature("int64", 1),
            "timestamp": feature("float32", 1),
            "task_index": feature("int64", 1),
            "observation.state": feature("float32", S, state_names),
            "action": feature("float32", A, action_names),
            "next.reward": feature("float32", 1),
            "next.done": feature("bool", 1),
            "next.success": feature("bool", 1),
            "episode_uid": feature("string", 1),
            "policy.log_prob": feature("float32", A, action_names),
        },
        "papo": {
            "schema_version": "1.0.0",
            "env": "metaworld",
            "state_names": state_names,
            "action_names": action_names,
        },
    }
    (root / "meta/info.json").write_text(json.dumps(info))
    return start


def papo(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("papo")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)


def test_foreign_dataset_validates_and_answers(tmp_path: Path) -> None:
    root = tmp_path / "foreign"
    frames = build_foreign(root, [7, 3, 12, 5])
    checked = papo("validate", str(root))
    assert checked.returncode == 0, checked.stderr
    counted = papo("sql", str(root), "select count(*) as n from steps", "--format", "csv")
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.splitlines() == ["n", str(frames)]
    joined = papo(
        "sql",
        str(root),
        "select t.task, count(*) as frames from steps s join tasks t using (task_index) "
        "group by all order by 1",
        "--format",
        "json",
    )
    assert json.loads(joined.stdout) == [
        {"task": "open the drawer", "frames": 19},
        {"task": "press the button", "frames": 8},
    ]
