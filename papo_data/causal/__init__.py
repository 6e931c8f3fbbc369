"""Probabilities of causation from counterfactual branches (DESIGN §3)."""

from papo_data.causal.bounds import stratified_bounds, tian_pearl_bounds
from papo_data.causal.paired import (
    cluster_bootstrap_ratio,
    paired_pn_ps,
    pn_ps_from_counts,
    proportion_interval,
)

__all__ = [
    "cluster_bootstrap_ratio",
    "paired_pn_ps",
    "pn_ps_from_counts",
    "proportion_interval",
    "stratified_bounds",
    "tian_pearl_bounds",
]
