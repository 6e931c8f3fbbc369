"""Assemble the HTML report of a dataset (and optionally of a training run).

The page is one self-contained file: figures are PNG `data:` URIs, the style sheet is inline,
nothing is fetched. Each section reads its tables with the SQL in `sql/`; a section whose table
is empty says which command fills it instead of drawing an empty figure, so the report works on
a just-collected dataset. The same dataset (and run) gives the same bytes: queries are ordered,
PNGs carry no metadata and nothing records the time.
"""

from __future__ import annotations

import html
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from papo_data.causal.paired import proportion_interval
from papo_data.data import commit
from papo_data.data.dataset import Dataset, open_dataset
from papo_data.data.files import readable_parquet
from papo_data.data.sqlfiles import sql_text
from papo_data.errors import BadInput
from papo_data.planning.figures import action_trace, group_contrast
from papo_data.planning.segment import DETECTORS
from papo_data.report import figures

TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.html"
CSS_PX_PER_INCH = 96
TOP_CAUSAL_ROWS = 10
WRAP_AFTER = 32  # characters of a text cell that may wrap

# The `papo` verb that writes each sidecar table (the summary's "written by" column).
FILLED_BY = {
    "snapshots": "collect",
    "planning_actions": "segment",
    "branches": "branch",
    "causal": "estimate",
    "weights": "export-weights",
}

# Columns of RUN/metrics.parquet (written by papo_data.train.online.train) the report draws,
# and what each row must hold: True = a finite number, "unit" = finite in [0, 1], False = any
# number, NaN allowed (an iteration without an update has no KL or clip fraction).
METRICS: dict[str, bool | str] = {
    "iteration": True,
    "episodes": True,
    "success_rate": "unit",
    "mean_weight": True,
    "zero_variance_share": "unit",
    "approx_kl": False,
    "clip_fraction": False,
    "rollout_steps": True,
    "branch_steps": True,
}


@dataclass
class Section:
    """One `<section>` of the page; `empty` names what is missing when it drew nothing."""

    id: str
    title: str
    parts: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    def add_figure(self, name: str, fig: Figure, caption: str, alt: str) -> None:
        self.parts.append(figure_html(name, fig, caption, alt, index=self.figures.count(name)))
        self.figures.append(name)

    def add_note(self, name: str, sentence: str) -> None:
        """The sentence an empty section shows instead of a figure (already HTML)."""
        self.parts.append(f'<p class="empty" data-empty="{name}">{sentence}</p>')
        self.empty.append(name)

    def html(self) -> str:
        body = "\n".join(self.parts)
        return f'<section id="{self.id}">\n<h2>{html.escape(self.title)}</h2>\n{body}\n</section>'


@dataclass(frozen=True)
class Report:
    html: str
    sections: list[Section]

    @property
    def figures(self) -> list[str]:
        return [name for s in self.sections for name in s.figures]

    @property
    def empty(self) -> list[str]:
        return [name for s in self.sections for name in s.empty]


# -- HTML pieces ----------------------------------------------------------------------------


def code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def command(verb: str, dataset: Path, *extra: str) -> str:
    """A `papo` command line for this dataset, as HTML."""
    return code(" ".join(["papo", verb, shlex.quote(str(dataset)), *extra]))


