"""Figures of planning actions, drawn from real Meta-World rollouts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from papo_data import Dataset, open_dataset
from papo_data.errors import BadInput
from papo_data.planning.figures import action_trace, group_contrast
from papo_data.planning.segment import SegmentConfig, segment
from papo_data.sim.collect import CollectConfig, collect

# Two pick-place groups hold both outcomes, the two reach groups only successes.
ROLLOUTS = CollectConfig(
    tasks=("pick-place-v3", "reach-v3"), groups=2, group_size=4, seed=0, max_steps=150
)
ACTION_NAMES = ["dx", "dy", "dz", "gripper"]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    path = tmp_path_factory.mktemp("figures") / "ds"
    collect(path, ROLLOUTS, workers=2)
    segment(path, SegmentConfig(detector="joint"))
    segment(path, SegmentConfig(detector="outcome"))
    with open_dataset(path) as dataset:
        yield dataset


def groups(ds: Dataset, mixed: bool) -> list[str]:
    return ds.sql(
        "SELECT group_id FROM episodes GROUP BY group_id "
        "HAVING (bool_or(success) AND NOT bool_and(success)) = $mixed ORDER BY group_id",
        {"mixed": mixed},
    )["group_id"].to_list()


def an_episode(ds: Dataset, success: bool, mixed: bool = True) -> dict[str, object]:
    group = groups(ds, mixed)[0]
    return ds.sql(
        "SELECT * FROM episodes WHERE group_id = $g AND success = $s ORDER BY episode_index",
        {"g": group, "s": success},
    ).row(0, named=True)


def planning_rows(ds: Dataset, uid: object, detector: str) -> list[tuple[int, int, int, float]]:
    return ds.sql(
        'SELECT frame_index, "window", rank, score FROM planning_actions '
        "WHERE episode_uid = $u AND detector = $d ORDER BY rank",
        {"u": uid, "d": detector},
    ).rows()


def xdata(line: Line2D) -> np.ndarray:
    return np.asarray(line.get_xdata(), dtype=float)


def vertical_lines_at(ax: Axes) -> list[float]:
    return [float(x[0]) for x in map(xdata, ax.lines) if len(x) == 2 and x[0] == x[1]]


def spans(ax: Axes) -> list[tuple[float, float]]:
    """Horizontal extents of the shaded windows (axvspan draws rectangles)."""
    assert all(isinstance(p, Rectangle) for p in ax.patches)
    return sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax.patches)  # type: ignore[attr-defined]


def png(fig: Figure, path: Path) -> np.ndarray:
    """Save as PNG; the decoded image."""
    fig.savefig(path, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path)


def test_action_trace_shades_each_planning_action(ds: Dataset, tmp_path: Path) -> None:
    ep = an_episode(ds, success=True)
    plans = planning_rows(ds, ep["episode_uid"], "joint")
    assert plans, "the joint detector found planning actions in this episode"
    fig = action_trace(ds, str(ep["episode_uid"]))
    assert len(fig.axes) == len(ACTION_NAMES)
    assert [ax.get_ylabel() for ax in fig.axes] == ACTION_NAMES
    for ax in fig.axes:
        assert len(xdata(ax.lines[0])) == ep["length"]
        assert spans(ax) == sorted((f - 0.5, f + w - 0.5) for f, w, _, _ in plans)
        assert vertical_lines_at(ax) == [ep["first_success_frame"]]
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert labels == {f"#{rank} {score:.3g}" for _, _, rank, score in plans}
    image = png(fig, tmp_path / "trace.png")
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not a blank canvas
    assert (tmp_path / "trace.png").stat().st_size > 20_000


def test_action_trace_of_a_failure_has_no_success_line(ds: Dataset) -> None:
    ep = an_episode(ds, success=False)
    fig = action_trace(ds, str(ep["episode_uid"]), detector="outcome")
    n_plans = len(planning_rows(ds, ep["episode_uid"], "outcome"))
    assert n_plans > 0
    for ax in fig.axes:
        assert vertical_lines_at(ax) == []
        assert len(ax.patches) == n_plans
    assert f"failed after {ep['length']} frames" in suptitle(fig)


def test_action_trace_without_planning_actions_says_so(ds: Dataset) -> None:
    ep = an_episode(ds, success=True, mixed=False)
    no_contrast = action_trace(ds, str(ep["episode_uid"]), detector="outcome")
    assert all(len(ax.patches) == 0 for ax in no_contrast.axes)
    assert suptitle(no_contrast).endswith("no planning actions (outcome)")
    never_run = action_trace(ds, str(ep["episode_uid"]), detector="random")
    assert all(len(ax.patches) == 0 for ax in never_run.axes)
    assert "run `papo segment --detector random`" in suptitle(never_run)


def suptitle(fig: Figure) -> str:
    title = fig.get_suptitle()
    assert title
    return title


def test_group_contrast_of_a_mixed_group(ds: Dataset, tmp_path: Path) -> None:
    group = groups(ds, mixed=True)[0]
    fig = group_contrast(ds, group)
    assert len(fig.axes) == len(ACTION_NAMES) + 1
    assert [ax.get_ylabel() for ax in fig.axes[:-1]] == ACTION_NAMES
    for ax in fig.axes[:-1]:  # a mean line and a +-std band per outcome
        assert [line.get_color() for line in ax.lines] == ["tab:green", "tab:red"]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2
    contrast = fig.axes[-1]
    line = contrast.lines[0]
    o = np.asarray(line.get_ydata(), dtype=float)
    assert len(o) > 10 and (o >= 0).all() and o.max() > 0
    # The curve is the o_t that the joint detector stored at its planning actions.
    at = dict(zip(xdata(line).astype(int).tolist(), o.tolist(), strict=True))
    stored = ds.sql(
        "SELECT frame_index, outcome_score FROM planning_actions JOIN episodes USING "
        "(episode_uid) WHERE group_id = $g AND detector = 'joint' AND frame_index < "
        "(SELECT min(length) FROM episodes WHERE group_id = $g AND success)",
        {"g": group},
    ).rows()
    assert stored
    for frame, score in stored:
        assert at[frame] == pytest.approx(score, rel=1e-6)
    ticks = [ln for ln in contrast.lines if ln.get_marker() == "|"]
    n_plans = ds.sql(
        "SELECT count(*) FROM planning_actions JOIN episodes USING (episode_uid) "
        "WHERE group_id = $g AND detector = 'joint'",
        {"g": group},
    ).item()
    assert sum(len(xdata(t)) for t in ticks) == n_plans
    image = png(fig, tmp_path / "group.png")
    assert image[..., :3].std() > 0.05


def test_group_contrast_of_a_one_outcome_group_says_so(ds: Dataset) -> None:
    fig = group_contrast(ds, groups(ds, mixed=False)[0])
    assert len(fig.axes) == len(ACTION_NAMES) + 1
    for ax in fig.axes[:-1]:
        assert [line.get_color() for line in ax.lines] == ["tab:green"]
    texts = [t.get_text() for t in fig.axes[-1].texts]
    assert texts == ["one outcome in this group: no outcome contrast"]
    assert all(ln.get_marker() == "|" for ln in fig.axes[-1].lines)


def test_unknown_names_are_bad_input(ds: Dataset) -> None:
    with pytest.raises(BadInput, match="episode_uid 'nope' is not in episodes"):
        action_trace(ds, "nope")
    with pytest.raises(BadInput, match="group_id 'nope' is not in episodes"):
        group_contrast(ds, "nope")
    uid = str(an_episode(ds, success=True)["episode_uid"])
    with pytest.raises(BadInput, match="detector must be one of"):
        action_trace(ds, uid, detector="bogus")
