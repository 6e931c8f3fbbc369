"""Figures of planning actions, for notebooks and the HTML report.

Each function reads what it needs with SQL and returns a `matplotlib.figure.Figure` built without
pyplot (no global state, any backend): show it in Jupyter or `fig.savefig("x.png")`.

- `action_trace(ds, episode_uid, detector)`: one episode's actions over its frames, the planning
  actions of a detector shaded over their windows, the first successful frame marked.
- `group_contrast(ds, group_id, detector)`: within one GRPO group, the mean +- std action of the
  successful and of the failed siblings per frame, and the outcome contrast o_t.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.errors import BadInput
from papo_data.planning.segment import DETECTORS, SegmentConfig, step_scores

OUTCOME_COLOUR = {True: "tab:green", False: "tab:red"}
OUTCOME_WORD = {True: "succeeded", False: "failed"}
ACTION_COLOUR = "tab:blue"
PLAN_COLOUR = "tab:orange"
PANEL_HEIGHT = 1.4  # inches per subplot


# -- reading --------------------------------------------------------------------------------


def action_names(ds: Dataset) -> list[str]:
    """Names of the action dims (info.json papo.action_names), a0, a1, ... when not recorded."""
    names = ds.info.get("papo", {}).get("action_names")
    return list(names) if names else [f"a{i}" for i in range(ds.dims["action_dim"])]


def recorded_config(ds: Dataset, detector: str) -> SegmentConfig:
    """The settings `detector` last ran with on this dataset (info.json papo.segment), or the
    defaults when it has not run."""
    record = ds.info.get("papo", {}).get("segment", {}).get(detector, {})
    known = {f.name for f in fields(SegmentConfig)}
    return SegmentConfig(**{k: v for k, v in record.items() if k in known} | {"detector": detector})


def _check_detector(detector: str, ds: object) -> None:
    if not isinstance(ds, Dataset):  # a path, say: the figures read an open dataset
        raise BadInput(f"give an open dataset, papo_data.open_dataset({str(ds)!r}), not {ds!r}")
    if detector not in DETECTORS:
        raise BadInput(f"detector must be one of {', '.join(DETECTORS)}: {detector!r}")


def _episode(ds: Dataset, episode_uid: str) -> dict[str, Any]:
    rows = ds.sql(
        "SELECT episode_uid, group_id, length, success, first_success_frame "
        "FROM episodes WHERE episode_uid = $uid",
        {"uid": episode_uid},
    )
    if rows.is_empty():
        raise BadInput(f"{ds.root}: episode_uid {episode_uid!r} is not in episodes")
    return rows.row(0, named=True)


def _actions(ds: Dataset, episode_uid: str) -> np.ndarray:
    """The episode's actions as a (frames, action dims) array."""
    table = ds.arrow(
        "SELECT action FROM steps WHERE episode_uid = $uid ORDER BY frame_index",
        {"uid": episode_uid},
    )
    flat = table.column("action").combine_chunks().flatten().to_numpy()
    return flat.reshape(table.num_rows, ds.dims["action_dim"])


def _planning_actions(ds: Dataset, episode_uid: str, detector: str) -> pl.DataFrame:
    return ds.sql(
        'SELECT frame_index, "window", score, rank FROM planning_actions '
        "WHERE episode_uid = $uid AND detector = $detector ORDER BY rank",
        {"uid": episode_uid, "detector": detector},
    )


def _has_run(ds: Dataset, detector: str) -> bool:
    return detector in ds.info.get("papo", {}).get("segment", {})


# -- action trace ---------------------------------------------------------------------------


