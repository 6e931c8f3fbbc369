"""Probabilities of causation (DESIGN §3): Tian–Pearl bounds and paired PN / PS / PNS / harm.

Notation: x is the logged action, x' the intervention; y success, y' failure. P(y_x) and
P(y_x') come from experiments, the joint P(X, Y) from observation. The arguments of
`tian_pearl_bounds` are (P(y_x), P(y_x'), P(x,y), P(x,y'), P(x',y), P(x',y')).

The property tests build a causal model by hand: four response types u with (Y_x, Y_x') =
always (1, 1), necessary-and-sufficient "ns" (1, 0), harm (0, 1), never (0, 0), with
probabilities q_u, and a treatment assignment P(X = x | u) = pi_u that may depend on the type
(confounding). Its experimental and observational distributions go into the bounds and its TRUE
PN, PS and PNS must come out inside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from papo_data.causal import (
    cluster_bootstrap_ratio,
    paired_pn_ps,
    pn_ps_from_counts,
    proportion_interval,
    stratified_bounds,
    tian_pearl_bounds,
)

TOL = 1e-9
NAN = (math.nan, math.nan)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def approx_pair(lo: float, hi: float, abs_: float = 1e-12):
    return (pytest.approx(lo, abs=abs_), pytest.approx(hi, abs=abs_))


def is_nan_pair(pair: tuple[float, float]) -> bool:
    return math.isnan(pair[0]) and math.isnan(pair[1])


# ---------------------------------------------------------------------------------------------
# Tian–Pearl bounds: closed-form cases
# ---------------------------------------------------------------------------------------------

# Each case: (P(y_x), P(y_x'), P(x,y), P(x,y'), P(x',y), P(x',y')) -> expected bounds.
CLOSED_FORM = {
    # P(x,y') = 0 pins PN: lower (P(y) - P(y_x'))/P(x,y) equals
    # upper (1 - P(y_x') - P(x',y'))/P(x,y) iff P(y) = 1 - P(x',y') iff P(x,y') = 0.
    # P(y) = 0.4 + 0.2 = 0.6.
    # PN  lo = (0.6 - 0.3) / 0.4 = 0.75;  hi = (0.7 - 0.4) / 0.4 = 0.75      -> PN = 0.75
    # PS  lo = (0.8 - 0.6) / 0.4 = 0.5;   hi = min(1, (0.8 - 0.4) / 0.4 = 1)  -> [0.5, 1]
    # PNS lo = max(0, 0.8-0.3=0.5, 0.6-0.3=0.3, 0.8-0.6=0.2)                  = 0.5
    #     hi = min(0.8, 1-0.3=0.7, 0.4+0.4=0.8, 0.5+0+0.2=0.7)                 = 0.7
    "pn_pinned": (
        (0.8, 0.3, 0.4, 0.0, 0.2, 0.4),
        {"pns": (0.5, 0.7), "pn": (0.75, 0.75), "ps": (0.5, 1.0)},
    ),
    # P(x',y) = 0 pins PS: lower (P(y_x) - P(y))/P(x',y') equals upper (P(y_x) - P(x,y))/P(x',y')
    # iff P(y) = P(x,y) iff P(x',y) = 0.
    # P(y) = 0.3.
    # PS  lo = (0.6 - 0.3) / 0.5 = 0.6;   hi = (0.6 - 0.3) / 0.5 = 0.6        -> PS = 0.6
    # PN  lo = (0.3 - 0.1) / 0.3 = 2/3;   hi = min(1, (0.9 - 0.5) / 0.3 = 4/3) = 1
    # PNS lo = max(0, 0.6-0.1=0.5, 0.3-0.1=0.2, 0.6-0.3=0.3)                  = 0.5
    #     hi = min(0.6, 0.9, 0.3+0.5=0.8, 0.5+0.2+0=0.7)                       = 0.6
    "ps_pinned": (
        (0.6, 0.1, 0.3, 0.2, 0.0, 0.5),
        {"pns": (0.5, 0.6), "pn": (2 / 3, 1.0), "ps": (0.6, 0.6)},
    ),
    # Interior bounds on every side; the fourth PNS upper term is the active one.
    # P(y) = 0.5 + 0.1 = 0.6.
    # PNS lo = max(0, 0.6-0.5=0.1, 0.6-0.5=0.1, 0.6-0.6=0)                    = 0.1
    #     hi = min(0.6, 0.5, 0.5+0.3=0.8, 0.1+0.1+0.1=0.3)                     = 0.3
    # PN  lo = (0.6 - 0.5) / 0.5 = 0.2;   hi = (0.5 - 0.3) / 0.5 = 0.4
    # PS  lo = max(0, (0.6 - 0.6) / 0.3) = 0;  hi = (0.6 - 0.5) / 0.3 = 1/3
    "interior": (
        (0.6, 0.5, 0.5, 0.1, 0.1, 0.3),
        {"pns": (0.1, 0.3), "pn": (0.2, 0.4), "ps": (0.0, 1 / 3)},
    ),
    # Confounded case where P(y_x) - P(y) is the active PNS lower term and PS is pinned at 1
    # by P(y_x) = 1 - P(x,y') (everyone who got x' would have succeeded under x).
    # P(y) = 0.2 + 0.1 = 0.3.
    # PNS lo = max(0, 0.9-0.35=0.55, 0.3-0.35<0, 0.9-0.3=0.6)                 = 0.6
    #     hi = min(0.9, 0.65, 0.2+0.6=0.8, 0.55+0.1+0.1=0.75)                  = 0.65
    # PN  lo = max(0, (0.3 - 0.35) / 0.2 < 0) = 0;  hi = min(1, (0.65 - 0.6) / 0.2) = 0.25
    # PS  lo = (0.9 - 0.3) / 0.6 = 1;  hi = min(1, (0.9 - 0.2) / 0.6 = 7/6) = 1
    "ps_one": (
        (0.9, 0.35, 0.2, 0.1, 0.1, 0.6),
        {"pns": (0.6, 0.65), "pn": (0.0, 0.25), "ps": (1.0, 1.0)},
    ),
    # P(y) - P(y_x') is the active PNS lower term (observational success above both arms).
    # P(y) = 0.35 + 0.45 = 0.8.
    # PNS lo = max(0, 0.5-0.5=0, 0.8-0.5=0.3, 0.5-0.8<0)                      = 0.3
    #     hi = min(0.5, 0.5, 0.35+0.15=0.5, 0+0.05+0.45=0.5)                   = 0.5
    # PN  lo = (0.8 - 0.5) / 0.35 = 6/7;  hi = min(1, (0.5 - 0.15) / 0.35 = 1) = 1
    # PS  lo = max(0, (0.5 - 0.8) / 0.15 < 0) = 0;  hi = min(1, (0.5 - 0.35) / 0.15 = 1) = 1
    "obs_above_both": (
        (0.5, 0.5, 0.35, 0.05, 0.45, 0.15),
        {"pns": (0.3, 0.5), "pn": (6 / 7, 1.0), "ps": (0.0, 1.0)},
    ),
    # P(x,y) + P(x',y') is the active PNS upper term, and it meets the lower bound: the
    # observational joint pins PNS (and PN = PS = 1).
    # P(y) = 0.1 + 0.4 = 0.5.
    # PNS lo = max(0, 0.6-0.4=0.2, 0.5-0.4=0.1, 0.6-0.5=0.1)                  = 0.2
    #     hi = min(0.6, 0.6, 0.1+0.1=0.2, 0.2+0.4+0.4=1.0)                     = 0.2
    # PN  lo = (0.5 - 0.4) / 0.1 = 1;  hi = min(1, (0.6 - 0.1) / 0.1 = 5) = 1
    # PS  lo = (0.6 - 0.5) / 0.1 = 1;  hi = min(1, (0.6 - 0.1) / 0.1 = 5) = 1
    "pns_pinned": (
        (0.6, 0.4, 0.1, 0.4, 0.4, 0.1),
        {"pns": (0.2, 0.2), "pn": (1.0, 1.0), "ps": (1.0, 1.0)},
    ),
}


@pytest.mark.parametrize("name", list(CLOSED_FORM))
def test_closed_form_bounds(name: str) -> None:
    probs, expected = CLOSED_FORM[name]
    got = tian_pearl_bounds(*probs)
    assert set(got) == {"pns", "pn", "ps"}
    for key, (lo, hi) in expected.items():
        assert got[key] == approx_pair(lo, hi), key


def test_observation_and_experiment_together_pin_pn() -> None:
    # Experiments alone: PNS in [P(y_x) - P(y_x'), ...] and PN unrestricted. With P(x,y') = 0
    # the observational joint collapses the PN interval to a single point.
    (p_y_do_x, p_y_do_xp, p_xy, p_xyp, p_xpy, p_xpyp), _ = CLOSED_FORM["pn_pinned"]
    assert p_xyp == 0
    p_y = p_xy + p_xpy
    point = (p_y - p_y_do_xp) / p_xy
    assert point == pytest.approx((1 - p_y_do_xp - p_xpyp) / p_xy)
    lo, hi = tian_pearl_bounds(p_y_do_x, p_y_do_xp, p_xy, p_xyp, p_xpy, p_xpyp)["pn"]
    assert lo == pytest.approx(point) and hi == pytest.approx(point)
    # The same experiment with P(x,y') > 0 (mass moved from (x',y') to (x,y')) is no longer pinned:
    # PN lo = (0.6 - 0.3)/0.4 = 0.75, hi = (0.7 - 0.3)/0.4 = 1.
    lo, hi = tian_pearl_bounds(p_y_do_x, p_y_do_xp, 0.4, 0.1, 0.2, 0.3)["pn"]
    assert (lo, hi) == approx_pair(0.75, 1.0)


def test_pinned_interval_is_ordered() -> None:
    # P(x,y') = 0 pins PN at 0.75; lo = (0.6 - 0.3)/0.4 and hi = (0.7 - 0.4)/0.4 are computed
    # separately and round to 0.7500000000000002 > 0.7499999999999998.
    lo, hi = tian_pearl_bounds(0.8, 0.3, 0.4, 0.0, 0.2, 0.4)["pn"]
    assert lo <= hi


def test_exogeneity_closed_form() -> None:
    # No confounding: P(x) = 0.4, P(y|x) = 0.75, P(y|x') = 0.25 and P(y_x) = P(y|x),
    # P(y_x') = P(y|x'). Joint: P(x,y) = 0.4*0.75 = 0.3, P(x,y') = 0.1,
    # P(x',y) = 0.6*0.25 = 0.15, P(x',y') = 0.45.
    # PNS in [max(0, 0.75 - 0.25), min(0.75, 1 - 0.25)] = [0.5, 0.75]
    # PN  lo = excess risk ratio 1 - 0.25/0.75 = 2/3; hi = min(1, P(y'|x')/P(y|x) = 1) = 1
    # PS  lo = 1 - P(y'|x)/P(y'|x') = 1 - 0.25/0.75 = 2/3; hi = min(1, P(y|x)/P(y'|x') = 1) = 1
    got = tian_pearl_bounds(0.75, 0.25, 0.3, 0.1, 0.15, 0.45)
    assert got["pns"] == approx_pair(0.5, 0.75)
    assert got["pn"] == approx_pair(2 / 3, 1.0)
    assert got["ps"] == approx_pair(2 / 3, 1.0)


@PROPERTY
@given(
    p_x=st.integers(1, 19).map(lambda k: k / 20),
    a=st.integers(1, 20).map(lambda k: k / 20),
    b=st.integers(0, 20).map(lambda k: k / 20),
)
def test_exogeneity_reduces_bounds(p_x: float, a: float, b: float) -> None:
    # a = P(y|x) = P(y_x), b = P(y|x') = P(y_x'). P(y) = p a + (1-p) b lies between a and b, so
    # the P(y) terms of the PNS lower bound never beat a - b; P(x,y) + P(x',y') and
    # (a - b) + P(x,y') + P(x',y) = (1-p) a + p (1-b) are convex combinations of a and 1 - b,
    # so never below min(a, 1 - b). PN lo = p (a - b) / (p a) = 1 - b / a.
    joint = (p_x * a, p_x * (1 - a), (1 - p_x) * b, (1 - p_x) * (1 - b))
    got = tian_pearl_bounds(a, b, *joint)
    assert got["pns"] == approx_pair(max(0.0, a - b), min(a, 1 - b), 1e-9)
    assert got["pn"][0] == pytest.approx(max(0.0, 1 - b / a), abs=1e-9)
    assert got["pn"][1] == pytest.approx(min(1.0, (1 - b) / a), abs=1e-9)


def test_monotonicity_closed_form() -> None:
    # No harm type: q_always = 0.2, q_ns = 0.5, q_harm = 0, q_never = 0.3, and
    # P(x | always) = 0.5, P(x | ns) = 0.6, P(x | never) = 0.2 (confounded).
    # P(y_x) = 0.2 + 0.5 = 0.7, P(y_x') = 0.2.
    # P(x,y) = 0.2*0.5 + 0.5*0.6 = 0.4;  P(x,y') = 0.3*0.2 = 0.06;
    # P(x',y) = 0.2*0.5 = 0.1;           P(x',y') = 0.5*0.4 + 0.3*0.8 = 0.44.   P(y) = 0.5.
    # True PNS = P(y_x) - P(y_x') = 0.5; true PN = 0.3/0.4 = 0.75; true PS = 0.2/0.44 = 5/11.
    # PN lo = (P(y) - P(y_x'))/P(x,y) = (0.5 - 0.2)/0.4 = 0.75 = true PN (identified).
    # PS lo = (P(y_x) - P(y))/P(x',y') = (0.7 - 0.5)/0.44 = 5/11 = true PS.
    # PNS hi = min(0.7, 0.8, 0.4+0.44=0.84, 0.5+0.06+0.1=0.66) = 0.66.
    got = tian_pearl_bounds(0.7, 0.2, 0.4, 0.06, 0.1, 0.44)
    assert got["pns"] == approx_pair(0.5, 0.66)
    assert got["pn"][0] == pytest.approx(0.75)
    assert got["ps"][0] == pytest.approx(5 / 11)
    for key, true in (("pns", 0.5), ("pn", 0.75), ("ps", 5 / 11)):
        lo, hi = got[key]
        assert lo - TOL <= true <= hi + TOL


# ---------------------------------------------------------------------------------------------
# Tian–Pearl bounds: undefined and invalid input
# ---------------------------------------------------------------------------------------------


def test_pn_undefined_when_p_xy_zero() -> None:
    # P(x,y) = 0: PN conditions on an event that never happens.
    got = tian_pearl_bounds(0.3, 0.4, 0.0, 0.5, 0.3, 0.2)
    assert is_nan_pair(got["pn"])
    assert not math.isnan(got["pns"][0]) and not math.isnan(got["ps"][0])
    # PS lo = max(0, (0.3 - 0.3)/0.2) = 0, hi = min(1, (0.3 - 0)/0.2) = 1
    assert got["ps"] == approx_pair(0.0, 1.0)


def test_ps_undefined_when_p_xpyp_zero() -> None:
    got = tian_pearl_bounds(0.6, 0.5, 0.4, 0.2, 0.4, 0.0)
    assert is_nan_pair(got["ps"])
    assert not math.isnan(got["pns"][0]) and not math.isnan(got["pn"][0])


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        ((1.5, 0.3, 0.4, 0.0, 0.2, 0.4), r"p_y_do_x = 1\.5 is not a probability"),
        ((0.8, -0.1, 0.4, 0.0, 0.2, 0.4), r"p_y_do_xp = -0\.1 is not a probability"),
        ((0.8, 0.3, math.nan, 0.0, 0.2, 0.4), r"p_xy = nan is not a probability"),
        ((0.8, 0.3, 0.4, 0.0, math.inf, 0.4), r"p_xpy = inf is not a probability"),
        ((0.8, 0.3, 0.4, 0.0, 0.2, "0.4"), r"p_xpyp = '0\.4' is not a probability"),
        ((0.8, 0.3, 0.4, 0.1, 0.2, 0.4), r"must sum to 1"),
        ((0.8, 0.3, 0.4, 0.0, 0.2, 0.3), r"must sum to 1"),
        # P(y_x) = 0.2 < P(x,y) = 0.4: the units with X = x, Y = y have Y_x = 1.
        ((0.2, 0.3, 0.4, 0.0, 0.2, 0.4), r"incompatible data"),
        # P(y_x) = 0.8 > 1 - P(x,y') = 0.7.
        ((0.8, 0.3, 0.4, 0.3, 0.1, 0.2), r"incompatible data"),
        # P(y_x') = 0.1 < P(x',y) = 0.2.
        ((0.8, 0.1, 0.4, 0.0, 0.2, 0.4), r"incompatible data"),
        # P(y_x') = 0.7 > 1 - P(x',y') = 0.6.
        ((0.8, 0.7, 0.4, 0.0, 0.2, 0.4), r"incompatible data"),
    ],
)
def test_invalid_input_raises(probs: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tian_pearl_bounds(*probs)


# ---------------------------------------------------------------------------------------------
# stratified_bounds
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CLOSED_FORM))
def test_one_stratum_equals_unstratified(name: str) -> None:
    probs, _ = CLOSED_FORM[name]
    got = stratified_bounds([(1.0, probs)])
    want = tian_pearl_bounds(*probs)
    for key in ("pns", "pn", "ps"):
        assert got[key] == approx_pair(*want[key]), key


def test_two_strata_weighted_combination() -> None:
    # S1: P(s) = 0.4, "pn_pinned" -> PNS [0.5, 0.7], PN [0.75, 0.75], PS [0.5, 1], P(x,y|s) = 0.4,
    #     P(x',y'|s) = 0.4.
    # S2: P(s) = 0.6, "interior"  -> PNS [0.1, 0.3], PN [0.2, 0.4], PS [0, 1/3], P(x,y|s) = 0.5,
    #     P(x',y'|s) = 0.3.
    # PNS by P(s):          lo = 0.4*0.5 + 0.6*0.1 = 0.26;  hi = 0.4*0.7 + 0.6*0.3 = 0.46
    # PN by P(s)P(x,y|s):   w = (0.16, 0.30), total 0.46
    #                       lo = (0.16*0.75 + 0.30*0.2)/0.46 = 0.18/0.46 = 9/23
    #                       hi = (0.16*0.75 + 0.30*0.4)/0.46 = 0.24/0.46 = 12/23
    # PS by P(s)P(x',y'|s): w = (0.16, 0.18), total 0.34
    #                       lo = (0.16*0.5 + 0.18*0)/0.34 = 0.08/0.34 = 4/17
    #                       hi = (0.16*1 + 0.18/3)/0.34 = 0.22/0.34 = 11/17
    got = stratified_bounds([(0.4, CLOSED_FORM["pn_pinned"][0]), (0.6, CLOSED_FORM["interior"][0])])
    assert got["pns"] == approx_pair(0.26, 0.46)
    assert got["pn"] == approx_pair(9 / 23, 12 / 23)
    assert got["ps"] == approx_pair(4 / 17, 11 / 17)


def test_stratum_without_xy_drops_out_of_pn() -> None:
    # S1 has P(x,y|s) = 0 (PN undefined there) and so weight 0 in PN: the combined PN is S2's.
    s1 = (0.3, 0.4, 0.0, 0.5, 0.3, 0.2)
    s2 = CLOSED_FORM["interior"][0]
    got = stratified_bounds([(0.5, s1), (0.5, s2)])
    assert got["pn"] == approx_pair(0.2, 0.4)
    assert not math.isnan(got["pns"][0]) and not math.isnan(got["ps"][0])
    # PN undefined in every stratum -> undefined overall, not 0.
    assert is_nan_pair(stratified_bounds([(0.5, s1), (0.5, s1)])["pn"])
    # PS undefined in every stratum -> undefined overall.
    no_xpyp = (0.6, 0.5, 0.4, 0.2, 0.4, 0.0)
    assert is_nan_pair(stratified_bounds([(1.0, no_xpyp)])["ps"])


@pytest.mark.parametrize(
    "weights",
    [(0.5, 0.4), (0.6, 0.6), (1.2, -0.2), (math.nan, 1.0)],
)
def test_stratum_weights_must_be_a_distribution(weights: tuple[float, float]) -> None:
    probs = CLOSED_FORM["interior"][0]
    with pytest.raises(ValueError, match="stratum weights"):
        stratified_bounds([(w, probs) for w in weights])


def test_stratified_needs_strata_and_checks_each() -> None:
    with pytest.raises(ValueError, match="no strata"):
        stratified_bounds([])
    bad = (0.2, 0.3, 0.4, 0.0, 0.2, 0.4)  # P(y_x) < P(x,y)
    with pytest.raises(ValueError, match="incompatible"):
        stratified_bounds([(0.5, CLOSED_FORM["interior"][0]), (0.5, bad)])


# ---------------------------------------------------------------------------------------------
# Tian–Pearl bounds: property tests against a generating causal model
# ---------------------------------------------------------------------------------------------

TYPES = ("always", "ns", "harm", "never")
Y_X = {"always": 1, "ns": 1, "harm": 0, "never": 0}
Y_XP = {"always": 1, "ns": 0, "harm": 1, "never": 0}


@dataclass(frozen=True)
class Model:
    """Response-type model with exact (rational) probabilities."""

    q: dict[str, Fraction]  # P(u)
    pi: dict[str, Fraction]  # P(X = x | u)

    def p(self, x: int, y: int) -> Fraction:
        """P(X = x, Y = y) where Y = Y_x if x == 1 else Y_x'."""
        resp = Y_X if x else Y_XP
        return sum(
            (self.q[u] * (self.pi[u] if x else 1 - self.pi[u]) for u in TYPES if resp[u] == y),
            Fraction(0),
        )

    @property
    def probs(self) -> tuple[float, ...]:
        p_y_do_x = self.q["always"] + self.q["ns"]
        p_y_do_xp = self.q["always"] + self.q["harm"]
        return tuple(
            float(v)
            for v in (p_y_do_x, p_y_do_xp, self.p(1, 1), self.p(1, 0), self.p(0, 1), self.p(0, 0))
        )

    @property
    def true_pns(self) -> float:
        return float(self.q["ns"])

    @property
    def true_pn(self) -> float:
        # P(Y_x' = 0 | X = x, Y = y): among units with X = x and Y_x = 1, the ns type.
        den = self.p(1, 1)
        return float(self.q["ns"] * self.pi["ns"] / den) if den else math.nan

    @property
    def true_ps(self) -> float:
        # P(Y_x = 1 | X = x', Y = y'): among units with X = x' and Y_x' = 0, the ns type.
        den = self.p(0, 0)
        return float(self.q["ns"] * (1 - self.pi["ns"]) / den) if den else math.nan


