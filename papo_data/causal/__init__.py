"""Probabilities of causation from counterfactual branches (DESIGN §3)."""

from papo_data.causal.paired import paired_pn_ps, proportion_interval

__all__ = ["paired_pn_ps", "proportion_interval"]
