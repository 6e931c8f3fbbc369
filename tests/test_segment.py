"""`papo segment`: planning-action detection on real Meta-World rollouts, and on hand-built
episodes whose planning actions and scores are known in advance."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import create

from papo_data import Episode, open_dataset
from papo_data.cli import main
from papo_data.data.validate import validate
from papo_data.planning.segment import SegmentConfig, step_scores
from papo_data.schema import load
from papo_data.sim.collect import CollectConfig, collect

# Two pick-place groups hold both outcomes, the two reach groups only successes (checked below).
ROLLOUTS = CollectConfig(
    tasks=("pick-place-v3", "reach-v3"), groups=2, group_size=4, seed=0, max_steps=150
)

# Rows of planning_actions with what the checks need to know about their episode.
ROWS_QUERY = """
SELECT p.*, e.length, e.group_id,
       g.n_outcomes = 1 AS one_outcome
FROM planning_actions p
JOIN episodes e USING (episode_uid)
JOIN (SELECT group_id, count(DISTINCT success) AS n_outcomes FROM episodes GROUP BY group_id) g
    USING (group_id)
WHERE p.detector = $detector
ORDER BY p.episode_uid, p.rank
"""


# -- helpers ------------------------------------------------------------------------------


def segment_cli(
    path: Path, *args: str, capsys: pytest.CaptureFixture[str] | None = None
) -> tuple[int, str, str]:
    """Run `papo segment PATH ARGS` in-process: (exit code, stdout, stderr)."""
    try:
        code = main(["segment", str(path), *args])
    except SystemExit as e:  # argparse errors exit through SystemExit
        code = int(e.code or 0)
    if capsys is None:
        return code, "", ""
    out = capsys.readouterr()
    return code, out.out, out.err


def planning_rows(path: Path, detector: str) -> pl.DataFrame:
    with open_dataset(path) as ds:
        return ds.sql(ROWS_QUERY, {"detector": detector})


def stored(path: Path) -> pl.DataFrame:
    """The whole planning_actions table in key order."""
    with open_dataset(path) as ds:
        return ds.table("planning_actions")


def config_from_args(args: list[str]) -> SegmentConfig:
    """The SegmentConfig that `papo segment` builds from these flags."""
    fields: dict[str, object] = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        name = flag.removeprefix("--").replace("-", "_")
        default = getattr(SegmentConfig(), name)
        fields[name] = type(default)(value)
    return SegmentConfig(**fields)  # type: ignore[arg-type]


def expected_planning_actions(path: Path, cfg: SegmentConfig) -> dict[tuple[str, int], int]:
    """(episode_uid, frame_index) -> rank, from the per-step scores by the definition of DESIGN
    §3 written out in Python: local maxima over +-w frames (ties to the earliest frame), above
    the threshold, the top M per episode."""
    with open_dataset(path) as ds:
        scores = pl.from_arrow(step_scores(ds, cfg))
    assert isinstance(scores, pl.DataFrame)
    expected = {}
    for (uid,), ep in scores.drop_nulls("score").sort("frame_index").group_by("episode_uid"):
        frames = ep["frame_index"].to_list()
        s = dict(zip(frames, ep["score"].to_list(), strict=True))
        w = cfg.window
        peaks = [
            f
            for f in frames
            if s[f] > cfg.threshold
            and all(s[f] >= s[g] for g in range(f + 1, f + w + 1) if g in s)
            and all(s[f] > s[g] for g in range(f - w, f) if g in s)
        ]
        peaks.sort(key=lambda f: (-s[f], f))
        for rank, f in enumerate(peaks[: cfg.top_m], start=1):
            expected[(str(uid), f)] = rank
    return expected


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("segment") / "ds"
    collect(path, ROLLOUTS, workers=2)
    return path


@pytest.fixture
def dataset(collected: Path, tmp_path: Path) -> Path:
    """A fresh copy of the collected rollouts, for tests that write planning actions."""
    return Path(shutil.copytree(collected, tmp_path / "ds"))


def test_rollouts_hold_mixed_and_one_outcome_groups(collected: Path) -> None:
    with open_dataset(collected) as ds:
        groups = ds.sql(
            "SELECT group_id, bool_or(success) AND NOT bool_and(success) AS mixed "
            "FROM episodes GROUP BY group_id"
        )
    assert groups["mixed"].sum() >= 1, "need a group with both outcomes"
    assert (~groups["mixed"]).sum() >= 1, "need a group with one outcome"


def test_scores_of_one_group_are_its_rows_of_the_whole_dataset(collected: Path) -> None:
    """The figures score one group alone; every row must equal the whole-dataset row."""
    key = ["episode_uid", "frame_index"]
    with open_dataset(collected) as ds:
        groups = ds.sql("SELECT DISTINCT group_id FROM episodes")["group_id"]
        for cfg in (SegmentConfig(), SegmentConfig(detector="random", window=3, seed=4)):
            whole = pl.from_arrow(step_scores(ds, cfg))
            assert isinstance(whole, pl.DataFrame)
            parts = [pl.from_arrow(step_scores(ds, cfg, g)) for g in groups]
            assert sum(len(p) for p in parts) == len(whole)
            assert pl.concat(parts).sort(key).equals(whole.sort(key))
            # o_t is the group's: all null (one outcome) or none (both outcomes)
            assert all(p["outcome_score"].null_count() in (0, len(p)) for p in parts)


# -- real rollouts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--detector", "joint"],
        ["--detector", "variation"],
        ["--detector", "outcome"],
        ["--detector", "random"],
        ["--detector", "joint", "--window", "3", "--top-m", "2", "--threshold", "2", "--beta", "2"],
        ["--detector", "variation", "--window", "8", "--top-m", "5", "--switch-weight", "0"],
        ["--detector", "random", "--seed", "7", "--top-m", "4"],
    ],
    ids=lambda a: " ".join(a).replace("--", ""),
)
def test_detector_rows_are_well_formed(dataset: Path, args: list[str]) -> None:
    cfg = config_from_args(args)
    assert segment_cli(dataset, *args)[0] == 0
    assert validate(dataset) == []

    with open_dataset(dataset) as ds:
        target = load("planning_actions").arrow_schema(ds.dims)
    parts = sorted(dataset.glob("papo/planning_actions/*.parquet"))
    assert parts
    for part in parts:
        assert pq.read_schema(part).remove_metadata().equals(target.remove_metadata())

    rows = planning_rows(dataset, cfg.detector)
    assert len(rows) > 0
    assert set(rows["detector"]) == {cfg.detector}
    assert not rows.select("episode_uid", "frame_index").is_duplicated().any()
    for (uid,), ep in rows.group_by("episode_uid"):
        assert ep["rank"].to_list() == list(range(1, len(ep) + 1)), uid
        assert len(ep) <= cfg.top_m
        assert ep["score"].to_list() == sorted(ep["score"], reverse=True), uid
        frames = sorted(ep["frame_index"])
        # Non-max suppression: no two decisions within the window of each other.
        assert all(b - a > cfg.window for a, b in itertools.pairwise(frames)), uid
    # Only frames with a full window on both sides are candidates.
    assert (rows["frame_index"] >= cfg.window).all()
    assert (rows["frame_index"] <= rows["length"] - cfg.window).all()
    assert (rows["frame_index"] < rows["length"]).all()
    assert (
        rows["window"] == (rows["length"] - rows["frame_index"]).clip(upper_bound=cfg.window)
    ).all()
    assert (rows["score"] > cfg.threshold).all()
    # The outcome contrast exists exactly for groups holding both outcomes.
    assert (rows["outcome_score"].is_null() == rows["one_outcome"]).all()

    check_scores(rows, cfg)
    found = {
        (uid, frame): rank
        for uid, frame, rank in rows.select("episode_uid", "frame_index", "rank").iter_rows()
    }
    assert found == expected_planning_actions(dataset, cfg)


def check_scores(rows: pl.DataFrame, cfg: SegmentConfig) -> None:
    """Each detector's score is what DESIGN §3 says it is (up to float32 rounding)."""
    v = rows["variation_score"].cast(pl.Float64).to_numpy()
    o = rows["outcome_score"].cast(pl.Float64).fill_null(0).to_numpy()
    s = rows["score"].cast(pl.Float64).to_numpy()
    if cfg.detector == "joint":
        np.testing.assert_allclose(s, np.maximum(v, 0) * (1 + cfg.beta * o), rtol=1e-5)
    elif cfg.detector == "variation":
        np.testing.assert_allclose(s, v, rtol=1e-6)
    elif cfg.detector == "outcome":
        assert not rows["one_outcome"].any()
        np.testing.assert_allclose(s, o, rtol=1e-6)
    else:
        assert ((s > 0) & (s < 1)).all()


