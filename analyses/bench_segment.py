"""Speed and peak memory of `papo segment` (the DuckDB planning-action detector) at scale.

A small real Meta-World dataset is collected once (noisy scripted experts, GRPO groups of 8,
some groups holding both outcomes, some not) and replicated to at least `--steps` steps as a valid
papo dataset: the data and episodes Parquet files are written directly with pyarrow in the
dataset's own layout (data files rolled over at `data_files_size_in_mb` of the source, whole
episodes per file), each copy with its own `index`, `episode_index`, `episode_uid` and `group_id`,
so every copy is a distinct set of episodes and groups stay groups. Snapshots are not replicated
(the detector does not read them). A small replica is checked with
`papo_data.data.validate.validate`; the big one is opened with `open_dataset` and its step count
checked.

Then, in one run, repeats interleaved (order rotating), each measured variant in a fresh
subprocess so that its peak resident set (`ru_maxrss`) is its own:

- `scan`: DuckDB merely scanning the columns the detector reads (steps `episode_index`,
  `frame_index`, `action`, `episode_uid` joined to episodes `group_id`, `success`, `length`)
  with aggregates that force every value to be read; same views, same thread count;
- `window`: a floor for any detector built on SQL windows: ONE `avg() OVER (PARTITION BY
  episode_index ORDER BY frame_index ROWS ...)` of one action dim (the detector needs such a
  pass for its means, another for non-max suppression, plus median/MAD and the contrast);
- `check`: `check_tables(path, ("steps", "episodes"), columns=("action",))`, the input check
  the `papo segment` command runs before `segment()` (one aggregate pass over steps);
- `segment`: `segment(path, SegmentConfig(detector="joint"))`, the whole command (detect, write
  `papo/planning_actions`, update `info.json`);
- `detect`: `detect(ds, SegmentConfig(detector="joint"))`, the package SQL alone, to Arrow;
- `pandas`: a straightforward pandas version of the same joint detector (pyarrow read, then
  groupby / rolling / shift), checked against the SQL result on the small replica;
(A `proposed` SQL rewrite measured here at 0cf192c became the package SQL at 40059e9.)

pandas is timed on the full dataset when its time predicted from the small replica fits
`--pandas-budget`; otherwise it is timed on a `--pandas-steps` replica (with `segment` on the
same replica) and extrapolated linearly, and the output says so. `--profile` adds DuckDB's
per-operator CPU time of the package SQL on that replica.

Prints a markdown report and writes it to `--out-md`; exits 1 if a replica is invalid or the
SQL and pandas detectors disagree, 0 otherwise (met goals or not: it is a measurement).

    .venv/bin/python analyses/bench_segment.py --out-md /tmp/bench_segment.md --profile
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pandas.api.indexers import FixedForwardWindowIndexer

from papo_data.data import commit, lerobot
from papo_data.data.dataset import Dataset, open_dataset
from papo_data.data.validate import check_tables
from papo_data.data.writer import conform
from papo_data.planning import segment as segment_module
from papo_data.planning.segment import SegmentConfig, detect, segment

TASKS = (
    "pick-place-v3",
    "push-v3",
    "peg-insert-side-v3",
    "door-open-v3",
    "reach-v3",
    "basketball-v3",
)
"""A mix: groups holding both outcomes (outcome contrast) and all-success groups (none)."""
GROUPS = 4
GROUP_SIZE = 8
SCAN_GOAL = 3.0
"""segment time / scan time must be at most this."""
PANDAS_GOAL = 10.0
"""pandas time / segment time must be at least this."""
AGREEMENT_GOAL = 0.999
"""Share of identical planning actions (Jaccard) below which the run fails."""
CFG = SegmentConfig(detector="joint")
VARIANTS = ("scan", "window", "check", "segment", "detect", "pandas")
ROW_COUNTS = ("scan", "window")
NOT_DETECTORS = (*ROW_COUNTS, "check")
"""Variants that count the rows they read rather than find planning actions."""

# The columns step_scores.sql reads, each aggregated so that every value is read.
SCAN_SQL = """
SELECT count(*) AS n,
       sum(s.episode_index) AS episode_index,
       sum(s.frame_index) AS frame_index,
       sum(list_sum(s.action)) AS action,
       max(s.episode_uid) AS episode_uid,
       max(e.group_id) AS group_id,
       count_if(e.success) AS success,
       sum(e.length) AS length
