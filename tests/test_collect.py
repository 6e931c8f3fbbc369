"""Rollout collection on the real Meta-World simulator."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from papo_data import open_dataset
from papo_data.cli import main
from papo_data.data.validate import validate
from papo_data.schema import TABLES, load
from papo_data.sim.collect import CollectConfig, collect, make_env
from papo_data.sim.replay import ReplayMismatch, replay_to

SMALL = CollectConfig(tasks=("pick-place-v3", "reach-v3"), groups=2, group_size=3, max_steps=120)
PAPO = str(Path(sys.executable).with_name("papo"))


def tables(path: Path) -> dict[str, pa.Table]:
    with open_dataset(path) as ds:
        return {
            t: ds.arrow(
                f"select * from {t} order by " + ", ".join(f'"{c}"' for c in load(t).order_by)
            )
            for t in TABLES
        }


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("collect") / "ds"
    collect(path, SMALL, workers=2)
    return path


def test_collection_is_valid_and_complete(collected: Path) -> None:
    assert validate(collected) == []
    with open_dataset(collected) as ds:
        eps = ds.sql("select * from episodes order by episode_index")
        assert len(eps) == 12
        assert eps["group_id"].n_unique() == 4
        assert set(eps["env_id"]) == {"metaworld/pick-place-v3", "metaworld/reach-v3"}
        tasks = ds.sql("select task from tasks")["task"].to_list()
        assert len(tasks) == 2 and all(len(t) > 10 for t in tasks)
        # Frame 0 and every 25 frames are checkpointed.
        per_episode = ds.sql(
            "select e.episode_uid, e.length, list(s.frame_index order by s.frame_index) frames "
            "from episodes e join snapshots s using (episode_uid) group by all"
        )
        for row in per_episode.iter_rows(named=True):
            assert row["frames"] == list(range(0, row["length"], 25))
        assert ds.info["papo"]["episode_end"] == "first_success"


def test_same_command_twice_gives_identical_tables(collected: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    collect(again, SMALL, workers=1)
    first, second = tables(collected), tables(again)
    for t in TABLES:
        assert first[t].equals(second[t]), t


def test_rerun_skips_what_is_there(collected: Path) -> None:
    before = tables(collected)
    assert collect(collected, SMALL) == {"written": 0, "skipped": 12}
    assert tables(collected)["steps"].equals(before["steps"])


def test_noisy_expert_gives_both_outcomes_within_groups(tmp_path: Path) -> None:
    cfg = CollectConfig(tasks=("pick-place-v3",), groups=3, group_size=8)
    collect(tmp_path / "pp", cfg, workers=2)
    with open_dataset(tmp_path / "pp") as ds:
        mixed = ds.sql(
            "select group_id from episodes group by group_id "
            "having bool_or(success) and not bool_and(success)"
        )
    assert len(mixed) >= 2, "default noise should give successes and failures within groups"


def test_ray_backend_gives_the_same_tables(collected: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    try:
        collect(tmp_path / "ray", SMALL, workers=2, backend="ray")
    finally:
        ray.shutdown()
    first, second = tables(collected), tables(tmp_path / "ray")
    for t in TABLES:
        assert first[t].equals(second[t]), t


def test_sigkill_mid_collect_leaves_a_valid_dataset_and_a_rerun_completes(
    collected: Path, tmp_path: Path
) -> None:
    path = tmp_path / "killed"
    args = [
        "collect",
        str(path),
        "--tasks",
        "pick-place-v3,reach-v3",
        "--groups",
        "2",
        "--group-size",
        "3",
        "--max-steps",
        "120",
    ]
    proc = subprocess.Popen([PAPO, *args], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(path.glob("papo/snapshots/*.parquet")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert validate(path) == []
    with open_dataset(path) as ds:
        assert ds.info["total_episodes"] < 12, "killed too late to test anything"
    assert main(args) == 0
    first, second = tables(collected), tables(path)
    for t in TABLES:
        assert first[t].equals(second[t]), t


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "no-such-task-v3"], "unknown task 'no-such-task-v3'"),
        (["--tasks", "reach-v3", "--groups", "-2"], "--groups must be at least 1"),
        (["--tasks", "reach-v3", "--noise", "-0.1"], "--noise must be a number >= 0"),
        (["--tasks", "reach-v3", "--group-size", "0"], "--group-size must be at least 1"),
        (["--tasks", "reach-v3", "--env", "atari"], "--env 'atari' is not supported"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = subprocess.run(
        [PAPO, "collect", str(tmp_path / "x"), *args], capture_output=True, text=True, check=False
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"papo collect: error: {message}"] or (
        len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
    )
    assert not (tmp_path / "x").exists()


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = subprocess.run(
        [PAPO, "collect", str(blocker / "ds"), "--tasks", "reach-v3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_replay_reaches_random_frames_exactly(collected: Path) -> None:
    env = make_env("metaworld")
    rng = np.random.default_rng(0)
    with open_dataset(collected) as ds:
        episodes = ds.sql("select episode_uid, length from episodes order by episode_index").rows()
        for uid, length in episodes:
            for frame in {0, 25 if length > 25 else 0, length - 1, int(rng.integers(0, length))}:
                obs = replay_to(env, ds, uid, frame)
                logged = ds.sql(
                    'select "observation.state" s from steps '
                    "where episode_uid = $u and frame_index = $f",
                    {"u": uid, "f": frame},
                )["s"][0].to_numpy()
                assert np.array_equal(obs.astype(np.float32), logged)


def test_replay_names_the_first_frame_that_differs(collected: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(collected, broken)
    data = broken / "data/chunk-000/file-000.parquet"
    table = pq.read_table(data)
    states = np.stack(table.column("observation.state").to_numpy(zero_copy_only=False))
    states[30, 0] += 1e-6  # frame 30 of the first episode (pick-place, fails at 120 steps)
    flat = pa.array(states.reshape(-1), pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, states.shape[1])
    index = table.schema.get_field_index("observation.state")
    pq.write_table(table.set_column(index, "observation.state", column), data)
    with open_dataset(broken) as ds:
        uid, length = ds.sql(
            "select episode_uid, length from episodes where episode_index = 0"
        ).row(0)
        assert length > 40
        with pytest.raises(ReplayMismatch, match=f"episode '{uid}': frame 30: observation differs"):
            replay_to(make_env("metaworld"), ds, uid, 40)