@st.composite
def models(draw: st.DrawFn, *, monotone: bool = False, scale: int = 12) -> Model:
    weights = draw(st.lists(st.integers(0, scale), min_size=4, max_size=4))
    if monotone:
        weights[2] = 0
    if sum(weights) == 0:
        weights[3] = 1
    treat = draw(st.lists(st.integers(0, scale), min_size=4, max_size=4))
    total = sum(weights)
    q = {u: Fraction(w, total) for u, w in zip(TYPES, weights, strict=True)}
    pi = {u: Fraction(t, scale) for u, t in zip(TYPES, treat, strict=True)}
    return Model(q, pi)


def assert_valid_bounds(got: dict[str, tuple[float, float]]) -> None:
    for key, (lo, hi) in got.items():
        if math.isnan(lo):
            assert math.isnan(hi), key
            continue
        assert 0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0, (key, lo, hi)
        assert lo <= hi + TOL, (key, lo, hi)


def assert_contains(got: tuple[float, float], true: float, key: str) -> None:
    lo, hi = got
    if math.isnan(true):
        assert math.isnan(lo) and math.isnan(hi), key
    else:
        assert lo - TOL <= true <= hi + TOL, (key, lo, true, hi)


@PROPERTY
@given(models())
def test_bounds_contain_true_values(model: Model) -> None:
    got = tian_pearl_bounds(*model.probs)
    assert_valid_bounds(got)
    assert_contains(got["pns"], model.true_pns, "pns")
    assert_contains(got["pn"], model.true_pn, "pn")
    assert_contains(got["ps"], model.true_ps, "ps")


