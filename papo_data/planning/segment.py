"""Find planning actions: per-step scores in DuckDB SQL (step_scores.sql), then non-max
suppression and top-M per episode (planning_actions.sql), written to `papo/planning_actions`.

The detectors of DESIGN §3 are one flag: `variation` (nearness to a gripper switch first, then
action change as robust z-scores per episode), `outcome` (contrast of successful and failed
siblings at aligned frames), `joint` (s = v+ (1 + beta o)) and `random` (a seeded ablation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.data.writer import DatasetWriter
from papo_data.errors import BadInput

DETECTORS = ("joint", "variation", "outcome", "random")


@dataclass(frozen=True)
class SegmentConfig:
    """Knobs of the detectors; each has a `papo segment` flag of the same name."""

    detector: str = "joint"
    """joint | variation | outcome | random."""
    top_m: int = 3
    """Planning actions kept per episode (the best-scoring local maxima)."""
    window: int = 5
    """Steps a decision spans: the averaging window of the variation score, the +-w alignment
    of the outcome contrast, the non-max suppression radius and the branch window."""
    threshold: float = 0.5
    """A local maximum must score above this. Away from gripper switches v_t is
    (1 + z / (1 + |z|)) / 2 of the robust z of action change, so 0.5 keeps changes above the
    episode's median."""
    beta: float = 0.2
    """Weight of the outcome contrast in the joint score s = v+ (1 + beta o). o is unbounded
    (often 0-5) while the nearness levels of v are 1 apart, so a small beta lets o re-rank steps
    near a switch and the windows beyond, without scattering the steps around the switch
    (analyses/RESULTS.md: beta 0.2 flipped as often as or more than beta 1 in 7 of 8 cells)."""
    switch_weight: float = 1.0
    """Weight of the nearness to a gripper switch, (w + 1 - d)+ for a step d frames from the
    nearest one, in the variation score. At >= 1 the steps nearest a switch rank before any
    action change (the switch frame first); 0 scores action change alone."""
    seed: int = 0
    """Seed of the random detector."""

    def check(self) -> None:
        if self.detector not in DETECTORS:
            raise BadInput(f"--detector must be one of {', '.join(DETECTORS)}: {self.detector!r}")
        if self.top_m < 1:
            raise BadInput(f"--top-m must be at least 1, got {self.top_m}")
        if self.window < 1:
            raise BadInput(f"--window must be at least 1, got {self.window}")
        for name in ("threshold", "beta", "switch_weight"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise BadInput(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        if self.beta < 0:
            raise BadInput(f"--beta must be >= 0, got {self.beta}")
        if self.seed < 0:
            raise BadInput(f"--seed must be >= 0, got {self.seed}")


def _dims(ds: Dataset) -> tuple[list[int], int | None, int]:
    """1-based continuous dims, the gripper dim (or None) and the number of dims."""
    n_dims = ds.dims["action_dim"]
    names = ds.info.get("papo", {}).get("action_names") or [f"a{i}" for i in range(n_dims)]
    grip = [i + 1 for i, n in enumerate(names) if "gripper" in n]
    cont = [i + 1 for i, n in enumerate(names) if "gripper" not in n]
    if not cont:
        raise BadInput(f"{ds.root}: meta/info.json: no continuous action dims in {names}")
    return cont, grip[0] if grip else None, n_dims


def _step_scores_sql(ds: Dataset) -> str:
    """step_scores.sql with its per-dim slots filled: one column per action dim."""
    cont, grip, n_dims = _dims(ds)
    dims = range(1, n_dims + 1)

    def contrast_term(d: int) -> str:
        var = f"ok.sxx{d} - ok.sx{d} * ok.sx{d} / ok.n + ko.sxx{d} - ko.sx{d} * ko.sx{d} / ko.n"
        mean_gap = f"power(ok.sx{d} / ok.n - ko.sx{d} / ko.n, 2)"
        return f"{mean_gap} / (({var}) / greatest(ok.n + ko.n - 2, 1) + 0.01)"

    return sql_text(__file__, "step_scores.sql").format(
        extract=", ".join(f"action[{d}] AS x{d}" for d in dims),
        means=", ".join(
            f"avg(x{k}) OVER before AS b{k}, avg(x{k}) OVER after AS a{k}" for k in cont
        ),
        switch=f"coalesce(abs(x{grip} - lag(x{grip}) OVER o) > 0.5, false)" if grip else "false",
        before=", ".join(f"b{k}" for k in cont),
        after=", ".join(f"a{k}" for k in cont),
        sums=", ".join(
            f"sum(s.action[{d}]::DOUBLE) AS sx{d}, sum(s.action[{d}]::DOUBLE ^ 2) AS sxx{d}"
            for d in dims
        ),
        pooled=", ".join(
            f"sum(sx{d}) OVER win AS sx{d}, sum(sxx{d}) OVER win AS sxx{d}" for d in dims
        ),
        terms=" + ".join(contrast_term(d) for d in dims),
        n_dims=n_dims,
    )


def _query_params(cfg: SegmentConfig) -> dict[str, object]:
    return {
        "w": cfg.window,
        "beta": cfg.beta,
        "switch_weight": cfg.switch_weight,
        "detector": cfg.detector,
        "seed": cfg.seed,
    }


def _params(ds: Dataset, cfg: SegmentConfig) -> dict[str, object]:
    """Query parameters plus the action dims (the analyses' SQL variants read these)."""
    cont, grip, n_dims = _dims(ds)
    return _query_params(cfg) | {"cont": cont, "grip": grip, "n_dims": n_dims}


def step_scores(ds: Dataset, cfg: SegmentConfig, group_id: str | None = None) -> pa.Table:
    """Every step's variation, outcome and detector score (full windows only), as Arrow; with
    `group_id`, the steps of that group only (the same rows, without scoring the rest)."""
    cfg.check()
    if group_id is None:
        return ds.arrow(_step_scores_sql(ds), _query_params(cfg))
    query = sql_text(__file__, "one_group.sql").format(step_scores=_step_scores_sql(ds))
    return ds.arrow(query, _query_params(cfg) | {"group_id": group_id})


def planning_actions_sql(step_scores_sql: str) -> str:
    """planning_actions.sql over the per-step scores of `step_scores_sql` (the package's, or an
    analysis's edited copy)."""
    return f"WITH step_scores AS (\n{step_scores_sql}\n)\n" + sql_text(
        __file__, "planning_actions.sql"
    )


def detect(ds: Dataset, cfg: SegmentConfig) -> pa.Table:
    """Planning actions of every episode under `cfg`, in the planning_actions schema."""
    cfg.check()
    query = planning_actions_sql(_step_scores_sql(ds))
    params = _query_params(cfg) | {"threshold": cfg.threshold, "top_m": cfg.top_m}
    return ds.arrow(query, params)


@dataclass
class SegmentSummary:
    detector: str
    planning_actions: int
    episodes: int
    episodes_without: int
    one_outcome_groups: int
    one_outcome_episodes: int


def segment(path: Path, cfg: SegmentConfig) -> SegmentSummary:
    """Detect and write planning actions, replacing this detector's previous result."""
    cfg.check()
    with DatasetWriter.open(path) as writer:
        with Dataset(path) as ds:
            rows = detect(ds, cfg)
            one = ds.arrow(sql_text(__file__, "one_outcome_groups.sql")).to_pylist()[0]
            n_episodes = ds.arrow("SELECT count(*) AS n FROM episodes").to_pylist()[0]["n"]
        # The rows, and the settings each detector last ran with, in one commit.
        done = writer.info.get("papo", {}).get("segment", {})
        writer.write_sidecar(
            "planning_actions",
            rows,
            replace={"detector": cfg.detector},
            papo={"segment": {**done, cfg.detector: asdict(cfg)}},
        )
    with_actions = len(set(rows.column("episode_uid").to_pylist()))
    return SegmentSummary(
        detector=cfg.detector,
        planning_actions=rows.num_rows,
        episodes=n_episodes,
        episodes_without=n_episodes - with_actions,
        one_outcome_groups=int(one["groups"]),
        one_outcome_episodes=int(one["episodes"]),
    )