def cell(value: Any) -> str:
    """A table cell's text: numbers rounded for reading, null and NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def html_table(df: pl.DataFrame, caption: str | None = None) -> str:
    """A polars frame as an HTML table; every header and cell escaped, numbers right-aligned."""
    numeric = [dtype.is_numeric() for dtype in df.dtypes]
    align = [' class="num"' if n else "" for n in numeric]
    # <wbr> lets long snake_case headers break at their underscores.
    head = "".join(
        f"<th{a}>{html.escape(c).replace('_', '_<wbr>')}</th>"
        for c, a in zip(df.columns, align, strict=True)
    )
    rows = "".join(
        "<tr>" + "".join(_td(cell(v), a) for v, a in zip(row, align, strict=True)) + "</tr>"
        for row in df.iter_rows()
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _td(text: str, attrs: str) -> str:
    # Cells stay on one line (intervals, ids) unless they are prose, like a task's text.
    if not attrs and len(text) > WRAP_AFTER:
        attrs = ' class="wrap"'
    return f"<td{attrs}>{html.escape(text)}</td>"


def facts(pairs: list[tuple[str, str]]) -> str:
    """A definition list of (label, HTML value) pairs."""
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def figure_html(name: str, fig: Figure, caption: str, alt: str, index: int = 0) -> str:
    """A `<figure data-figure=name>` holding the PNG at its physical size in CSS pixels."""
    uri, width, height = figures.png_data_uri(fig)
    scale = CSS_PX_PER_INCH / figures.DPI
    ident = name if index == 0 else f"{name}-{index + 1}"
    return (
        f'<figure id="{ident}" data-figure="{name}">'
        f'<img src="{uri}" width="{round(width * scale)}" height="{round(height * scale)}" '
        f'alt="{html.escape(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def rate_with_interval(successes: int, trials: int) -> str:
    """ "0.62 [0.31, 0.86]": a success rate and its Wilson 95% interval."""
    lo, hi = proportion_interval(successes, trials)
    return "—" if math.isnan(lo) else f"{successes / trials:.2f} [{lo:.2f}, {hi:.2f}]"


# -- sections -------------------------------------------------------------------------------


def summary_section(ds: Dataset, dataset: Path) -> Section:
    s = Section("summary", "Dataset summary")
    totals = ds.sql(sql_text(__file__, "overview.sql")).row(0, named=True)
    papo = ds.info.get("papo", {})
    rate = rate_with_interval(totals["successes"], totals["episodes"])
    groups = f"{totals['groups']:,}, of which {totals['mixed_groups']:,} hold both outcomes"
    ending = str(papo.get("episode_end", "—")).replace("_", " ")
    versions = (
        f"papo {papo.get('schema_version', '—')}, LeRobot {ds.info.get('codebase_version', '—')}"
    )
    s.parts.append(
        facts(
            [
                ("dataset", code(str(dataset))),
                ("environment", html.escape(str(papo.get("env", "—")))),
                ("episodes", f"{totals['episodes']:,}"),
                ("frames", f"{totals['frames']:,} at {ds.info.get('fps', '—')} fps"),
                ("tasks", f"{totals['tasks']:,}"),
                ("success rate", f"{rate} (Wilson 95%)"),
                ("groups", groups),
                ("episodes end", html.escape(ending)),
                ("horizon", html.escape(str(papo.get("horizon", "—")))),
                ("schema", html.escape(versions)),
            ]
        )
    )
    tasks = ds.sql(sql_text(__file__, "task_success.sql"))
    if not tasks.is_empty():
        per_task = tasks.with_columns(
            pl.struct("successes", "episodes")
            .map_elements(
                lambda r: rate_with_interval(r["successes"], r["episodes"]),
                return_dtype=pl.String,
            )
            .alias("success rate [Wilson 95%]"),
        ).select(
            "task_index", "task", "episodes", "successes", "success rate [Wilson 95%]",
            "mean_length", "groups", pl.col("mixed_groups").alias("groups with both outcomes"),
        )  # fmt: skip
        s.parts.append(html_table(per_task, "Success per task"))
        if not totals["mixed_groups"]:
            s.add_note(
                "mixed-groups",
                "No group holds both outcomes: GRPO advantages are all zero and there is no "
                "outcome contrast. Collect more noise or larger groups ("
                + code("papo collect --noise, --delay-prob, --group-size")
                + ").",
            )
    sidecars = ds.sql(sql_text(__file__, "sidecar_rows.sql")).with_columns(
        pl.col("table")
        .replace_strict({t: f"papo {v}" for t, v in FILLED_BY.items()})
        .alias("written by")
    )
    s.parts.append(html_table(sidecars, "Sidecar tables (papo/)"))
    return s


def detector_to_show(ds: Dataset, requested: str | None) -> str | None:
    if requested is not None:
        return requested
    found = ds.sql(sql_text(__file__, "detector.sql"))
    return None if found.is_empty() else str(found["detector"][0])


def traces_section(ds: Dataset, dataset: Path, detector: str | None, n: int) -> Section:
    s = Section("planning-actions", "Action traces with planning actions")
    if n == 0:
        s.parts.append("<p>Not drawn (<code>--traces 0</code>).</p>")
        return s
    if detector is None:
        s.add_note("action-trace", _no_planning_actions(ds, dataset, detector))
        return s
    episodes = ds.sql(sql_text(__file__, "trace_episodes.sql"), {"detector": detector, "n": n})
    if episodes.is_empty():
        s.add_note("action-trace", _no_planning_actions(ds, dataset, detector))
        return s
    s.parts.append(
        f"<p>The {episodes.height} episodes with the most important planning actions (highest "
        f"importance in <code>causal</code>; then the first episodes with planning actions). "
        f"Shaded: the windows of the planning actions of detector {code(detector)}, labelled "
        "with their rank and score; dashed: the first successful frame.</p>"
    )
    for uid, importance in episodes.iter_rows():
        how = "not branched" if importance is None else f"highest importance {importance:.2f}"
        s.add_figure(
            "action-trace",
            action_trace(ds, uid, detector),
            f"Episode {code(uid)} ({how}).",
            f"Actions of episode {uid} over its frames with planning actions shaded",
        )
    return s


def _no_planning_actions(ds: Dataset, dataset: Path, detector: str | None) -> str:
    """Why there is nothing to draw: segment has not run, or ran and found nothing."""
    ran = sorted(ds.info.get("papo", {}).get("segment", {}))
    wanted = [detector] if detector else ran
    extra = ["--detector", detector] if detector else []
    if wanted and set(wanted) <= set(ran):
        lower = command("segment", dataset, *extra, "--threshold", "-1")
        return (
            f"{code('papo segment')} ({html.escape(', '.join(wanted))}) found no planning "
            f"actions above its threshold. Rerun it with a lower one, e.g. {lower}."
        )
    return "No planning actions yet: " + command("segment", dataset, *extra) + " detects them."


def contrast_section(ds: Dataset, detector: str | None) -> Section:
    s = Section("contrast", "Group contrast")
    chosen = ds.sql(sql_text(__file__, "contrast_group.sql"))
    if chosen.is_empty():
        s.add_note("group-contrast", "The dataset holds no episodes.")
        return s
    group_id, mixed = chosen.row(0)
    why = (
        "a group holding both outcomes (the one with the most important branched planning "
        "action, else the first)"
        if mixed
        else "no group holds both outcomes, so this one has no outcome contrast"
    )
    s.add_figure(
        "group-contrast",
        group_contrast(ds, group_id, detector or "joint"),
        f"Group {code(group_id)}: {html.escape(why)}. Per action dimension the mean ± std of "
        "the successful and the failed siblings still running; bottom: the outcome contrast "
        "o<sub>t</sub> and ticks at the siblings' planning actions.",
        f"Actions of the successful and failed siblings of group {group_id}",
    )
    return s


def causal_section(ds: Dataset, dataset: Path, points: pl.DataFrame) -> Section:
    s = Section("causal", "Necessity and sufficiency (PN vs PS)")
    if points.is_empty():
        s.add_note("pn-ps", _no_causal(ds, dataset))
        return s
    if points.drop_nulls(["pn", "ps"]).is_empty():
        s.add_note(
            "pn-ps",
            f"None of the {points.height} causal rows has both PN and PS defined (PN needs "
            "a factual success, PS an alternative failure among the paired seeds): branch with "
            "more seeds, " + command("branch", dataset, "--k", "16") + ".",
        )
    else:
        s.add_figure(
            "pn-ps",
            figures.pn_ps_scatter(points),
            "One point per planning action and intervention; bars span the intervals "
            "(Wilson or Clopper–Pearson, or Tian–Pearl bounds) stored in <code>causal</code>. "
            "Each intervention is nudged sideways by about 0.01 so coinciding points stay "
            "visible.",
            "Scatter of PN against PS with interval bars, coloured by intervention",
        )
    top = ds.sql(sql_text(__file__, "top_causal.sql"), {"n": TOP_CAUSAL_ROWS})
    s.parts.append(html_table(top, f"The {top.height} most important planning actions"))
    return s


def _no_causal(ds: Dataset, dataset: Path) -> str:
    branched = ds.sql("SELECT count(*) AS n FROM branches")["n"][0]
    if branched:
        return "No causal estimates yet: " + command("estimate", dataset) + " computes them."
    return (
        "No causal estimates yet: " + command("branch", dataset) + " re-simulates "
        "counterfactual branches, then " + command("estimate", dataset) + " computes PN/PS."
    )


def importance_section(ds: Dataset, dataset: Path, points: pl.DataFrame) -> Section:
    s = Section("importance", "Importance by task")
    if points.drop_nulls("importance").is_empty():
        s.add_note(
            "importance-by-task",
            _no_causal(ds, dataset)
            if points.is_empty()
            else "No causal row has an importance (PN and PS both undefined everywhere).",
        )
    else:
        s.add_figure(
            "importance-by-task",
            figures.importance_by_task(points),
            "Importance I of the branched planning actions per task (box: quartiles and "
            "median; points: each estimate, coloured by intervention).",
            "Importance of planning actions per task",
        )
    weights = ds.sql(sql_text(__file__, "weights_summary.sql"))
    if weights.is_empty():
        s.add_note(
            "weights",
            "No weights yet: " + command("export-weights", dataset) + " turns the importance "
            "into per-step weights w = 1 + λ·I.",
        )
    else:
        s.parts.append(html_table(weights, "Exported weights (papo/weights) per run id"))
    return s


def budget_section(ds: Dataset, dataset: Path) -> Section:
    s = Section("branches", "Branch budget")
    budget = ds.sql(sql_text(__file__, "branch_budget.sql"))
    if budget.is_empty():
        s.add_note(
            "branch-budget",
            "No branches yet: "
            + command("branch", dataset)
            + " restores the simulator at each planning action and re-simulates factual, "
            "alternative and replay arms.",
        )
        return s
    s.add_figure(
        "branch-budget",
        figures.branch_budget(budget),
        "Simulated branch steps per arm as a multiple of the logged rollout steps. A factual "
        "arm is shared by the interventions of its planning action and seed and counted once.",
        "Bar chart of branch steps per arm as a multiple of logged steps",
    )
    replay = ds.sql(sql_text(__file__, "replay.sql")).row(0, named=True)
    verdict = (
        "every replay reproduced the log bit for bit"
        if replay["replays"] and replay["exact"] == replay["replays"]
        else f"{replay['not_exact']} replays did NOT reproduce the log: those planning "
        "actions are left out of the estimates"
    )
    s.parts.append(
        f"<p>Replay exactness: {replay['exact']:,} of {replay['replays']:,} replay arms exact "
        f"({html.escape(verdict)}).</p>"
    )
    return s


def learning_section(run: Path | None, metrics: pl.DataFrame | None) -> Section:
    s = Section("training", "Learning curves")
    if run is None or metrics is None:
        s.add_note(
            "learning-curves",
            "No training run given: add "
            + code("--run RUN_DIR")
            + " (a folder written by "
            + code("papo train --config FILE.toml --run RUN_DIR")
            + ") for its learning curves.",
        )
        return s
    if metrics.is_empty():
        s.add_note(
            "learning-curves",
            f"{code(str(run / 'metrics.parquet'))} holds no iterations yet.",
        )
        return s
    s.add_figure(
        "learning-curves",
        figures.learning_curves(metrics),
        f"Run {code(str(run))}: per iteration, the success rate of the rollouts (Wilson 95% "
        "band), the mean PAPO weight, the share of groups whose outcomes are all equal (no "
        "gradient), the approximate KL and clip fraction of the update, and simulator steps.",
        "Learning curves of the training run",
    )
    table = metrics.with_columns(
        pl.struct("success_rate", "episodes")
        .map_elements(
            lambda r: rate_with_interval(
                round(r["success_rate"] * r["episodes"]), int(r["episodes"])
            ),
            return_dtype=pl.String,
        )
        .alias("success rate [Wilson 95%]")
    ).select("iteration", "episodes", "success rate [Wilson 95%]", *list(METRICS)[3:])
    s.parts.append(html_table(table, "Metrics per iteration (RUN/metrics.parquet)"))
    return s


# -- the run's metrics ----------------------------------------------------------------------


def read_metrics(run: Path) -> pl.DataFrame:
    """RUN/metrics.parquet, checked: the columns the report draws, one row per iteration."""
    if not run.exists():
        raise BadInput(f"{run}: no such run directory")
    if not run.is_dir():
        raise BadInput(f"{run}: not a directory (a run folder written by papo train --config)")
    path = run / "metrics.parquet"
    if not path.is_file():
        raise BadInput(f"{path}: no such file (is {run} a run folder of papo train --config?)")
    with readable_parquet(path):
        table = pq.read_table(path)
    for name in METRICS:
        if name not in table.column_names:
            raise BadInput(f"{path}: field {name}: missing (not written by papo train --config?)")
        dtype = table.schema.field(name).type
        if not (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)):
            raise BadInput(f"{path}: field {name}: expected numbers, got {dtype}")
    metrics = pl.from_arrow(table.select(list(METRICS)))
    assert isinstance(metrics, pl.DataFrame)
    _check_rows(path, metrics)
    return metrics.sort("iteration")


def _check_rows(path: Path, metrics: pl.DataFrame) -> None:
    rows = metrics.with_row_index("row")
    for name, rule in METRICS.items():
        col = pl.col(name).cast(pl.Float64)
        if rule is False:
            ok = col.is_null() | col.is_nan() | col.is_finite()
            what = "not a number"
        elif rule == "unit":
            ok = col.is_finite() & (col >= 0) & (col <= 1)
            what = "must be a finite number in [0, 1]"
        else:
            ok = col.is_finite()
            what = "must be a finite number"
        bad = rows.filter(~ok.fill_null(False))
        if not bad.is_empty():
            raise BadInput(f"{path}: row {bad['row'][0]}: field {name}: {what}, got {bad[name][0]}")
    dup = rows.filter(pl.col("iteration").is_duplicated())
    if not dup.is_empty():
        raise BadInput(
            f"{path}: row {dup['row'][1]}: field iteration: {dup['iteration'][1]} appears twice"
        )


# -- the page -------------------------------------------------------------------------------


def build_report(
    dataset: Path,
    run: Path | None = None,
    *,
    detector: str | None = None,
    traces: int = 3,
) -> Report:
    """The report page of `dataset` (and of the training run folder `run`), as HTML text."""
    dataset = Path(dataset)
    if detector is not None and detector not in DETECTORS:
        raise BadInput(f"detector must be one of {', '.join(DETECTORS)}: {detector!r}")
    if traces < 0:
        raise BadInput(f"traces must be at least 0, got {traces}")
    metrics = read_metrics(Path(run)) if run is not None else None  # bad input before work
    with open_dataset(dataset) as ds:
        shown = detector_to_show(ds, detector)
        points = ds.sql(sql_text(__file__, "causal_points.sql"))
        sections = [
            summary_section(ds, dataset),
            traces_section(ds, dataset, shown, traces),
            contrast_section(ds, shown),
            causal_section(ds, dataset, points),
            importance_section(ds, dataset, points),
            budget_section(ds, dataset),
            learning_section(run, metrics),
        ]
    name = dataset.resolve().name or str(dataset)
    nav = "\n".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    page = Template(TEMPLATE.read_text()).substitute(
        title=html.escape(f"papo report: {name}"),
        generator="papo_data report",
        lede="Planning actions, their counterfactual branches, PN/PS and weights"
        + (", and a training run" if run is not None else "")
        + f" of {code(str(dataset))}.",
        nav=nav,
        sections="\n".join(s.html() for s in sections),
        footer="Written by " + code("papo report") + ". Figures are embedded; the page needs "
        "no network. Intervals are Wilson 95% unless said otherwise.",
    )
    return Report(page, sections)


def write_report(
    dataset: Path,
    out: Path,
    run: Path | None = None,
    *,
    detector: str | None = None,
    traces: int = 3,
) -> Report:
    """Build the report and write it to `out` atomically (a temp name, then a rename)."""
    out = Path(out)
    if out.is_dir():
        raise BadInput(f"{out}: is a directory (--out names the HTML file to write)")
    report = build_report(dataset, run, detector=detector, traces=traces)
    commit.write_atomic_bytes(report.html.encode("utf-8"), out)
    return report