@PROPERTY
@given(models(scale=1000))
def test_bounds_contain_true_values_fine_grid(model: Model) -> None:
    got = tian_pearl_bounds(*model.probs)
    assert_valid_bounds(got)
    assert_contains(got["pns"], model.true_pns, "pns")
    assert_contains(got["pn"], model.true_pn, "pn")
    assert_contains(got["ps"], model.true_ps, "ps")


@PROPERTY
@given(models(monotone=True))
def test_monotonicity_identifies(model: Model) -> None:
    # Without the harm type, PNS = P(y_x) - P(y_x'), PN = (P(y) - P(y_x'))/P(x,y) and
    # PS = (P(y_x) - P(y))/P(x',y') are identified, and each is the lower bound.
    p_y_do_x, p_y_do_xp, p_xy, _, p_xpy, p_xpyp = model.probs
    got = tian_pearl_bounds(*model.probs)
    assert_valid_bounds(got)
    assert model.true_pns == pytest.approx(p_y_do_x - p_y_do_xp, abs=TOL)
    assert got["pns"][0] == pytest.approx(model.true_pns, abs=TOL)
    if p_xy > 0:
        assert got["pn"][0] == pytest.approx((p_xy + p_xpy - p_y_do_xp) / p_xy, abs=TOL)
        assert got["pn"][0] == pytest.approx(model.true_pn, abs=TOL)
    if p_xpyp > 0:
        assert got["ps"][0] == pytest.approx((p_y_do_x - p_xy - p_xpy) / p_xpyp, abs=TOL)
        assert got["ps"][0] == pytest.approx(model.true_ps, abs=TOL)


