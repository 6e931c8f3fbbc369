"""Offline GRPO/PAPO: update a policy on logged rollouts and an exported weights file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from papo_data.data.dataset import Dataset
from papo_data.errors import BadInput
from papo_data.train.batch import load_batch, read_weights_file
from papo_data.train.grpo import GRPOConfig, update
from papo_data.train.policy import load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class OfflineConfig:
    """Knobs of `papo train --offline`."""

    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    """The update; `grpo.epochs_per_batch` passes over the logged rollouts."""
    behaviour: str = "logged"
    """pi_old of the ratio: the logged `policy.log_prob` (rollouts of a trained token policy) or
    the starting policy itself (`init`, for rollouts of other policies, e.g. scripted experts)."""
    reward: str = "success"
    seed: int = 0


def train_offline(
    dataset: Path, weights: Path | None, init: Path, out: Path, cfg: OfflineConfig
) -> dict[str, float]:
    """Update the policy of `init` on every episode of `dataset`, weighting the advantage by the
    weights file (None: plain GRPO); writes `out` and returns the update's metrics."""
    dataset, init, out = Path(dataset), Path(init), Path(out)
    if weights is not None and not isinstance(weights, (str, Path)):
        raise BadInput("weights: give the path of a weights .parquet file (export-weights --out)")
    weights = None if weights is None else Path(weights)
    cfg.grpo.check()
    policy, _ = load_checkpoint(init)
    weight_table = read_weights_file(weights) if weights is not None else None
    with Dataset(dataset) as ds:
        batch = load_batch(
            ds,
            policy,
            weight_table,
            reward=cfg.reward,
            behaviour=cfg.behaviour,
            temperature=cfg.grpo.temperature,
            weights_name=str(weights),
        )
    reference = load_checkpoint(init)[0] if cfg.grpo.beta > 0 else None
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.grpo.learning_rate)
    metrics = update(policy, optimizer, batch, cfg.grpo, seed=cfg.seed, reference=reference)
    save_checkpoint(out, policy, offline={"dataset": str(dataset), **metrics})
    return metrics