def action_trace(ds: Dataset, episode_uid: str, detector: str = "joint") -> Figure:
    """One episode's action dims over its frames (one panel each), with the planning actions of
    `detector` shaded over their windows [frame, frame + window) and labelled `#rank score`, and
    the first successful frame marked by a dashed line."""
    _check_detector(detector, ds)
    episode = _episode(ds, episode_uid)
    actions = _actions(ds, episode_uid)
    plans = _planning_actions(ds, episode_uid, detector)
    names = action_names(ds)

    fig = Figure(figsize=(9, 1 + PANEL_HEIGHT * len(names)), layout="constrained")
    axes: list[Axes] = list(fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0])
    frames = np.arange(len(actions))
    success_frame = episode["first_success_frame"]
    for dim, ax in enumerate(axes):
        ax.plot(frames, actions[:, dim], color=ACTION_COLOUR, lw=1)
        ax.set_ylabel(names[dim])
        _shade_windows(ax, plans)
        if success_frame is not None:
            ax.axvline(success_frame, color=OUTCOME_COLOUR[True], ls="--", lw=1)
    _label_windows(axes[0], plans)
    axes[-1].set_xlim(-0.5, len(actions) - 0.5)
    axes[-1].set_xlabel("frame")
    axes[0].legend(handles=_trace_legend(detector), loc="upper right", fontsize=8)
    fig.suptitle(_trace_title(ds, episode, detector, len(plans)))
    return fig


def _shade_windows(ax: Axes, plans: pl.DataFrame) -> None:
    """A planning action covers frames frame .. frame + window - 1: shade from half a frame
    before the first to half a frame after the last."""
    for frame, window in plans.select("frame_index", "window").iter_rows():
        ax.axvspan(frame - 0.5, frame + window - 0.5, color=PLAN_COLOUR, alpha=0.25, lw=0)


def _label_windows(ax: Axes, plans: pl.DataFrame) -> None:
    for frame, score, rank in plans.select("frame_index", "score", "rank").iter_rows():
        ax.annotate(
            f"#{rank} {score:.3g}",
            xy=(frame - 0.5, 0.97),
            xycoords=("data", "axes fraction"),
            va="top",
            fontsize=8,
        )


def _trace_legend(detector: str) -> list[Patch | Line2D]:
    return [
        Patch(color=PLAN_COLOUR, alpha=0.25, label=f"planning action ({detector})"),
        Line2D([], [], color=OUTCOME_COLOUR[True], ls="--", lw=1, label="first success"),
    ]


def _trace_title(ds: Dataset, episode: dict[str, Any], detector: str, n_plans: int) -> str:
    if episode["success"]:
        outcome = f"success at frame {episode['first_success_frame']}"
    else:
        outcome = f"failed after {episode['length']} frames"
    if n_plans:
        found = f"{n_plans} planning actions ({detector})"
    elif not _has_run(ds, detector):
        found = f"no planning actions: run `papo segment --detector {detector}`"
    else:
        found = f"no planning actions ({detector})"
    return f"{episode['episode_uid']}: {outcome}; {found}"


# -- group contrast -------------------------------------------------------------------------


def group_contrast(ds: Dataset, group_id: str, detector: str = "joint") -> Figure:
    """For one GRPO group: per action dim, the mean +- std over frames of the successful and of
    the failed siblings (among those still running), and a bottom panel with the outcome
    contrast o_t of the group (settings of the last joint run) and ticks at the planning
    actions of `detector` of the successful and failed siblings."""
    _check_detector(detector, ds)
    counts = _outcome_counts(ds, group_id)
    names = action_names(ds)
    stats = ds.sql(
        sql_text(__file__, "group_action_stats.sql"),
        {"group_id": group_id, "n_dims": len(names)},
    )

    fig = Figure(figsize=(9, 1 + PANEL_HEIGHT * (len(names) + 1)), layout="constrained")
    axes: list[Axes] = list(fig.subplots(len(names) + 1, 1, sharex=True, squeeze=False)[:, 0])
    for dim, ax in enumerate(axes[:-1]):
        for success in counts:
            _mean_band(ax, stats.filter((pl.col("dim") == dim) & (pl.col("success") == success)))
        ax.set_ylabel(names[dim])
    axes[0].legend(
        handles=[
            Line2D([], [], color=OUTCOME_COLOUR[s], label=f"{OUTCOME_WORD[s]} (n={n})")
            for s, n in counts.items()
        ],
        loc="upper right",
        fontsize=8,
    )
    _contrast_panel(axes[-1], ds, group_id, stats.filter(pl.col("dim") == 0))
    _planning_ticks(axes[-1], ds, group_id, detector)
    axes[-1].set_xlabel("frame")
    outcomes = ", ".join(f"{n} {OUTCOME_WORD[s]}" for s, n in counts.items())
    fig.suptitle(f"{group_id}: {outcomes}; mean ± std of the siblings still running")
    return fig