@PROPERTY
@given(st.lists(st.tuples(st.integers(1, 10), models()), min_size=1, max_size=4))
def test_stratified_bounds_contain_true_values(strata: list[tuple[int, Model]]) -> None:
    total = sum(w for w, _ in strata)
    p_s = [Fraction(w, total) for w, _ in strata]
    got = stratified_bounds([(float(p), m.probs) for p, (_, m) in zip(p_s, strata, strict=True)])
    assert_valid_bounds(got)
    # The true population quantities mix the per-stratum ones: PNS by P(s), PN by
    # P(s) P(x,y|s), PS by P(s) P(x',y'|s).
    pns = sum(p * m.q["ns"] for p, (_, m) in zip(p_s, strata, strict=True))
    xy = sum(p * m.p(1, 1) for p, (_, m) in zip(p_s, strata, strict=True))
    xpyp = sum(p * m.p(0, 0) for p, (_, m) in zip(p_s, strata, strict=True))
    pn_num = sum(p * m.q["ns"] * m.pi["ns"] for p, (_, m) in zip(p_s, strata, strict=True))
    ps_num = sum(p * m.q["ns"] * (1 - m.pi["ns"]) for p, (_, m) in zip(p_s, strata, strict=True))
    assert_contains(got["pns"], float(pns), "pns")
    assert_contains(got["pn"], float(pn_num / xy) if xy else math.nan, "pn")
    assert_contains(got["ps"], float(ps_num / xpyp) if xpyp else math.nan, "ps")


