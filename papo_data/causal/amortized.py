"""Amortised importance: a scikit-learn model trained on branched planning actions predicts the
importance of the rest from step features, so only an audit fraction needs branching.

The audit set is a deterministic hash of (episode, frame), so `papo branch --audit-fraction F`
and `papo estimate --amortize --audit-fraction F` agree on it without talking to each other.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text

SEED = 0


def audited(episode_uid: str, frame: int, fraction: float) -> bool:
    """Whether a planning action belongs to the audit set of `fraction` (stable across runs)."""
    digest = hashlib.sha256(f"{episode_uid}\x1f{frame}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def features(rows: list[dict[str, Any]]) -> np.ndarray:
    """Scores, phase in the episode, gripper state and the observation at the frame."""
    return np.array(
        [
            [
                r["variation_score"],
                math.nan if r["outcome_score"] is None else r["outcome_score"],
                r["score"],
                r["frame_index"] / r["length"],
                r["gripper_now"],
                r["gripper_before"],
                *r["state"],
            ]
            for r in rows
        ],
        dtype=np.float64,
    )


@dataclass
class AmortizedResult:
    rows: list[dict[str, Any]]
    """Causal rows (method 'amortized') for planning actions that were not branched."""
    n_train: int
    cv_mae: float
    """5-fold cross-validated mean absolute error against branched importance."""
    baseline_mae: float
    """Same, predicting the training mean: what the model has to beat."""


MIN_TRAINING = 10
"""Fewest branched planning actions the amortised model trains on (5-fold CV needs a few)."""


def amortize(
    ds: Dataset, detector: str, importance: dict[tuple[str, int], float]
) -> AmortizedResult:
    """Train on `importance` (branched truth per planning action), predict the others of
    `detector`. Needs at least `MIN_TRAINING` branched actions to cross-validate."""
    rows = ds.arrow(sql_text(__file__, "amortize_features.sql"), {"detector": detector}).to_pylist()
    train = [r for r in rows if (r["episode_uid"], r["frame_index"]) in importance]
    rest = [r for r in rows if (r["episode_uid"], r["frame_index"]) not in importance]
    y = np.array([importance[(r["episode_uid"], r["frame_index"])] for r in train])
    if len(train) < MIN_TRAINING:
        raise ValueError(
            f"only {len(train)} branched planning actions; need at least {MIN_TRAINING}"
        )
    from sklearn.ensemble import HistGradientBoostingRegressor  # slow import: only when fitting
    from sklearn.model_selection import KFold, cross_val_predict

    # Small leaves: the audit set is often tens of actions, and the default (20) never splits.
    model = HistGradientBoostingRegressor(
        max_iter=100, learning_rate=0.05, min_samples_leaf=3, random_state=SEED
    )
    x = features(train)
    # Constant columns carry nothing, and sklearn 1.9's binning fails on some of them.
    informative = np.ptp(x, axis=0) > 0
    x = x[:, informative]
    folds = KFold(5, shuffle=True, random_state=SEED)
    predicted = np.clip(cross_val_predict(model, x, y, cv=folds), 0, 1)
    baseline = np.zeros_like(y)
    for fit, held in folds.split(x):
        baseline[held] = y[fit].mean()
    model.fit(x, y)
    out = []
    if rest:
        for r, value in zip(
            rest, np.clip(model.predict(features(rest)[:, informative]), 0, 1), strict=True
        ):
            out.append(
                {
                    "episode_uid": r["episode_uid"],
                    "frame_index": r["frame_index"],
                    "intervention": "predicted",
                    "n_pairs": 0,
                    **{f"{n}{s}": None for n in ("pn", "ps", "pns") for s in ("", "_lo", "_hi")},
                    "harm": None,
                    "importance": float(value),
                    "method": "amortized",
                }
            )
    return AmortizedResult(
        rows=out,
        n_train=len(train),
        cv_mae=float(np.mean(np.abs(predicted - y))),
        baseline_mae=float(np.mean(np.abs(baseline - y))),
    )