FROM steps s JOIN episodes e USING (episode_index)
"""

# A floor for any detector built on per-episode windows: ONE window aggregate of ONE action dim
# over the partitioning every windowed detector needs (the detector runs several such passes).
WINDOW_SQL = """
SELECT count(*) AS n, sum(m) AS m
FROM (SELECT avg(action[1]) OVER (PARTITION BY episode_index ORDER BY frame_index
                                  ROWS BETWEEN 5 PRECEDING AND 1 PRECEDING) AS m
      FROM steps)
"""


# -- the dataset ----------------------------------------------------------------------------
def collect_base(work: Path, workers: int) -> Path:
    """The real Meta-World rollouts every replica copies (collected once; a rerun resumes)."""
    from papo_data.sim.collect import CollectConfig, collect

    path = work / "base"
    cfg = CollectConfig(tasks=TASKS, groups=GROUPS, group_size=GROUP_SIZE)
    want = len(TASKS) * GROUPS * GROUP_SIZE
    info = path / lerobot.INFO_PATH
    if not info.exists() or json.loads(info.read_text())["total_episodes"] != want:
        t0 = time.perf_counter()
        collect(path, cfg, workers=workers)
        log(f"collected {want} episodes into {path} in {time.perf_counter() - t0:.0f} s")
    return path


def _read(root: Path, table: str) -> pa.Table:
    with Dataset(root) as ds:
        files = [ds.view.readable(p) for p in ds.files[table]]
    return pa.concat_tables([pq.read_table(f) for f in files])


def _prefixed(col: pa.ChunkedArray, prefix: str) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(prefix, col, "")


def replicate(base: Path, dest: Path, steps: int) -> Path:
    """Copies of `base` (whole, as many as needed for >= `steps` steps) as one papo dataset,
    written with pyarrow in the dataset's layout; reused if it already exists."""
    info = lerobot.read_info(base)
    frames, n_eps = info["total_frames"], info["total_episodes"]
    copies = math.ceil(steps / frames)
    info_path = dest / lerobot.INFO_PATH
    if info_path.exists():
        have = json.loads(info_path.read_text())
        if (have["total_frames"], have["total_episodes"]) == (copies * frames, copies * n_eps):
            return dest
        shutil.rmtree(dest)
    t0 = time.perf_counter()
    with Dataset(base) as ds:
        dims = ds.dims
    base_steps = _read(base, "steps").sort_by(
        [("episode_index", "ascending"), ("frame_index", "ascending")]
    )
    base_eps = _read(base, "episodes").sort_by("episode_index")
    # One data file per ~data_files_size_in_mb, as LeRobot rolls files over; whole copies only,
    # so an episode never spans two files. Copies compress together, so the size of a copy is
    # measured on a trial write of several.
    trial = 8
    sink = pa.BufferOutputStream()
    pq.write_table(pa.concat_tables([base_steps] * trial), sink, compression="zstd")
    bytes_per_copy = sink.getvalue().size / trial
    target = info.get("data_files_size_in_mb", 100) * 1024 * 1024
    per_file = max(1, round(target / bytes_per_copy))
    tmp = dest.with_name(dest.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "meta").mkdir(parents=True)
    shutil.copy(base / lerobot.TASKS_PATH, tmp / lerobot.TASKS_PATH)
    chunks_size = info["chunks_size"]
    step_tpl = info["data_path"]
    episode_parts = []
    for k, first in enumerate(range(0, copies, per_file)):
        loc = (k // chunks_size, k % chunks_size)
        parts, eps = [], []
        for c in range(first, min(copies, first + per_file)):
            prefix = f"r{c:05d}/"
            t = base_steps
            t = t.set_column(0, "index", pc.add(t.column("index"), c * frames))
            i = t.schema.get_field_index("episode_index")
            t = t.set_column(i, "episode_index", pc.add(t.column("episode_index"), c * n_eps))
            i = t.schema.get_field_index("episode_uid")
            t = t.set_column(i, "episode_uid", _prefixed(t.column("episode_uid"), prefix))
            parts.append(t)
            e = base_eps
            for name, value in (
                ("episode_index", pc.add(e.column("episode_index"), c * n_eps)),
                ("dataset_from_index", pc.add(e.column("dataset_from_index"), c * frames)),
                ("dataset_to_index", pc.add(e.column("dataset_to_index"), c * frames)),
                ("data/chunk_index", pa.array([loc[0]] * len(e), pa.int64())),
                ("data/file_index", pa.array([loc[1]] * len(e), pa.int64())),
                ("meta/episodes/chunk_index", pa.array([0] * len(e), pa.int64())),
                ("meta/episodes/file_index", pa.array([0] * len(e), pa.int64())),
                ("episode_uid", _prefixed(e.column("episode_uid"), prefix)),
                ("group_id", _prefixed(e.column("group_id"), prefix)),
            ):
                e = e.set_column(e.schema.get_field_index(name), name, value)
            eps.append(e)
        path = tmp / step_tpl.format(chunk_index=loc[0], file_index=loc[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        commit.write_parquet(conform(pa.concat_tables(parts), "steps", dims), path)
        episode_parts.extend(eps)
    ep_path = tmp / "meta/episodes/chunk-000/file-000.parquet"
    ep_path.parent.mkdir(parents=True)
    commit.write_parquet(conform(pa.concat_tables(episode_parts), "episodes", dims), ep_path)
    info["total_frames"] = copies * frames
    info["total_episodes"] = copies * n_eps
    info["splits"] = lerobot.splits(info["total_episodes"])
    info.get("papo", {}).pop("segment", None)
    (tmp / lerobot.INFO_PATH).write_text(json.dumps(info, indent=2))
    os.replace(tmp, dest)
    log(
        f"replicated {frames} steps x {copies} -> {dest} ({copies * frames:,} steps, "
        f"{per_file} copies per data file) in {time.perf_counter() - t0:.0f} s"
    )
    return dest


def dataset_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.parquet"))


def warm_cache(root: Path) -> None:
    """Read every file once so the first timed variant does not pay for the disk alone."""
    for p in root.rglob("*.parquet"):
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


# -- the pandas detector ---------------------------------------------------------------------
def _rows(res: pd.Series | pd.DataFrame, index: pd.Index) -> pd.Series | pd.DataFrame:
    """A groupby-rolling result (group keys prepended to the index) aligned back to `index`."""
    res.index = res.index.get_level_values(-1)
    return res.reindex(index)


def _backward(g: Any, k: int, how: str, index: pd.Index) -> pd.Series | pd.DataFrame:
    """Per-group aggregate over rows t-k+1 .. t (fewer at the start)."""
    return _rows(getattr(g.rolling(k, min_periods=1), how)(), index)


def _forward(g: Any, k: int, how: str, index: pd.Index) -> pd.Series | pd.DataFrame:
    """Per-group aggregate over rows t .. t+k-1 (fewer at the end)."""
    roll = g.rolling(FixedForwardWindowIndexer(window_size=k), min_periods=1)
    return _rows(getattr(roll, how)(), index)


def pandas_detect(root: Path, cfg: SegmentConfig) -> pd.DataFrame:
    """The joint detector of step_scores.sql + planning_actions.sql, written as a researcher
    would in pandas: pyarrow reads the columns, pandas groupby / rolling / shift computes."""
    w = cfg.window
    names = lerobot.read_info(root)["papo"]["action_names"]
    dims = [f"a{i}" for i in range(len(names))]
    xyz = [f"a{i}" for i, n in enumerate(names) if "gripper" not in n]
    grip = next(f"a{i}" for i, n in enumerate(names) if "gripper" in n)
    with Dataset(root) as ds:
        step_files = [ds.view.readable(p) for p in ds.files["steps"]]
        ep_files = [ds.view.readable(p) for p in ds.files["episodes"]]
    steps = pq.ParquetDataset(step_files).read(
        columns=["episode_index", "frame_index", "episode_uid", "action"]
    )
    act = np.asarray(steps.column("action").combine_chunks().flatten()).reshape(len(steps), -1)
    df = pd.DataFrame(
        {
            "episode_index": steps.column("episode_index").to_numpy(),
            "frame_index": steps.column("frame_index").to_numpy(),
            "episode_uid": steps.column("episode_uid").to_pandas(),
        }
        | {d: act[:, i] for i, d in enumerate(dims)}
    )
    del steps, act
    episodes = (
        pq.ParquetDataset(ep_files)
        .read(columns=["episode_index", "group_id", "success", "length"])
        .to_pandas()
        .set_index("episode_index")
    )
    df = df.sort_values(["episode_index", "frame_index"], ignore_index=True)
    df["group_id"] = df["episode_index"].map(episodes["group_id"])
    df["success"] = df["episode_index"].map(episodes["success"])

    # Variation: mean xyz action of the w steps before t vs of the w steps from t on.
    by_ep = df.groupby("episode_index", sort=False)
    before = _backward(by_ep[xyz], w, "mean", df.index).groupby(df["episode_index"]).shift(1)
    after = _forward(by_ep[xyz], w, "mean", df.index)
    mb, ma = before.to_numpy(), after.to_numpy()
    df["delta"] = np.sqrt(((mb - ma) ** 2).sum(axis=1))
    cos = (mb * ma).sum(axis=1) / (np.linalg.norm(mb, axis=1) * np.linalg.norm(ma, axis=1))
    df["theta"] = 1 - np.where(np.isnan(cos), 1, cos)  # a zero mean has no direction
    df["switch"] = by_ep[grip].diff().abs() > 0.5

    # Outcome contrast, groups holding both outcomes only: per group, outcome and frame the
    # count, sum and sum of squares of each action dim, pooled over frames t-w .. t+w.
    outcome = episodes.groupby("group_id")["success"].agg(["any", "all"])
    mixed = set(outcome.index[outcome["any"] & ~outcome["all"]])
    m = df.loc[df["group_id"].isin(mixed), ["group_id", "success", "frame_index", *dims]]
    for d in dims:
        m[d] = m[d].astype("float64")
        m[f"q{d}"] = m[d] ** 2
    keys = ["group_id", "success", "frame_index"]
    per = m.groupby(keys).sum()
    per["n"] = m.groupby(keys).size()
    per = per.reset_index()
    # frames run 0..T-1 in every episode, so +-w rows are +-w frames
    aligned = per[keys].join(
        _rows(
            per.groupby(["group_id", "success"])[[*dims, *[f"q{d}" for d in dims], "n"]]
            .rolling(2 * w + 1, center=True, min_periods=1)
            .sum(),
            per.index,
        )
    )
    both = aligned[aligned["success"]].merge(
        aligned[~aligned["success"]], on=["group_id", "frame_index"], suffixes=("_ok", "_ko")
    )
    n_ok, n_ko = both["n_ok"], both["n_ko"]
    terms = []
    for d in dims:
        sx_ok, sx_ko = both[f"{d}_ok"], both[f"{d}_ko"]
        ss = both[f"q{d}_ok"] - sx_ok**2 / n_ok + both[f"q{d}_ko"] - sx_ko**2 / n_ko
        terms.append(
            (sx_ok / n_ok - sx_ko / n_ko) ** 2 / (ss / np.maximum(n_ok + n_ko - 2, 1) + 0.01)
        )
    both["o"] = np.sqrt(sum(terms) / len(dims))

    # Scores where a full window fits on both sides (w <= frame <= length - w): robust
    # z-scores per episode squashed to (0, 1), plus the switch nearness; s = v+ (1 + beta o).
    length = df["episode_index"].map(episodes["length"])
    df = df[(df["frame_index"] >= w) & (df["frame_index"] <= length - w)]
    df = df.merge(
        both[["group_id", "frame_index", "o"]], on=["group_id", "frame_index"], how="left"
    )
    by_ep = df.groupby("episode_index", sort=False)
    med = by_ep[["delta", "theta"]].transform("median")
    mad = (df[["delta", "theta"]] - med).abs().groupby(df["episode_index"]).transform("median")
    z = (df[["delta", "theta"]] - med) / (1.4826 * mad + 1e-6)
    zz = (z["delta"] + z["theta"]) / 2
    # Nearness to the closest gripper switch among the scored frames: (w + 1 - d)+.
    switch_frame = df["frame_index"].where(df["switch"])
    last = switch_frame.groupby(df["episode_index"]).ffill()
    nxt = switch_frame.groupby(df["episode_index"]).bfill()
    d = np.fmin(df["frame_index"] - last, nxt - df["frame_index"])
    nearness = np.maximum(w + 1 - d, 0).fillna(0)
    df["variation_score"] = cfg.switch_weight * nearness + (1 + zz / (1 + zz.abs())) / 2
    o = df["o"].fillna(0)
    df["outcome_score"] = o.where(df["group_id"].isin(mixed))
    df["score"] = df["variation_score"].clip(lower=0) * (1 + cfg.beta * o)

    # Non-max suppression over +-w frames, threshold, top-M per episode.
    by_ep = df.groupby("episode_index", sort=False)["score"]
    best_before = _backward(by_ep, w, "max", df.index).groupby(df["episode_index"]).shift(1)
    best_from = _forward(by_ep, w + 1, "max", df.index)
    peak = (
        (df["score"] == best_from)
        & (df["score"] > best_before.fillna(-np.inf))
        & (df["score"] > cfg.threshold)
    )
    out = df[peak].sort_values(
        ["episode_index", "score", "frame_index"], ascending=[True, False, True]
    )
    out["rank"] = out.groupby("episode_index").cumcount() + 1
    out = out[out["rank"] <= cfg.top_m]
    length = out["episode_index"].map(episodes["length"])
    out["window"] = np.minimum(w, length - out["frame_index"])
    cols = ["episode_uid", "frame_index", "window", "variation_score", "outcome_score", "score"]
    return out[[*cols, "rank"]].sort_values(["episode_uid", "frame_index"], ignore_index=True)


def agreement(sql: pd.DataFrame, other: pd.DataFrame) -> dict[str, Any]:
    """How far another detector's result is from the package SQL's: identical (episode_uid,
    frame_index) planning actions (Jaccard), the largest score and rank differences on those."""
    cols = ["episode_uid", "frame_index", "score", "rank", "outcome_score"]
    a, b = sql[cols], other[cols]
    both = a.merge(b, on=["episode_uid", "frame_index"], suffixes=("_sql", "_pd"))
    union = len(a) + len(b) - len(both)
    out_sql, out_pd = both["outcome_score_sql"], both["outcome_score_pd"]
    return {
        "sql": len(a),
        "other": len(b),
        "same": len(both),
        "jaccard": len(both) / union if union else 1.0,
        "max_score_diff": float((both["score_sql"] - both["score_pd"]).abs().max()),
        "rank_diffs": int((both["rank_sql"] != both["rank_pd"]).sum()),
        "outcome_null_diffs": int((out_sql.isna() != out_pd.isna()).sum()),
    }


def package_sql(ds: Dataset, cfg: SegmentConfig) -> tuple[str, dict[str, Any]]:
    """The query `detect` runs, as text and parameters (for profiling)."""
    text = segment_module.planning_actions_sql(segment_module._step_scores_sql(ds))
    params = segment_module._query_params(cfg) | {"threshold": cfg.threshold, "top_m": cfg.top_m}
    return text, params


# -- profiling -------------------------------------------------------------------------------
@dataclass
class Operator:
    cpu_s: float
    name: str
    rows: int
    what: str


def profile(root: Path, which: str, top: int) -> tuple[float, float, list[Operator]]:
    """(wall s, CPU s, the `top` operators by CPU time) of one query under DuckDB's profiler."""
    out = root.parent / f".profile-{which}.json"
    with Dataset(root) as ds:
        text, params = package_sql(ds, CFG)
        ds.con.execute("PRAGMA enable_profiling = 'json'")
        ds.con.execute(f"PRAGMA profiling_output = '{out}'")
        ds.con.sql(text, params=params).fetchall()
        ds.con.execute("PRAGMA disable_profiling")
    prof = json.loads(out.read_text())
    out.unlink()
    ops: list[Operator] = []

    def walk(node: dict[str, Any]) -> None:
        info = node.get("extra_info", {})
        what = ""
        for key in ("Projections", "Aggregates", "Conditions", "CTE Name", "Function"):
            if key in info:
                value = info[key]
                what = " | ".join(value) if isinstance(value, list) else str(value)
                break
        ops.append(
            Operator(node.get("timing", 0.0), node["type"], node.get("intermediate_rows", 0), what)
        )
        for child in node.get("children", []):
            walk(child)

    for node in prof["operator"]:
        walk(node)
    ops.sort(key=lambda o: -o.cpu_s)
    return prof["query"]["total_time"], prof["query"]["cpu_time"], ops[:top]


# -- one measured run (in a subprocess) ------------------------------------------------------
def run_variant(variant: str, root: Path) -> dict[str, Any]:
    """Time one variant in this process; peak RSS is this process's high-water mark."""
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if variant == "check":
        check_tables(root, ("steps", "episodes"), columns=("action",))  # as `papo segment`
        rows = 0
    elif variant in ROW_COUNTS:
        with Dataset(root) as ds:
            rows = ds.arrow(SCAN_SQL if variant == "scan" else WINDOW_SQL).column("n")[0].as_py()
    elif variant == "detect":
        with Dataset(root) as ds:
            rows = detect(ds, CFG).num_rows
    elif variant == "segment":
        rows = segment(root, CFG).planning_actions
    elif variant == "pandas":
        rows = len(pandas_detect(root, CFG))
    else:
        raise ValueError(variant)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "rows": rows, "peak_kib": peak, "baseline_kib": baseline}


def measure(variant: str, root: Path) -> dict[str, Any]:
    """Run `variant` on `root` in a fresh interpreter; its JSON result."""
    cmd = [sys.executable, __file__, "--child", variant, "--dataset", str(root)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} on {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Series:
    """Repeated measurements of one variant on one dataset."""

    variant: str
    root: Path
    steps: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r["seconds"] for r in self.runs)

    @property
    def best(self) -> float:
        return min(r["seconds"] for r in self.runs)

    @property
    def peak_mib(self) -> float:
        return max(r["peak_kib"] for r in self.runs) / 1024

    @property
    def baseline_mib(self) -> float:
        return statistics.median(r["baseline_kib"] for r in self.runs) / 1024

    @property
    def rows(self) -> int:
        return self.runs[0]["rows"]


def interleaved(series: list[Series], repeats: int) -> None:
    """Every series once per repeat, the order rotating from one repeat to the next."""
    for r in range(repeats):
        shift = r % len(series)
        for s in series[shift:] + series[:shift]:
            result = measure(s.variant, s.root)
            s.runs.append(result)
            log(
                f"repeat {r + 1}/{repeats}: {s.variant} on {s.steps:,} steps: "
                f"{result['seconds']:.2f} s, peak {result['peak_kib'] / 1024:.0f} MiB"
            )


# -- output ----------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


WHAT = {
    "scan": "DuckDB scan of the columns read (+ join)",
    "window": "floor: one per-episode window aggregate of one action dim",
    "check": "`check_tables()`: what `papo segment` checks before it reads (steps, episodes)",
    "segment": "`segment()`: detect + write planning_actions",
    "detect": "`detect()`: the package SQL, to Arrow",
    "pandas": "pandas joint detector (pyarrow read + compute)",
}


def series_table(rows: list[Series], scan: Series, segment_s: Series) -> str:
    lines = [
        "| variant | what | steps | median s | min s | × scan | pandas ÷ this | peak RSS MiB "
        "| baseline RSS MiB | rows |",
        "|" + "---|" * 10,
    ]
    pandas = next((s for s in rows if s.variant == "pandas"), None)
    for s in rows:
        same_size = s.steps == scan.steps
        x_scan = f"{s.median / scan.median:.1f}" if same_size else "—"
        vs_pandas = "—"
        if pandas is not None and pandas.steps == s.steps and s.variant != "pandas":
            vs_pandas = f"{pandas.median / s.median:.2f}"
        lines.append(
            f"| {s.variant} | {WHAT[s.variant]} | {s.steps:,} | {s.median:.2f} | {s.best:.2f} "
            f"| {x_scan} | {vs_pandas} | {s.peak_mib:.0f} | {s.baseline_mib:.0f} | {s.rows:,} |"
        )
    return "\n".join(lines) + "\n"


def floor_line(window: Series | None, scan: Series) -> list[str]:
    """The goal row a single window pass reaches: no windowed detector can do better."""
    if window is None:
        return []
    ratio = window.median / scan.median
    return [
        f"| (floor) one window aggregate ≤ {SCAN_GOAL:.0f}× scan | {window.median:.2f} s / "
        f"{scan.median:.2f} s = {ratio:.1f}× | {'yes' if ratio <= SCAN_GOAL else 'no'} |"
    ]


def profile_table(wall: float, cpu: float, ops: list[Operator]) -> str:
    lines = [
        f"wall {wall:.2f} s, CPU {cpu:.2f} s (both threads); top operators by CPU time:\n",
        "| CPU s | share | operator | rows out | what |",
        "|---|---|---|---|---|",
    ]
    for o in ops:
        what = o.what.replace("|", "/").replace("\n", " ")
        if len(what) > 110:
            what = what[:107] + "..."
        lines.append(
            f"| {o.cpu_s:.2f} | {100 * o.cpu_s / cpu:.0f}% | {o.name} | {o.rows:,} | `{what}` |"
        )
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/papo-bench-segment"),
        help="where the collected and replicated datasets are kept (reused)",
    )
    p.add_argument("--steps", type=int, default=10_000_000, help="steps of the big replica")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each variant")
    p.add_argument("--workers", type=int, default=2, help="collection processes")
    p.add_argument(
        "--check-steps",
        type=int,
        default=300_000,
        help="steps of the replica that is validated and where detectors are compared",
    )
    p.add_argument(
        "--pandas-steps",
        type=int,
        default=1_000_000,
        help="steps of the replica pandas runs on if the big one exceeds the budget",
    )
    p.add_argument(
        "--pandas-budget",
        type=float,
        default=240.0,
        help="seconds one pandas run may take on the big replica (predicted)",
    )
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated subset of {','.join(VARIANTS)} (scan is always run)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="DuckDB per-operator profile of the package SQL (on the --pandas-steps replica)",
    )
    p.add_argument("--out-md", type=Path, help="also write the markdown report here")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is None:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            p.error(f"--variants: unknown {', '.join(unknown)}")
        args.variants = ["scan", *[v for v in VARIANTS if v in variants and v != "scan"]]
        if args.repeats < 1 or args.steps < 1 or args.check_steps < 1 or args.pandas_steps < 1:
            p.error("--repeats, --steps, --check-steps and --pandas-steps must be positive")
    return args