def test_outcome_detector_finds_actions_only_in_mixed_groups(dataset: Path) -> None:
    assert segment_cli(dataset, "--detector", "outcome")[0] == 0
    with open_dataset(dataset) as ds:
        per_episode = ds.sql(
            "SELECT e.episode_uid, g.mixed, count(p.frame_index) AS n FROM episodes e "
            "JOIN (SELECT group_id, bool_or(success) AND NOT bool_and(success) AS mixed "
            "      FROM episodes GROUP BY group_id) g USING (group_id) "
            "LEFT JOIN planning_actions p ON p.episode_uid = e.episode_uid "
            "AND p.detector = 'outcome' GROUP BY ALL"
        )
    assert (per_episode.filter(~pl.col("mixed"))["n"] == 0).all()
    assert (per_episode.filter(pl.col("mixed"))["n"] > 0).all()


@pytest.mark.parametrize("detector", ["joint", "outcome", "variation"])
def test_output_counts_actions_and_one_outcome_groups(
    dataset: Path, detector: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = segment_cli(dataset, "--detector", detector, capsys=capsys)
    assert code == 0 and err == ""
    with open_dataset(dataset) as ds:
        n_rows, n_with, n_episodes = ds.sql(
            "SELECT (SELECT count(*) FROM planning_actions WHERE detector = $d), "
            "(SELECT count(DISTINCT episode_uid) FROM planning_actions WHERE detector = $d), "
            "(SELECT count(*) FROM episodes)",
            {"d": detector},
        ).row(0)
        one_groups, one_episodes = ds.sql(
            "SELECT count(*), sum(n)::BIGINT FROM (SELECT count(*) AS n FROM episodes "
            "GROUP BY group_id HAVING count(DISTINCT success) = 1)"
        ).row(0)
    lines = out.splitlines()
    assert lines[0] == (
        f"{dataset}: {n_rows} planning actions ({detector}) in {n_with} of {n_episodes} episodes"
    )
    if detector == "variation":  # no outcome contrast involved, nothing to say about it
        assert len(lines) == 1
    else:
        assert len(lines) == 2
        assert lines[1].startswith(
            f"{one_groups} groups ({one_episodes} episodes) hold one outcome"
        )


def test_rerun_replaces_only_its_own_detector(dataset: Path) -> None:
    assert segment_cli(dataset, "--detector", "joint")[0] == 0
    joint = stored(dataset)
    assert segment_cli(dataset, "--detector", "joint")[0] == 0
    assert stored(dataset).equals(joint)

    assert segment_cli(dataset, "--detector", "variation")[0] == 0
    both = stored(dataset)
    assert both.filter(pl.col("detector") == "joint").equals(joint)
    assert len(both.filter(pl.col("detector") == "variation")) > 0

    assert segment_cli(dataset, "--detector", "joint", "--top-m", "1")[0] == 0
    after = stored(dataset)
    assert after.filter(pl.col("detector") == "joint").equals(joint.filter(pl.col("rank") == 1))
    assert after.filter(pl.col("detector") == "variation").equals(
        both.filter(pl.col("detector") == "variation")
    )
    assert validate(dataset) == []
    info = json.loads((dataset / "meta/info.json").read_text())
    assert info["papo"]["segment"]["joint"]["top_m"] == 1
    assert info["papo"]["segment"]["variation"]["top_m"] == SegmentConfig().top_m


def test_random_detector_is_seeded(dataset: Path) -> None:
    def random_rows(seed: int) -> pl.DataFrame:
        assert segment_cli(dataset, "--detector", "random", "--seed", str(seed))[0] == 0
        return stored(dataset)

    first = random_rows(1)
    assert random_rows(1).equals(first)
    other = random_rows(2)
    assert len(other) > 0
    frames = set(first.select("episode_uid", "frame_index").iter_rows())
    assert frames != set(other.select("episode_uid", "frame_index").iter_rows())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top-m", "0"], "--top-m must be at least 1"),
        (["--window", "0"], "--window must be at least 1"),
        (["--beta", "-1"], "--beta must be >= 0"),
        (["--threshold", "nan"], "--threshold must be a finite number"),
        (["--seed", "-3"], "--seed must be >= 0"),
        (["--detector", "bogus"], "invalid choice: 'bogus'"),
        (["--top-m", "two"], "invalid int value: 'two'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    dataset: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = segment_cli(dataset, *args, capsys=capsys)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert err.startswith("papo segment: error: ")
    assert "Traceback" not in err
    assert not (dataset / "papo/planning_actions").exists()


@pytest.mark.parametrize("kind", ["missing", "empty folder", "file"])
def test_a_path_that_is_not_a_dataset_exits_2(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x"
    if kind == "empty folder":
        path.mkdir()
    elif kind == "file":
        path.write_text("hello")
    code, out, err = segment_cli(path, capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"papo segment: error: {path}: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- hand-built episodes: the maths ---------------------------------------------------------

T, TURN, GRIP = 60, 30, 45


def turning_actions() -> np.ndarray:
    """Move along +x, turn sharply to +y at frame TURN, close the gripper at frame GRIP; z wobbles
    a little throughout so that the steady parts are not exactly constant."""
    t = np.arange(T)
    a = np.zeros((T, 4))
    a[:, 0] = np.where(t < TURN, 0.6, 0.0)
    a[:, 1] = np.where(t < TURN, 0.0, 0.6)
    a[:, 2] = 0.05 * np.sin(1.3 * t)
    a[:, 3] = np.where(t < GRIP, -1.0, 1.0)
    return a


def episode(uid: str, action: np.ndarray, group: str, success: bool) -> Episode:
    n = len(action)
    flags = np.zeros(n, dtype=bool)
    flags[-1] = success
    return Episode(
        episode_uid=uid,
        task="t0",
        observation_state=np.zeros((n, 3)),
        action=action,
        reward=flags.astype(float),
        success=flags,
        group_id=group,
        env_id="test/hand",
    )


def reference_variation(action: np.ndarray, w: int, switch_weight: float) -> np.ndarray:
    """v_t for t = w..T-w, straight from DESIGN §3: change between the mean continuous action of
    the w steps before t and of the w steps from t (distance and 1 - cosine), robust z-scores
    (median / 1.4826 MAD) within the episode, squashed to (0, 1) by (1 + z / (1 + |z|)) / 2;
    plus switch_weight times the nearness (w + 1 - d)+ to the nearest gripper switch, d frames
    away."""
    a = action.astype(np.float32).astype(np.float64)
    xyz, grip = a[:, :3], a[:, 3]
    frames = range(w, len(a) - w + 1)
    before = [xyz[t - w : t].mean(axis=0) for t in frames]
    after = [xyz[t : t + w].mean(axis=0) for t in frames]
    delta = np.array([np.linalg.norm(b - f) for b, f in zip(before, after, strict=True)])
    theta = np.array(
        [
            1 - b @ f / (np.linalg.norm(b) * np.linalg.norm(f))
            for b, f in zip(before, after, strict=True)
        ]
    )

    def robust_z(x: np.ndarray) -> np.ndarray:
        med = np.median(x)
        return (x - med) / (1.4826 * np.median(np.abs(x - med)) + 1e-6)

    switch = (np.abs(np.diff(grip)) > 0.5)[w - 1 : len(a) - w]
    switches = np.flatnonzero(switch)
    distance = np.array(
        [np.abs(switches - i).min() if len(switches) else np.inf for i in range(len(switch))]
    )
    z = (robust_z(delta) + robust_z(theta)) / 2
    return switch_weight * np.maximum(w + 1 - distance, 0) + (1 + z / (1 + np.abs(z))) / 2


@pytest.fixture
def turning(tmp_path: Path) -> Path:
    path = tmp_path / "turning"
    with create(path) as w:
        w.add_episode(episode("turn", turning_actions(), "g0", success=False))
    return path


def test_variation_puts_the_gripper_switch_first_then_the_sharp_turn(turning: Path) -> None:
    assert segment_cli(turning, "--detector", "variation")[0] == 0
    rows = planning_rows(turning, "variation")
    assert rows.select("frame_index", "rank").rows()[:2] == [(GRIP, 1), (TURN, 2)]
    assert validate(turning) == []
    # Without the switch term the sharp turn leads.
    assert segment_cli(turning, "--detector", "variation", "--switch-weight", "0")[0] == 0
    assert planning_rows(turning, "variation").row(0, named=True)["frame_index"] == TURN


@pytest.mark.parametrize(("window", "switch_weight"), [(5, 3.0), (3, 0.0), (8, 10.0)])
def test_variation_score_is_the_documented_formula(
    turning: Path, window: int, switch_weight: float
) -> None:
    cfg = SegmentConfig(detector="variation", window=window, switch_weight=switch_weight)
    with open_dataset(turning) as ds:
        got = step_scores(ds, cfg).sort_by("frame_index")
    assert got.column("frame_index").to_pylist() == list(range(window, T - window + 1))
    v = np.array(got.column("variation_score").to_pylist())
    np.testing.assert_allclose(
        v, reference_variation(turning_actions(), window, switch_weight), rtol=1e-6, atol=1e-4
    )
    np.testing.assert_allclose(got.column("score").to_pylist(), np.maximum(v, 0))
    assert got.column("outcome_score").null_count == len(got)  # a group of one: one outcome


def test_nearness_to_a_gripper_switch_adds_switch_weight_per_frame(turning: Path) -> None:
    with open_dataset(turning) as ds:
        plain, switched = (
            np.array(
                step_scores(ds, SegmentConfig(detector="variation", switch_weight=sw))
                .sort_by("frame_index")
                .column("variation_score")
                .to_pylist()
            )
            for sw in (0.0, 2.5)
        )
    added = switched - plain
    w = SegmentConfig().window
    frames = np.arange(w, w + len(added))  # row 0 is frame w
    nearness = np.maximum(w + 1 - np.abs(frames - GRIP), 0)  # w + 1 at the switch, 0 beyond w
    assert added == pytest.approx(2.5 * nearness, abs=1e-6)
    assert frames[np.argmax(added)] == GRIP


def test_equal_scores_within_the_window_go_to_the_earliest_frame(tmp_path: Path) -> None:
    """Constant motion with gripper switches at frames 20, 22 and 40: the switches score
    (w + 1) switch_weight + 1/2 (no action change: z = 0), 22 is suppressed by 20, the tie 20 vs
    40 ranks by frame, and the flat stretches (score 1/2) are not above the threshold."""
    action = np.tile([0.5, 0.25, -0.125, -1.0], (60, 1))
    action[20:22, 3] = 1.0
    action[40:, 3] = 1.0
    path = tmp_path / "ties"
    with create(path) as w:
        w.add_episode(episode("ties", action, "g0", success=False))
    assert segment_cli(path, "--detector", "variation", "--window", "5")[0] == 0
    rows = planning_rows(path, "variation")
    assert rows.select("frame_index", "rank", "score").rows() == [(20, 1, 6.5), (40, 2, 6.5)]


# Siblings act identically until DIVERGE; then the successful ones go +x and the failed -x.
DIVERGE, LENGTH = 20, 40


def sibling_actions(member: int, success: bool) -> np.ndarray:
    t = np.arange(LENGTH)
    a = np.zeros((LENGTH, 4))
    a[:, 0] = 0.3
    a[:, 1] = 0.2
    a[:, 2] = 0.05 * np.sin(0.7 * t)
    a[:, 3] = -1.0
    late = t >= DIVERGE
    a[late, 0] += (0.5 if success else -0.5) + 0.02 * member
    return a


def reference_contrast(
    ok: list[np.ndarray], ko: list[np.ndarray], t: int, w: int, n_frames: int
) -> float:
    """o_t: per action dim, squared difference of the successful and failed mean actions over
    frames t-w..t+w over their pooled variance (+0.01), averaged over dims, square root."""
    frames = slice(max(0, t - w), min(n_frames, t + w + 1))
    x_ok = np.concatenate([a.astype(np.float32)[frames] for a in ok]).astype(np.float64)
    x_ko = np.concatenate([a.astype(np.float32)[frames] for a in ko]).astype(np.float64)
    ss = ((x_ok - x_ok.mean(0)) ** 2).sum(0) + ((x_ko - x_ko.mean(0)) ** 2).sum(0)
    var = ss / max(len(x_ok) + len(x_ko) - 2, 1)
    return float(np.sqrt(np.mean((x_ok.mean(0) - x_ko.mean(0)) ** 2 / (var + 0.01))))


@pytest.fixture
def siblings(tmp_path: Path) -> Path:
    path = tmp_path / "siblings"
    with create(path) as w:
        for m, success in enumerate([True, True, False, False]):
            w.add_episode(episode(f"mix-{m}", sibling_actions(m, success), "mix", success))
        for m in range(2):  # a group where both rollouts failed
            w.add_episode(episode(f"solo-{m}", sibling_actions(m, False), "solo", False))
    return path


def test_outcome_contrast_is_the_documented_formula(siblings: Path) -> None:
    w, beta = 5, 1.5
    ok = [sibling_actions(m, True) for m in (0, 1)]
    ko = [sibling_actions(m, False) for m in (2, 3)]
    with open_dataset(siblings) as ds:
        scores = pl.from_arrow(step_scores(ds, SegmentConfig(window=w, beta=beta)))
    assert isinstance(scores, pl.DataFrame)
    solo = scores.filter(pl.col("episode_uid").str.starts_with("solo"))
    assert solo["outcome_score"].null_count() == len(solo) > 0
    mix = scores.filter(pl.col("episode_uid").str.starts_with("mix"))
    assert len(mix) == 4 * (LENGTH - 2 * w + 1)
    for frame, o in mix.select("frame_index", "outcome_score").iter_rows():
        assert o == pytest.approx(reference_contrast(ok, ko, frame, w, LENGTH), rel=1e-5, abs=1e-6)
        if frame + w < DIVERGE:  # the aligned frames all lie before the siblings part ways
            assert o == pytest.approx(0, abs=1e-6)
        else:
            assert o > 0.1
    v = scores["variation_score"].to_numpy()
    expected = np.maximum(v, 0) * (1 + beta * scores["outcome_score"].fill_null(0).to_numpy())
    np.testing.assert_allclose(scores["score"].to_numpy(), expected, rtol=1e-12)


def test_outcome_detector_acts_only_where_siblings_part_ways(siblings: Path) -> None:
    w = 4
    assert segment_cli(siblings, "--detector", "outcome", "--window", str(w))[0] == 0
    rows = planning_rows(siblings, "outcome")
    assert set(rows["episode_uid"]) == {f"mix-{m}" for m in range(4)}  # none in "solo"
    assert (rows["frame_index"] >= DIVERGE - w).all()
    with open_dataset(siblings) as ds:
        top = ds.sql(
            "SELECT max(outcome_score) FROM planning_actions WHERE detector = 'outcome'"
        ).item()
        best = step_scores(ds, SegmentConfig(detector="outcome", window=w)).column("score")
    assert top == pytest.approx(max(x for x in best.to_pylist() if x is not None), rel=1e-6)
    assert validate(siblings) == []


def test_a_robot_at_rest_gets_no_nan_scores(tmp_path: Path) -> None:
    action = turning_actions()
    action[:10, :3] = 0  # at rest for the first 10 frames, then moves off
    path = tmp_path / "rest"
    with create(path) as w:
        w.add_episode(episode("rest", action, "g0", success=False))
    assert segment_cli(path, "--detector", "variation")[0] == 0
    rows = planning_rows(path, "variation")
    assert not rows["score"].is_nan().any()
    assert validate(path) == []