def _outcome_counts(ds: Dataset, group_id: str) -> dict[bool, int]:
    """Number of successful and failed siblings, successes first; outcomes absent are left out."""
    rows = ds.sql(
        "SELECT success, count(*) AS n FROM episodes WHERE group_id = $group_id "
        "GROUP BY success ORDER BY success DESC",
        {"group_id": group_id},
    )
    if rows.is_empty():
        raise BadInput(f"{ds.root}: group_id {group_id!r} is not in episodes")
    return {bool(s): int(n) for s, n in rows.iter_rows()}


def _mean_band(ax: Axes, stats: pl.DataFrame) -> None:
    """A line at the mean and a band of +- one standard deviation, coloured by outcome."""
    colour = OUTCOME_COLOUR[bool(stats["success"][0])]
    x, mean, std = (stats[c].to_numpy() for c in ("frame_index", "mean", "std"))
    ax.plot(x, mean, color=colour, lw=1)
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, lw=0)


def outcome_contrast(ds: Dataset, group_id: str) -> pl.DataFrame:
    """o_t of a group per frame (columns frame_index, outcome_score), with the settings of the
    last joint run; empty when the group holds one outcome."""
    scores = pl.from_arrow(step_scores(ds, recorded_config(ds, "joint"), group_id))
    assert isinstance(scores, pl.DataFrame)
    return (
        scores.drop_nulls("outcome_score")
        .group_by("frame_index")
        .agg(pl.col("outcome_score").first())  # o_t is the group's: equal across siblings
        .sort("frame_index")
    )


def _contrast_panel(ax: Axes, ds: Dataset, group_id: str, stats: pl.DataFrame) -> None:
    """o_t at the frames where siblings of both outcomes are still running (elsewhere the
    detector takes it as 0: there is nothing to compare)."""
    both = stats.group_by("frame_index").agg(pl.col("success").n_unique().alias("outcomes"))
    frames = both.filter(pl.col("outcomes") == 2).select("frame_index")
    if frames.is_empty():
        ax.text(
            0.5,
            0.7,
            "one outcome in this group: no outcome contrast",
            transform=ax.transAxes,
            ha="center",
            color="grey",
        )
        ax.set_yticks([])
    else:
        contrast = outcome_contrast(ds, group_id).join(frames, on="frame_index")
        ax.plot(contrast["frame_index"], contrast["outcome_score"], color="black", lw=1)
    ax.set_ylabel("outcome\ncontrast $o_t$")


def _planning_ticks(ax: Axes, ds: Dataset, group_id: str, detector: str) -> None:
    """A tick at the bottom of the panel at each planning action of the group's siblings."""
    plans = ds.sql(
        "SELECT p.frame_index, e.success FROM planning_actions p "
        "JOIN episodes e USING (episode_uid) "
        "WHERE e.group_id = $group_id AND p.detector = $detector",
        {"group_id": group_id, "detector": detector},
    )
    for success in (True, False):
        frames = plans.filter(pl.col("success") == success)["frame_index"].to_numpy()
        if len(frames):
            ax.plot(
                frames,
                np.zeros(len(frames)),
                ls="none",
                marker="|",
                markersize=14,
                color=OUTCOME_COLOUR[success],
                label=f"planning actions ({detector}), {OUTCOME_WORD[success]}",
            )
    if len(plans):
        ax.legend(loc="upper right", fontsize=8)