def sql_version() -> str:
    """Which package SQL was measured: the commit, and a hash of the detector's .sql files
    (they may differ from the commit in a working tree)."""
    sql_dir = Path(segment_module.__file__).resolve().parent / "sql"
    digest = hashlib.sha256()
    for name in ("step_scores.sql", "planning_actions.sql"):
        digest.update((sql_dir / name).read_bytes())
    try:
        commit_id = subprocess.run(
            ["git", "-C", str(sql_dir), "log", "-1", "--format=%h"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(sql_dir), "status", "--porcelain", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit_id, dirty = "unknown", ""
    state = " (uncommitted changes in planning/sql)" if dirty else ""
    return (
        f"commit {commit_id}{state}, step_scores.sql + planning_actions.sql sha256 "
        + (digest.hexdigest()[:12])
    )


def describe(root: Path) -> str:
    with Dataset(root) as ds:
        row = ds.sql(
            "WITH g AS (SELECT group_id, bool_or(success) AND NOT bool_and(success) AS mixed "
            "FROM episodes GROUP BY group_id) "
            "SELECT (SELECT count(*) FROM steps) AS steps, "
            "(SELECT count(*) FROM episodes) AS episodes, "
            "(SELECT count(*) FROM g) AS groups, (SELECT count_if(mixed) FROM g) AS mixed"
        ).row(0, named=True)
        n_files = len(ds.files["steps"])
    return (
        f"{row['steps']:,} steps, {row['episodes']:,} episodes, {row['groups']:,} groups "
        f"({row['mixed']:,} holding both outcomes), {n_files} data file(s), "
        f"{dataset_bytes(root) / 2**20:.0f} MiB of Parquet"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_variant(args.child, args.dataset)))
        return 0
    started = time.perf_counter()
    load_before = os.getloadavg()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    base = collect_base(work, args.workers)
    big = replicate(base, work / f"replica-{args.steps}", args.steps)
    small = replicate(base, work / f"replica-{args.check_steps}", args.check_steps)
    failures = []

    # Is it a valid papo dataset? The small replica fully, the big one opens with its count.
    from papo_data.data.validate import validate

    problems = validate(small)
    if problems:
        failures.append(f"{small}: {len(problems)} validation problems, first: {problems[0]}")
    with open_dataset(big) as ds:
        n_big = ds.sql("SELECT count(*) AS n FROM steps")["n"][0]
        if n_big != ds.info["total_frames"] or n_big < args.steps:
            failures.append(f"{big}: {n_big} steps, info.json says {ds.info['total_frames']}")

    # Do the detectors agree? (small replica)
    with Dataset(small) as ds:
        sql_rows = detect(ds, CFG)
    t0 = time.perf_counter()
    pandas_rows = pandas_detect(small, CFG)
    pandas_small_s = time.perf_counter() - t0
    agree = {
        "pandas": agreement(sql_rows.to_pandas(), pandas_rows),
    }
    for name, a in agree.items():
        if a["jaccard"] < AGREEMENT_GOAL:
            failures.append(f"{name} and the package SQL agree on {a['jaccard']:.4f} only")

    # Measure.
    n_small = lerobot.read_info(small)["total_frames"]
    predicted = pandas_small_s * n_big / n_small
    pandas_full = "pandas" not in args.variants or predicted <= args.pandas_budget
    series = [Series(v, big, n_big) for v in args.variants if pandas_full or v != "pandas"]
    sub = None
    if not pandas_full:
        sub = replicate(base, work / f"replica-{args.pandas_steps}", args.pandas_steps)
        n_sub = lerobot.read_info(sub)["total_frames"]
        series += [Series("segment", sub, n_sub), Series("pandas", sub, n_sub)]
    for root in {s.root for s in series}:
        warm_cache(root)
    interleaved(series, args.repeats)
    profiles = []
    if args.profile:
        prof_root = sub or replicate(base, work / f"replica-{args.pandas_steps}", args.pandas_steps)
        warm_cache(prof_root)
        n_prof = lerobot.read_info(prof_root)["total_frames"]
        profiles.append(("package", n_prof, *profile(prof_root, "package", top=8)))
    load_after = os.getloadavg()

    # Report.
    get = {(s.variant, s.root): s for s in series}
    scan = get["scan", big]
    seg = get.get(("segment", big)) or get.get(("detect", big))
    rows_ok = {s.rows for s in series if s.variant not in NOT_DETECTORS and s.root == big}
    if len(rows_ok) > 1:
        failures.append(f"variants found different numbers of planning actions: {rows_ok}")
    threads = duckdb.sql("SELECT current_setting('threads')").fetchall()[0][0]
    lines = [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, duckdb "
        f"{duckdb.__version__} (threads {threads}), "
        f"pandas {pd.__version__}, pyarrow {pa.__version__}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"ran in {time.perf_counter() - started:.0f} s.",
        "",
        f"Data: Meta-World {', '.join(TASKS)}; {GROUPS} groups of {GROUP_SIZE} per task, "
        f"noisy scripted experts, episodes end at first success. Big replica: {describe(big)}.",
        f'Detector: `SegmentConfig(detector="joint")` (window {CFG.window}, top-{CFG.top_m}, '
        f"threshold {CFG.threshold}, beta {CFG.beta}); package SQL at {sql_version()}. "
        f"{args.repeats} interleaved repeats, "
        "each run in a fresh subprocess; peak RSS = the process's `ru_maxrss` (baseline = "
        "after imports, before the measured call); rows = planning actions found (scan: rows "
        "read; check: 0).",
        "",
        series_table(series, scan, seg),
    ]
    pandas_big = get.get(("pandas", big))
    if pandas_big is not None:
        pandas_time, how = pandas_big.median, "measured on the big replica"
    elif sub is not None:
        p_sub, s_sub = get["pandas", sub], get["segment", sub]
        pandas_time = p_sub.median * n_big / p_sub.steps
        how = (
            f"**EXTRAPOLATED**: pandas was predicted to take {predicted:.0f} s per run on "
            f"{n_big:,} steps (> --pandas-budget {args.pandas_budget:.0f} s), so it was timed "
            f"on {p_sub.steps:,} steps ({p_sub.median:.2f} s) and scaled linearly; on that "
            f"replica pandas / segment = {p_sub.median / s_sub.median:.2f}"
        )
    else:
        pandas_time, how = float("nan"), "not run"
    seg_ratio = seg.median / scan.median
    pandas_ratio = pandas_time / seg.median
    met = lambda ok: "**yes**" if ok else "**no**"  # noqa: E731
    lines += [
        f"| goal | measured ({n_big:,} steps, medians) | met? |",
        "|---|---|---|",
        f"| `{seg.variant}` ≤ {SCAN_GOAL:.0f}× scan | {seg.median:.2f} s / {scan.median:.2f} s "
        f"= {seg_ratio:.1f}× | {met(seg_ratio <= SCAN_GOAL)} |",
        *floor_line(get.get(("window", big)), scan),
        f"| pandas ≥ {PANDAS_GOAL:.0f}× `{seg.variant}` | {pandas_time:.2f} s / "
        f"{seg.median:.2f} s = {pandas_ratio:.2f}× ({how}) | {met(pandas_ratio >= PANDAS_GOAL)} |",
        "",
    ]
    lines.append(
        f"Agreement on the {n_small:,}-step replica (validated: "
        f"{'no problems' if not problems else f'{len(problems)} problems'}):"
    )
    for name, a in agree.items():
        lines.append(
            f"- {name} vs package SQL: {a['same']:,} identical (episode_uid, frame_index) "
            f"planning actions of {a['sql']:,} (SQL) and {a['other']:,} ({name}), Jaccard "
            f"{a['jaccard']:.4f}; max |score diff| {a['max_score_diff']:.2g}; rank differences "
            f"{a['rank_diffs']}; outcome_score null/non-null differences "
            f"{a['outcome_null_diffs']}"
        )
    lines.append("")
    for which, n, wall, cpu, ops in profiles:
        lines += [
            f"DuckDB profile of the {which} SQL on {n:,} steps: " + profile_table(wall, cpu, ops)
        ]
    if failures:
        lines += ["**FAILURES:**", *[f"- {f}" for f in failures], ""]
    text = "\n".join(lines)
    print(text)
    if args.out_md:
        args.out_md.write_text(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
