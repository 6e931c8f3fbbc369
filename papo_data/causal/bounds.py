"""Tian–Pearl bounds on PN, PS and PNS from experimental and observational probabilities.

Without pairing of outcomes (logged data plus independent branches), the probabilities of
causation are only partially identified (Tian & Pearl 2000). With P(y_x) and P(y_x') from
experiments and the joint P(X, Y) from observation (DESIGN §3):

    PNS in [max{0, P(y_x) - P(y_x'), P(y) - P(y_x'), P(y_x) - P(y)},
            min{P(y_x), P(y'_x'), P(x,y) + P(x',y'), P(y_x) - P(y_x') + P(x,y') + P(x',y)}]
    PN  in [max{0, (P(y) - P(y_x')) / P(x,y)},  min{1, (P(y'_x') - P(x',y')) / P(x,y)}]
    PS  in [max{0, (P(y_x) - P(y)) / P(x',y')}, min{1, (P(y_x) - P(x,y)) / P(x',y')}]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

Bounds = dict[str, tuple[float, float]]
TOL = 1e-9


def _check(p_y_do_x: float, p_y_do_xp: float, joint: Sequence[float]) -> None:
    names = ("p_y_do_x", "p_y_do_xp", "p_xy", "p_xyp", "p_xpy", "p_xpyp")
    for name, p in zip(names, (p_y_do_x, p_y_do_xp, *joint), strict=True):
        if not (isinstance(p, numbers.Real) and math.isfinite(p) and -TOL <= p <= 1 + TOL):
            raise ValueError(f"{name} = {p!r} is not a probability in [0, 1]")
    if abs(sum(joint) - 1) > 1e-6:
        raise ValueError(
            f"p_xy + p_xyp + p_xpy + p_xpyp = {sum(joint):.6g}: the observational joint "
            "distribution must sum to 1"
        )


def tian_pearl_bounds(
    p_y_do_x: float,
    p_y_do_xp: float,
    p_xy: float,
    p_xyp: float,
    p_xpy: float,
    p_xpyp: float,
) -> Bounds:
    """{"pns": (lo, hi), "pn": (lo, hi), "ps": (lo, hi)}. `p_xy` = P(X=x, Y=y), `p_xyp` =
    P(X=x, Y=y'), `p_xpy` = P(X=x', Y=y), `p_xpyp` = P(X=x', Y=y'). PN is (nan, nan) when
    P(x,y) = 0 and PS when P(x',y') = 0 (conditioning on an event that never happens).
    Experimental and observational data that no causal model can produce together
    (e.g. P(y_x) < P(x,y)) raise ValueError."""
    _check(p_y_do_x, p_y_do_xp, (p_xy, p_xyp, p_xpy, p_xpyp))
    compatible = (
        p_xy - TOL <= p_y_do_x <= 1 - p_xyp + TOL and p_xpy - TOL <= p_y_do_xp <= 1 - p_xpyp + TOL
    )
    if not compatible:
        raise ValueError(
            "incompatible data: experiments must satisfy P(x,y) <= P(y_x) <= 1 - P(x,y') and "
            f"P(x',y) <= P(y_x') <= 1 - P(x',y'); got P(y_x)={p_y_do_x:.4g}, "
            f"P(y_x')={p_y_do_xp:.4g}, joint=({p_xy:.4g}, {p_xyp:.4g}, {p_xpy:.4g}, {p_xpyp:.4g})"
        )
    p_y = p_xy + p_xpy
    p_yp_do_xp = 1 - p_y_do_xp
    pns = (
        max(0.0, p_y_do_x - p_y_do_xp, p_y - p_y_do_xp, p_y_do_x - p_y),
        min(p_y_do_x, p_yp_do_xp, p_xy + p_xpyp, p_y_do_x - p_y_do_xp + p_xyp + p_xpy),
    )
    nan = (math.nan, math.nan)
    pn = (
        (max(0.0, (p_y - p_y_do_xp) / p_xy), min(1.0, (p_yp_do_xp - p_xpyp) / p_xy))
        if p_xy > 0
        else nan
    )
    ps = (
        (max(0.0, (p_y_do_x - p_y) / p_xpyp), min(1.0, (p_y_do_x - p_xy) / p_xpyp))
        if p_xpyp > 0
        else nan
    )
    return {"pns": _clip(pns), "pn": _clip(pn), "ps": _clip(ps)}


def _clip(bounds: tuple[float, float]) -> tuple[float, float]:
    """Into [0, 1] and lo <= hi, undoing float rounding only (a pinned value computed two ways
    can differ in the last bit; compatible inputs never give a real lo > hi)."""
    lo, hi = bounds
    if math.isnan(lo):
        return bounds
    lo, hi = min(max(lo, 0.0), 1.0), min(max(hi, 0.0), 1.0)
    if lo > hi:
        lo = hi = (lo + hi) / 2
    return (lo, hi)


def stratified_bounds(strata: Sequence[tuple[float, Sequence[float]]]) -> Bounds:
    """Bounds per covariate stratum, combined: `strata` holds (P(s), (p_y_do_x, p_y_do_xp,
    p_xy, p_xyp, p_xpy, p_xpyp)) with probabilities conditional on the stratum. PNS averages
    over P(s); PN over P(s) P(x,y | s) and PS over P(s) P(x',y' | s), because PN and PS
    condition on (x, y) and (x', y')."""
    if not strata:
        raise ValueError("stratified_bounds: no strata")
    total = sum(w for w, _ in strata)
    if not all(w >= 0 for w, _ in strata) or abs(total - 1) > 1e-6:
        raise ValueError(f"stratum weights must be >= 0 and sum to 1, got sum {total:.6g}")
    per = [(w, probs, tian_pearl_bounds(*probs)) for w, probs in strata]
    out: Bounds = {"pns": _mix([(w, b["pns"]) for w, _, b in per])}
    out["pn"] = _mix([(w * probs[2], b["pn"]) for w, probs, b in per])
    out["ps"] = _mix([(w * probs[5], b["ps"]) for w, probs, b in per])
    return out


def _mix(parts: list[tuple[float, tuple[float, float]]]) -> tuple[float, float]:
    parts = [(w, b) for w, b in parts if w > 0]
    total = sum(w for w, _ in parts)
    if not total:
        return (math.nan, math.nan)
    lo = sum(w * b[0] for w, b in parts) / total
    hi = sum(w * b[1] for w, b in parts) / total
    return _clip((lo, hi))
