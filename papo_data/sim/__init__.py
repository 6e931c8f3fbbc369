"""Simulators behind one small interface, so rollouts and counterfactual branches share code.

A branch restores a saved state and replays actions, so `snapshot()`/`restore()` must be
bit-exact: the same blob and the same actions give identical observations, rewards and successes,
in this instance or a fresh one, in this process or another.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class EnvAdapter(Protocol):
    """One simulator family (e.g. Meta-World), able to run any of its tasks."""

    snapshot_format: str
    """Encoding of `snapshot()` blobs, stored with them (the `format` column of `snapshots`)."""
    state_names: list[str]
    """One name per observation dimension."""
    action_names: list[str]
    """One name per action dimension."""
    fps: int
    """Steps per simulated second."""
    max_steps: int
    """Steps per episode; `step` refuses to go further."""

    def tasks(self) -> dict[str, str]:
        """Task name -> instruction text, e.g. "pick-place-v3" -> "pick up the puck and ..."."""
        ...

    def reset(self, task: str, init_seed: int) -> np.ndarray:
        """Start an episode; the initial state depends only on `(task, init_seed)`.

        Returns the first observation (float64). Unknown tasks raise `BadInput`.
        """
        ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Apply one action; return (observation, reward, success at this step)."""
        ...

    def snapshot(self) -> bytes:
        """Everything the next steps depend on, encoded as `snapshot_format` (never pickle)."""
        ...

    def restore(self, blob: bytes) -> np.ndarray:
        """Continue from a `snapshot()` blob, possibly taken by another instance or process;
        returns the observation at that moment (what `reset` or the last `step` returned)."""
        ...

    def expert_action(self, obs: np.ndarray) -> np.ndarray:
        """The task's scripted expert action for `obs` (which is left untouched)."""
        ...
