"""Per-step advantage weights from the causal importance of planning actions."""
