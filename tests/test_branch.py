"""The counterfactual branch engine on real Meta-World rollouts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from papo_data import open_dataset
from papo_data.branches.engine import branch_uid
from papo_data.branches.run import BranchConfig, branch
from papo_data.cli import main
from papo_data.data.validate import validate
from papo_data.planning.segment import SegmentConfig, segment
from papo_data.sim.collect import CollectConfig, collect

PAPO = str(Path(sys.executable).with_name("papo"))
ARGS = ["--k", "3", "--limit", "6"]
CFG = BranchConfig(k=3, limit=6)
ORDER = ["episode_uid", "frame_index", "intervention", "seed", "arm"]


def branches(path: Path) -> pl.DataFrame:
    with open_dataset(path) as ds:
        return ds.sql("select * from branches").sort(ORDER)


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two groups of pick-place rollouts, both holding successes and failures, segmented."""
    path = tmp_path_factory.mktemp("branch") / "segmented"
    cfg = CollectConfig(tasks=("pick-place-v3",), groups=2, group_size=4, max_steps=150)
    collect(path, cfg, workers=2)
    segment(path, SegmentConfig(top_m=2))
    return path


def fresh(segmented: Path, dest: Path) -> Path:
    shutil.copytree(segmented, dest)
    return dest


@pytest.fixture(scope="module")
def reference(segmented: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run, the yardstick of the other tests."""
    path = fresh(segmented, tmp_path_factory.mktemp("ref") / "ds")
    assert main(["branch", str(path), *ARGS, "--workers", "2"]) == 0
    return path


def test_branches_are_well_formed_and_valid(reference: Path) -> None:
    assert validate(reference) == []
    df = branches(reference)
    with open_dataset(reference) as ds:
        targets = ds.sql(
            "select episode_uid, frame_index from planning_actions "
            "where detector = 'joint' order by episode_uid, frame_index limit 6"
        )
    assert set(zip(df["episode_uid"], df["frame_index"], strict=True)) == set(
        zip(targets["episode_uid"], targets["frame_index"], strict=True)
    )
    # One replay arm per planning action, and every one reproduced the log exactly.
    replay = df.filter(pl.col("arm") == "replay")
    assert len(replay) == len(targets)
    assert replay["replay_exact"].to_list() == [True] * len(targets)
    assert df.filter(pl.col("arm") != "replay")["replay_exact"].null_count() == len(df) - len(
        replay
    )
    # Factual and alternative come in pairs per (action, intervention, seed), K seeds each.
    arms = df.filter(pl.col("arm") != "replay")
    pairs = arms.group_by("episode_uid", "frame_index", "intervention", "seed").agg(
        pl.col("arm").sort().alias("arms")
    )
    assert pairs["arms"].to_list() == [["alternative", "factual"]] * len(pairs)
    per_action = pairs.group_by("episode_uid", "frame_index", "intervention").len()
    assert per_action["len"].to_list() == [3] * len(per_action)
    assert set(arms["intervention"]) == {"hold", "noise", "sibling"}
    # The factual arm does not depend on the intervention (it is simulated once per seed).
    factual = arms.filter(pl.col("arm") == "factual")
    spread = factual.group_by("episode_uid", "frame_index", "seed").agg(
        pl.col("success").n_unique(), pl.col("return").n_unique(), pl.col("length").n_unique()
    )
    assert (spread.select(pl.exclude("episode_uid", "frame_index", "seed")) == 1).to_numpy().all()
    # branch_uid is the documented hash, and unique.
    assert df["branch_uid"].n_unique() == len(df)
    row = df.row(0, named=True)
    assert row["branch_uid"] == branch_uid(
        row["episode_uid"], row["frame_index"], row["intervention"], row["arm"], row["seed"]
    )
    # Lengths stay within the horizon; returns are finite.
    assert (df["frame_index"] + df["length"] <= 150).all()
    assert df["return"].is_finite().all()


def test_the_sibling_arm_needs_a_sibling_acting_through_the_window(reference: Path) -> None:
    """An opposite-outcome sibling that ended before t + W has no actions to give there: the
    arm is skipped (it once repeated the sibling's last action, labelled `sibling`)."""
    with open_dataset(reference) as ds:
        episodes = ds.sql("select episode_uid, group_id, success, length from episodes")
        actions = ds.sql(
            'select episode_uid, frame_index, "window" from planning_actions '
            "where detector = 'joint' order by episode_uid, frame_index limit 6"
        )
        branched = ds.sql(
            "select distinct episode_uid, frame_index from branches where intervention = 'sibling'"
        )
    expected, ended = set(), 0
    for a in actions.iter_rows(named=True):
        me = episodes.filter(pl.col("episode_uid") == a["episode_uid"]).row(0, named=True)
        others = episodes.filter(
            (pl.col("group_id") == me["group_id"]) & (pl.col("success") != me["success"])
        )
        through = others.filter(pl.col("length") >= a["frame_index"] + a["window"])
        if len(through):
            expected.add((a["episode_uid"], a["frame_index"]))
        ended += len(others) > 0 and len(through) == 0
    assert ended, "the fixture should hold an action after its opposite siblings ended"
    assert set(branched.iter_rows()) == expected


def test_replay_arm_matches_the_logged_outcome(reference: Path) -> None:
    with open_dataset(reference) as ds:
        check = ds.sql(
            "select b.success, e.success as logged, b.length, e.length - b.frame_index as rest "
            "from branches b join episodes e using (episode_uid) where b.arm = 'replay'"
        )
    assert check["success"].to_list() == check["logged"].to_list()
    assert check["length"].to_list() == check["rest"].to_list()


def test_budget_is_printed_and_stored(reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = json.loads((reference / "meta" / "info.json").read_text())
    budget = info["papo"]["branch_budget"]
    with open_dataset(reference) as ds:
        logged = ds.sql("select count(*) n from steps")["n"][0]
        df = ds.sql("select * from branches")
    # Factual arms are shared across interventions: counted once per seed.
    factual = df.filter(pl.col("arm") == "factual").unique(["episode_uid", "frame_index", "seed"])
    expected = int(factual["length"].sum() + df.filter(pl.col("arm") != "factual")["length"].sum())
    assert budget["branch_steps"] == expected
    assert budget["logged_steps"] == logged
    assert budget["ratio"] == pytest.approx(expected / logged, abs=1e-4)
    # A rerun simulates nothing, writes nothing, and says so.
    before = branches(reference)
    assert main(["branch", str(reference), *ARGS]) == 0
    out = capsys.readouterr().out
    assert "0 new branches (0 steps simulated now)" in out
    assert f"branch budget {expected} steps" in out
    assert branches(reference).equals(before)


def test_zero_noise_is_a_placebo_arm_for_arm(segmented: Path, tmp_path: Path) -> None:
    """With common random numbers, an intervention that changes nothing reproduces the factual
    arm exactly, seed by seed: success, return and length."""
    path = fresh(segmented, tmp_path / "placebo")
    branch(path, BranchConfig(k=3, limit=4, interventions=("noise",), noise_sigma=0.0))
    df = branches(path).filter(pl.col("arm") != "replay")
    wide = df.pivot(
        on="arm", index=["episode_uid", "frame_index", "seed"], values=["success", "return"]
    )
    assert len(wide) == 12
    assert wide["success_factual"].to_list() == wide["success_alternative"].to_list()
    assert wide["return_factual"].to_list() == wide["return_alternative"].to_list()


def test_sigkill_at_several_points_then_rerun_gives_the_uninterrupted_rows(
    segmented: Path, reference: Path, tmp_path: Path
) -> None:
    expected = branches(reference)
    for i, parts_before_kill in enumerate((0, 1, 3)):
        path = fresh(segmented, tmp_path / f"killed{i}")
        args = ["branch", str(path), *ARGS, "--commit-every", "1"]
        proc = subprocess.Popen([PAPO, *args], stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if len(list(path.glob("papo/branches/*.parquet"))) > parts_before_kill:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert validate(path) == [], f"kill {i}"
        with open_dataset(path) as ds:
            assert ds.sql("select count(*) n from branches")["n"][0] < len(expected), "too late"
        assert main(args) == 0
        got = branches(path)
        assert set(got["branch_uid"]) == set(expected["branch_uid"]), f"kill {i}"
        assert got.equals(expected), f"kill {i}"


def test_ray_backend_equals_local(segmented: Path, reference: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    path = fresh(segmented, tmp_path / "ray")
    try:
        assert main(["branch", str(path), *ARGS, "--backend", "ray", "--workers", "2"]) == 0
    finally:
        ray.shutdown()
    assert branches(path).equals(branches(reference))


def test_adaptive_stops_between_k_and_max_k_and_is_deterministic(
    segmented: Path, tmp_path: Path
) -> None:
    cfg = BranchConfig(
        k=2, max_k=6, adaptive=True, adaptive_step=2, tol=0.3, limit=4, interventions=("hold",)
    )
    first = fresh(segmented, tmp_path / "a1")
    summary = branch(first, cfg)
    df = branches(first).filter(pl.col("arm") == "alternative")
    seeds = df.group_by("episode_uid", "frame_index").len()["len"]
    assert len(seeds) == 4
    assert seeds.min() >= 2 and seeds.max() <= 6  # type: ignore[operator]
    # A second run gives the same rows, and a rerun on the same dataset adds none.
    second = fresh(segmented, tmp_path / "a2")
    branch(second, cfg)
    assert branches(second).equals(branches(first))
    again = branch(first, cfg)
    assert again.branches_written == 0 and again.simulated_steps == 0
    assert summary.branches_written == len(branches(first))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "0"], "--k must be at least 1"),
        (["--interventions", "hold,teleport"], "'teleport'"),
        (["--detector", "random"], "no planning actions of detector 'random'"),
        (["--adaptive", "--k", "16", "--max-k", "8"], "--max-k (8) must be at least --k (16)"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    segmented: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["branch", str(segmented), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(segmented.glob("papo/branches/*"))


def test_unsegmented_or_missing_dataset_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["branch", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_mixed_groups_only_branches_groups_with_both_outcomes(
    segmented: Path, tmp_path: Path
) -> None:
    path = fresh(segmented, tmp_path / "mixed")
    summary = branch(path, BranchConfig(k=1, interventions=("noise",), mixed_groups_only=True))
    with open_dataset(path) as ds:
        expected = ds.sql(
            "SELECT count(*) AS n FROM planning_actions pa JOIN episodes e USING (episode_uid) "
            "WHERE pa.detector = 'joint' AND e.group_id IN (SELECT group_id FROM episodes "
            "GROUP BY 1 HAVING min(success::INT) = 0 AND max(success::INT) = 1)"
        ).item()
        groups = ds.sql(
            "SELECT DISTINCT e.group_id, (SELECT count(DISTINCT success) FROM episodes x "
            "WHERE x.group_id = e.group_id) AS outcomes FROM branches b "
            "JOIN episodes e USING (episode_uid)"
        )
    assert summary.planning_actions == expected > 0
    assert (groups["outcomes"] == 2).all()


def test_limit_counts_planning_actions_of_the_audit_set(segmented: Path, tmp_path: Path) -> None:
    from papo_data.causal.amortized import audited

    path = fresh(segmented, tmp_path / "audit")
    cfg = BranchConfig(k=1, interventions=("hold",), audit_fraction=0.5, limit=3)
    summary = branch(path, cfg)
    with open_dataset(path) as ds:
        actions = ds.sql(
            "SELECT episode_uid, frame_index FROM planning_actions ORDER BY ALL"
        ).rows()
        branched = ds.sql("SELECT DISTINCT episode_uid, frame_index FROM branches").rows()
    audit_set = [a for a in actions if audited(*a, 0.5)]
    assert 3 < len(audit_set) < len(actions)
    assert summary.planning_actions == 3 and sorted(branched) == audit_set[:3]