# ---------------------------------------------------------------------------------------------
# Paired estimates
# ---------------------------------------------------------------------------------------------

#                          0  1  2  3  4  5  6  7  8  9 10 11
FACTUAL = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0])
ALTERNATIVE = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1])
# (1,0) at 0,1,2,10 -> n10 = 4; (1,1) at 3,4 -> n11 = 2; (0,1) at 5,11 -> n01 = 2;
# (0,0) at 6..9 -> n00 = 4; K = 12.
# PN = 4/(4+2) = 2/3; PS = 4/(4+4) = 1/2; PNS = 4/12 = 1/3; harm = 2/12 = 1/6.
HAND = {"pn": (4, 6), "ps": (4, 8), "pns": (4, 12), "harm": (2, 12)}


@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_paired_hand_built(method: str) -> None:
    out = paired_pn_ps(FACTUAL, ALTERNATIVE, method=method)
    assert (out["n10"], out["n11"], out["n01"], out["n00"], out["n_pairs"]) == (4, 2, 2, 4, 12)
    assert out["pn"] == pytest.approx(2 / 3)
    assert out["ps"] == pytest.approx(1 / 2)
    assert out["pns"] == pytest.approx(1 / 3)
    assert out["harm"] == pytest.approx(1 / 6)
    for name, (hits, trials) in HAND.items():
        ci = binomtest(hits, trials).proportion_ci(0.95, method=method)
        assert (out[f"{name}_lo"], out[f"{name}_hi"]) == approx_pair(ci.low, ci.high), name
        assert out[f"{name}_lo"] <= out[name] <= out[f"{name}_hi"]
        assert out[f"{name}_reason"] is None
    # Lists and bools work the same as int arrays; the counts route gives the same answer.
    assert paired_pn_ps(FACTUAL.tolist(), ALTERNATIVE.astype(bool), method=method) == out
    assert pn_ps_from_counts(4, 2, 2, 4, method=method) == out


