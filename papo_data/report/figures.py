"""Figures of the HTML report that `papo_data.planning.figures` does not already draw.

Each function takes a polars frame (read by `papo_data.report.build` with the SQL beside it)
and returns a `matplotlib.figure.Figure` built without pyplot, so there is no global figure
state; `png_data_uri` renders one with Agg into a `data:` URI and releases it.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from papo_data.branches.engine import INTERVENTIONS
from papo_data.causal.paired import proportion_interval

DPI = 144  # pixels per inch of the PNGs; the page shows them at 96 CSS px per inch
PALETTE = ("tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive")
ARM_COLOUR = {"factual": "tab:gray", "replay": "tab:cyan"}
METHOD_MARKER = {"paired": "o", "bounds": "s", "amortized": "^"}
JITTER_SEED = 0
DODGE = 0.012  # PN units between series of the PN/PS scatter


def png_data_uri(fig: Figure, dpi: int = DPI) -> tuple[str, int, int]:
    """(data URI, width px, height px) of the figure as a PNG. Same figure, same bytes: the PNG
    carries no software or date metadata."""
    FigureCanvasAgg(fig)  # render with Agg whatever backend the session uses
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    width, height = (round(v * dpi) for v in fig.get_size_inches())
    fig.clear()  # release the artists now: a report draws many figures
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"data:image/png;base64,{data}", width, height


def intervention_colours(interventions: list[str]) -> dict[str, str]:
    """A stable colour per intervention: the built-in ones always get the same colour, any
    other follows in sorted order."""
    others = sorted(set(interventions) - set(INTERVENTIONS))
    order = [*INTERVENTIONS, *others]
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(order)}


# -- PN vs PS -------------------------------------------------------------------------------


def pn_ps_scatter(points: pl.DataFrame) -> Figure:
    """PN against PS, one point per planning action and intervention with both defined, error
    bars spanning their intervals, coloured by intervention (marker by method when the table
    holds several)."""
    defined = points.drop_nulls(["pn", "ps"])
    colours = intervention_colours(points["intervention"].unique().to_list())
    fig = Figure(figsize=(6.5, 5.2), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="lightgrey", lw=1, zorder=0)
    several = defined["method"].n_unique() > 1
    series = defined.sort("method", "intervention").partition_by(
        "method", "intervention", maintain_order=True
    )
    for i, rows in enumerate(series):
        method, intervention = rows["method"][0], rows["intervention"][0]
        pn, ps = rows["pn"].to_numpy(), rows["ps"].to_numpy()
        label = f"{intervention}, {method}" if several else str(intervention)
        # Estimates from few seeds coincide often: nudge each series sideways to keep it visible.
        dodge = (i - (len(series) - 1) / 2) * DODGE
        ax.errorbar(
            pn + dodge,
            ps,
            xerr=np.vstack([pn - rows["pn_lo"].to_numpy(), rows["pn_hi"].to_numpy() - pn]),
            yerr=np.vstack([ps - rows["ps_lo"].to_numpy(), rows["ps_hi"].to_numpy() - ps]),
            fmt=METHOD_MARKER.get(str(method), "D"),
            color=colours[str(intervention)],
            ecolor=colours[str(intervention)],
            elinewidth=1,
            capsize=3,
            alpha=0.75,
            label=f"{label} (n={rows.height})",
        )
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel("PN = P(alternative fails | logged action succeeds)")
    ax.set_ylabel("PS = P(logged action succeeds | alternative fails)")
    ax.grid(alpha=0.3)
    ax.legend(title="intervention", loc="lower left", fontsize=8)
    left_out = points.height - defined.height
    ax.set_title(
        f"{defined.height} estimates with PN and PS defined"
        + (f"; {left_out} with one undefined not shown" if left_out else ""),
        fontsize=10,
    )
    return fig


# -- importance by task ---------------------------------------------------------------------


def importance_by_task(points: pl.DataFrame) -> Figure:
    """Per task, a box of the importance of its planning actions with every estimate as a
    jittered point coloured by intervention (rows without an importance are left out)."""
    defined = points.drop_nulls("importance")
    tasks = defined.select("task").unique(maintain_order=True)["task"].to_list()
    colours = intervention_colours(points["intervention"].unique().to_list())
    rng = np.random.default_rng(JITTER_SEED)  # jitter only: the same page every time
    fig = Figure(figsize=(8, 1.2 + 0.7 * max(len(tasks), 1.5)), layout="constrained")
    ax = fig.subplots()
    values = [defined.filter(pl.col("task") == t)["importance"].to_numpy() for t in tasks]
    positions = np.arange(len(tasks))
    ax.boxplot(values, positions=positions, orientation="horizontal", widths=0.6,
               showfliers=False, medianprops={"color": "black"})  # fmt: skip
    for y, task in enumerate(tasks):
        rows = defined.filter(pl.col("task") == task)
        jitter = rng.uniform(-0.18, 0.18, rows.height)
        ax.scatter(
            rows["importance"].to_numpy(),
            y + jitter,
            c=[colours[i] for i in rows["intervention"].to_list()],
            s=22,
            alpha=0.8,
            zorder=3,
        )
    ax.set_yticks(
        positions, [f"{_wrapped(t)}\n(n={len(v)})" for t, v in zip(tasks, values, strict=True)]
    )
    ax.invert_yaxis()
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel("importance I of a planning action (one point per intervention)")
    ax.grid(axis="x", alpha=0.3)
    shown = sorted(defined["intervention"].unique().to_list())
    ax.legend(
        handles=[Line2D([], [], ls="none", marker="o", color=colours[i], label=i) for i in shown],
        title="intervention",
        loc="upper left",
        bbox_to_anchor=(1.01, 1),  # outside the axes: points sit at 0 and 1
        fontsize=8,
    )
    return fig


def _wrapped(text: str, width: int = 24) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


# -- branch budget --------------------------------------------------------------------------


def branch_budget(budget: pl.DataFrame) -> Figure:
    """Simulated branch steps of each part (factual, each alternative, replay) as a multiple of
    the logged rollout steps, and their total."""
    parts = budget["part"].to_list()
    ratios = budget["ratio"].to_numpy()
    colours = intervention_colours([p.removeprefix("alternative: ") for p in parts])
    bar_colours = [ARM_COLOUR.get(p, colours.get(p.removeprefix("alternative: "))) for p in parts]
    fig = Figure(figsize=(8, 1.2 + 0.45 * (len(parts) + 1)), layout="constrained")
    ax = fig.subplots()
    labels = [*parts, "total"]
    heights = [*ratios, ratios.sum()]
    y = np.arange(len(labels))
    ax.barh(y, heights, color=[*bar_colours, "black"], alpha=0.8)
    steps = [*budget["branch_steps"], budget["branch_steps"].sum()]
    for yi, value, n in zip(y, heights, steps, strict=True):
        ax.annotate(f" {value:.2f}x ({n:,} steps)", (value, yi), va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(heights) * 1.35 if max(heights) > 0 else 1)
    logged = int(budget["logged_steps"][0])
    ax.set_xlabel(f"simulated branch steps / logged rollout steps ({logged:,})")
    ax.grid(axis="x", alpha=0.3)
    return fig


# -- learning curves ------------------------------------------------------------------------


def learning_curves(metrics: pl.DataFrame) -> Figure:
    """Per iteration of a `papo train --config` run: success rate with Wilson 95% intervals,
    mean weight, share of zero-variance groups, approximate KL, clip fraction, and the
    simulator steps spent on rollouts and branches."""
    it = metrics["iteration"].to_numpy()
    fig = Figure(figsize=(10, 5.6), layout="constrained")
    grid = fig.subplots(2, 3, sharex=True)
    axes: list[Axes] = list(grid.ravel())
    _success_panel(axes[0], metrics)
    _line(axes[1], it, metrics["mean_weight"], "mean weight w", ref=1.0)
    _line(axes[2], it, metrics["zero_variance_share"], "zero-variance group share", unit=True)
    _line(axes[3], it, metrics["approx_kl"], "approximate KL")
    _line(axes[4], it, metrics["clip_fraction"], "clip fraction")
    axes[5].plot(it, metrics["rollout_steps"].to_numpy(), "o-", label="rollouts", ms=4)
    axes[5].plot(it, metrics["branch_steps"].to_numpy(), "s-", label="branches", ms=4)
    axes[5].set_title("simulator steps", fontsize=10)
    axes[5].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    for ax in axes[3:]:
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _success_panel(ax: Axes, metrics: pl.DataFrame) -> None:
    it = metrics["iteration"].to_numpy()
    rate = metrics["success_rate"].to_numpy()
    episodes = metrics["episodes"].to_numpy()
    bounds = [
        proportion_interval(round(r * n), int(n)) for r, n in zip(rate, episodes, strict=True)
    ]
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    ax.fill_between(it, lo, hi, color="tab:green", alpha=0.2, lw=0, label="Wilson 95%")
    ax.plot(it, rate, "o-", color="tab:green", ms=4, label="success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("success rate of the rollouts", fontsize=10)
    ax.legend(fontsize=8, loc="best")


def _line(
    ax: Axes, it: np.ndarray, values: pl.Series, title: str, *, ref: float | None = None,
    unit: bool = False,
) -> None:  # fmt: skip
    """One metric per iteration; NaN (an iteration without an update) leaves a gap and says so."""
    y = values.cast(pl.Float64).fill_null(math.nan).to_numpy()
    ax.plot(it, y, "o-", ms=4, color="tab:blue")
    if ref is not None:
        ax.axhline(ref, color="lightgrey", lw=1, zorder=0)
    if unit:
        ax.set_ylim(-0.02, 1.02)
    missing = int(np.isnan(y).sum())
    ax.set_title(title + (f" ({missing} it. without update)" if missing else ""), fontsize=10)
