"""PN, PS, PNS and harm from paired outcomes over seeds (common random numbers).

With Y_a the outcome under the logged action and Y_a' under the intervention, for one seed:
n10 = #(Y_a = 1, Y_a' = 0), n11, n01, n00. Then
    PN  = n10 / (n10 + n11)   = P(Y_a' = 0 | Y_a = 1)
    PS  = n10 / (n10 + n00)   = P(Y_a = 1 | Y_a' = 0)
    PNS = n10 / K,  harm = n01 / K.
Intervals are Wilson or Clopper-Pearson (scipy), never Wald. An estimate whose conditioning
event never happened is NaN with a reason, not 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

METHODS = ("wilson", "exact")  # exact = Clopper-Pearson


def proportion_interval(
    successes: int, trials: int, *, method: str = "wilson", confidence: float = 0.95
) -> tuple[float, float]:
    """Two-sided interval of a binomial proportion; (nan, nan) when there are no trials."""
    if method not in METHODS:
        raise ValueError(f"interval method must be one of {METHODS}, got {method!r}")
    if trials == 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest  # 0.5 s to import: not for every `papo` call

    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence, method=method)
    return (float(ci.low), float(ci.high))


def paired_pn_ps(
    factual: Any, alternative: Any, *, method: str = "wilson", confidence: float = 0.95
) -> dict[str, Any]:
    """PN, PS, PNS and harm from two equal-length 0/1 arrays over seeds (one pair per seed): a
    flat dict of the counts `n_pairs`, `n10`, `n11`, `n01`, `n00` and, for each of pn, ps, pns
    and harm, the estimate, `<name>_lo`, `<name>_hi` and `<name>_reason` (why it is undefined,
    else None)."""
    y = np.asarray(factual)
    y_alt = np.asarray(alternative)
    if y.shape != y_alt.shape or y.ndim != 1:
        raise ValueError(
            f"factual and alternative must be equal-length 1-d: {y.shape} {y_alt.shape}"
        )
    if not (np.isin(y, (0, 1)).all() and np.isin(y_alt, (0, 1)).all()):
        raise ValueError("factual and alternative outcomes must be 0/1")
    y, y_alt = y.astype(bool), y_alt.astype(bool)
    return pn_ps_from_counts(
        int(np.sum(y & ~y_alt)),
        int(np.sum(y & y_alt)),
        int(np.sum(~y & y_alt)),
        int(np.sum(~y & ~y_alt)),
        method=method,
        confidence=confidence,
    )


def pn_ps_from_counts(
    n10: int, n11: int, n01: int, n00: int, *, method: str = "wilson", confidence: float = 0.95
) -> dict[str, Any]:
    """`paired_pn_ps` from the four pair counts (n10 = factual 1, alternative 0; ...)."""
    if min(n10, n11, n01, n00) < 0:
        raise ValueError(f"pair counts must be >= 0, got {(n10, n11, n01, n00)}")
    k = n10 + n11 + n01 + n00
    out: dict[str, Any] = {"n_pairs": k, "n10": n10, "n11": n11, "n01": n01, "n00": n00}
    reasons = {
        "pn": "no seed where the factual arm succeeded",
        "ps": "no seed where the alternative arm failed",
        "pns": "no seeds",
        "harm": "no seeds",
    }
    for name, hits, trials in (
        ("pn", n10, n10 + n11),
        ("ps", n10, n10 + n00),
        ("pns", n10, k),
        ("harm", n01, k),
    ):
        out[name] = hits / trials if trials else math.nan
        out[f"{name}_lo"], out[f"{name}_hi"] = proportion_interval(
            hits, trials, method=method, confidence=confidence
        )
        out[f"{name}_reason"] = None if trials else reasons[name]
    return out


def cluster_bootstrap_ratio(
    num: Any, den: Any, clusters: Any, seed: int, samples: int = 10_000
) -> tuple[float, tuple[float, float]]:
    """sum(num) / sum(den) and its 95% percentile bootstrap interval, resampling whole clusters
    (rows that share a rollout, an initial state or a group are not independent). With `den`
    all ones this is the mean of `num`. Resamples whose denominator is 0 count as +inf."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    point = num.sum() / den.sum() if den.sum() > 0 else math.inf
    _, cluster = np.unique(np.asarray(clusters), return_inverse=True)
    num_c, den_c = np.bincount(cluster, num), np.bincount(cluster, den)
    idx = np.random.default_rng(seed).integers(0, len(num_c), size=(samples, len(num_c)))
    n, d = num_c[idx].sum(axis=1), den_c[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(d > 0, n / d, np.where(n > 0, np.inf, np.nan))
    ratios = ratios[~np.isnan(ratios)]
    lo, hi = np.quantile(ratios, [0.025, 0.975], method="inverted_cdf")
    return float(point), (float(lo), float(hi))