def test_exact_wider_than_wilson_on_hand_built() -> None:
    wilson = paired_pn_ps(FACTUAL, ALTERNATIVE, method="wilson")
    exact = paired_pn_ps(FACTUAL, ALTERNATIVE, method="exact")
    for name in HAND:
        w = wilson[f"{name}_hi"] - wilson[f"{name}_lo"]
        e = exact[f"{name}_hi"] - exact[f"{name}_lo"]
        assert e >= w, name


@pytest.mark.parametrize(("k", "n"), [(0, 5), (5, 5), (3, 10), (0, 1), (7, 8), (2, 9), (1, 4)])
def test_proportion_interval_matches_scipy(k: int, n: int) -> None:
    intervals = {}
    for method in ("wilson", "exact"):
        ci = binomtest(k, n).proportion_ci(0.95, method=method)
        got = proportion_interval(k, n, method=method)
        assert got == approx_pair(ci.low, ci.high)
        assert all(isinstance(v, float) for v in got)
        intervals[method] = got
    (wl, wh), (el, eh) = intervals["wilson"], intervals["exact"]
    assert eh - el >= wh - wl


def test_proportion_interval_closed_forms() -> None:
    z2 = 1.959963984540054**2
    # Clopper–Pearson with 0 of n: [0, 1 - (alpha/2)^(1/n)]; n of n: [(alpha/2)^(1/n), 1].
    assert proportion_interval(0, 5, method="exact") == approx_pair(0.0, 1 - 0.025 ** (1 / 5))
    assert proportion_interval(5, 5, method="exact") == approx_pair(0.025 ** (1 / 5), 1.0)
    # Wilson with 0 of n: [0, z^2 / (n + z^2)].
    assert proportion_interval(0, 5, method="wilson") == approx_pair(0.0, z2 / (5 + z2))
    # No trials: undefined, not [0, 1].
    assert is_nan_pair(proportion_interval(0, 0))
    # A lower confidence gives a narrower interval.
    lo90, hi90 = proportion_interval(3, 10, confidence=0.90)
    lo95, hi95 = proportion_interval(3, 10, confidence=0.95)
    assert lo95 < lo90 < 0.3 < hi90 < hi95


def test_interval_method_must_be_known() -> None:
    with pytest.raises(ValueError, match="interval method"):
        proportion_interval(1, 2, method="wald")
    with pytest.raises(ValueError, match="interval method"):
        paired_pn_ps([1, 0], [0, 0], method="wald")


@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_placebo_gives_pn_zero(method: str) -> None:
    # Alternative = factual: no seed where the intervention changes the outcome, so n10 = n01 = 0.
    y = [1, 1, 0, 1, 0]
    out = paired_pn_ps(y, y, method=method)
    assert (out["n10"], out["n11"], out["n01"], out["n00"]) == (0, 3, 0, 2)
    for name in ("pn", "ps", "pns", "harm"):
        assert out[name] == 0.0, name
        assert out[f"{name}_lo"] == pytest.approx(0.0, abs=1e-12), name
        assert 0.0 < out[f"{name}_hi"] < 1.0, name
        assert out[f"{name}_reason"] is None
    ci = binomtest(0, 3).proportion_ci(0.95, method=method)
    assert (out["pn_lo"], out["pn_hi"]) == approx_pair(ci.low, ci.high)


def test_placebo_all_success_leaves_ps_undefined() -> None:
    # Every seed succeeds in both arms: PN = 0 from 3 factual successes, but the alternative
    # never failed, so PS conditions on nothing -> NaN with a reason, not 0.
    out = paired_pn_ps([1, 1, 1], [1, 1, 1])
    assert out["pn"] == 0.0 and out["pn_lo"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(out["ps"]) and is_nan_pair((out["ps_lo"], out["ps_hi"]))
    assert out["ps_reason"] == "no seed where the alternative arm failed"
    assert out["pns"] == 0.0 and out["harm"] == 0.0


def test_placebo_all_failure_leaves_pn_undefined() -> None:
    out = paired_pn_ps([0, 0, 0, 0], [0, 0, 0, 0])
    assert math.isnan(out["pn"]) and is_nan_pair((out["pn_lo"], out["pn_hi"]))
    assert out["pn_reason"] == "no seed where the factual arm succeeded"
    assert out["ps"] == 0.0 and out["ps_reason"] is None


def test_no_seeds_is_undefined_everywhere() -> None:
    out = paired_pn_ps([], [])
    assert out["n_pairs"] == 0
    for name in ("pn", "ps", "pns", "harm"):
        assert math.isnan(out[name]), name
        assert is_nan_pair((out[f"{name}_lo"], out[f"{name}_hi"])), name
        assert isinstance(out[f"{name}_reason"], str) and out[f"{name}_reason"], name


def test_all_necessary_and_sufficient() -> None:
    # Factual always succeeds, alternative always fails: PN = PS = PNS = 1, harm = 0.
    out = paired_pn_ps([1] * 6, [0] * 6, method="exact")
    assert (out["pn"], out["ps"], out["pns"], out["harm"]) == (1.0, 1.0, 1.0, 0.0)
    assert (out["pn_lo"], out["pn_hi"]) == approx_pair(0.025 ** (1 / 6), 1.0)


@pytest.mark.parametrize(
    ("factual", "alternative", "match"),
    [
        ([1, 0, 1], [1, 0], "equal-length"),
        ([[1, 0], [0, 1]], [[1, 0], [0, 1]], "equal-length 1-d"),
        (1, 0, "equal-length 1-d"),
        ([1, 2, 0], [1, 0, 0], "0/1"),
        ([1, 0, 0], [1, -1, 0], "0/1"),
        ([1.0, 0.5], [1.0, 0.0], "0/1"),
        ([1.0, math.nan], [1.0, 0.0], "0/1"),
    ],
)
def test_paired_invalid_input_raises(factual: object, alternative: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        paired_pn_ps(factual, alternative)


@PROPERTY
@given(
    pairs=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), max_size=60),
    method=st.sampled_from(["wilson", "exact"]),
    confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_paired_estimates_in_unit_interval(
    pairs: list[tuple[int, int]], method: str, confidence: float
) -> None:
    factual = np.array([a for a, _ in pairs], dtype=int)
    alternative = np.array([b for _, b in pairs], dtype=int)
    out = paired_pn_ps(factual, alternative, method=method, confidence=confidence)
    assert out["n10"] + out["n11"] + out["n01"] + out["n00"] == out["n_pairs"] == len(pairs)
    assert out["n10"] == int(np.sum((factual == 1) & (alternative == 0)))
    assert out["n01"] == int(np.sum((factual == 0) & (alternative == 1)))
    for name in ("pn", "ps", "pns", "harm"):
        est, lo, hi = out[name], out[f"{name}_lo"], out[f"{name}_hi"]
        if math.isnan(est):
            assert math.isnan(lo) and math.isnan(hi), name
            assert isinstance(out[f"{name}_reason"], str), name
        else:
            assert 0.0 <= lo <= est <= hi <= 1.0, (name, lo, est, hi)
            assert out[f"{name}_reason"] is None, name
    # PNS <= PN and PNS <= PS whenever defined (n10/K <= n10/(n10+n11), n10/(n10+n00)).
    if out["n_pairs"]:
        for name in ("pn", "ps"):
            if not math.isnan(out[name]):
                assert out["pns"] <= out[name] + TOL
    # Swapping the arms swaps PNS and harm.
    swapped = paired_pn_ps(alternative, factual, method=method, confidence=confidence)
    assert swapped["n10"] == out["n01"] and swapped["n01"] == out["n10"]
    if out["n_pairs"]:
        assert swapped["pns"] == out["harm"] and swapped["harm"] == out["pns"]


def test_cluster_bootstrap_resamples_clusters_not_rows() -> None:
    """Rows of one cluster (siblings sharing an initial state) are not independent: copying
    every row within its cluster adds no information, so the interval must not narrow;
    splitting the copies into clusters of their own would (what a row bootstrap assumes)."""
    rng = np.random.default_rng(0)
    num, den = rng.random(40) < 0.5, rng.random(40) < 0.2
    clusters = np.arange(40)
    base = cluster_bootstrap_ratio(num, den, clusters, 0)
    copies = cluster_bootstrap_ratio(
        np.repeat(num, 4), np.repeat(den, 4), np.repeat(clusters, 4), 0
    )
    apart = cluster_bootstrap_ratio(np.repeat(num, 4), np.repeat(den, 4), np.arange(160), 0)
    assert copies == base
    assert apart[0] == base[0]
    width = base[1][1] - base[1][0]
    assert apart[1][1] - apart[1][0] < 0.7 * width


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("mean", 0.5), ("pn", 0.8), ("ps", 0.2), ("pns", 0.1),
        ("mean-lower", 0.3), ("pn-lower", 0.5), ("ps-lower", 0.1), ("pns-lower", 0.05),
    ],
)  # fmt: skip
def test_every_importance_variant_reads_its_columns(how: str, expected: float) -> None:
    from papo_data.causal.estimate import IMPORTANCE, importance

    row = {"pn": 0.8, "pn_lo": 0.5, "ps": 0.2, "ps_lo": 0.1, "pns": 0.1, "pns_lo": 0.05}
    assert how in IMPORTANCE
    assert importance(row, how) == pytest.approx(expected)
    assert importance({**row, "ps": None, "ps_lo": None}, "mean") == pytest.approx(0.8)
