"""Behaviour cloning of the token policy from successful demonstrations in a dataset."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.errors import BadInput

if TYPE_CHECKING:
    from papo_data.train.policy import TokenPolicy


@dataclass(frozen=True)
class BCConfig:
    """Knobs of `papo train --bc`; each has a flag of the same name."""

    demos_per_task: int = 2
    """Demo budget: the first this many successful episodes of each task. Small on purpose, so the
    cloned policy succeeds only part of the time (the regime where RL has room)."""
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    label_sigma: float = 2.0
    """Targets are a Gaussian over bins around the demo action (std in bins), not one bin: nearby
    bins are nearly as good an action, and the policy should know it."""
    bins: int = 256
    hidden: int = 256
    layers: int = 2
    seed: int = 0

    def check(self) -> None:
        for name in ("demos_per_task", "epochs", "batch_size", "bins", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} must be at least 1")
        if not (self.learning_rate > 0 and self.label_sigma >= 0):
            raise BadInput("--learning-rate must be > 0 and --label-sigma >= 0")


@dataclass
class BCResult:
    policy: TokenPolicy
    demos: int
    steps: int
    final_loss: float


def behaviour_clone(dataset: Path, cfg: BCConfig) -> BCResult:
    """Fit a fresh policy to the demos of every task in `dataset` by soft-label cross-entropy."""
    # torch is imported here: `papo --help` reads BCConfig's defaults and need not load it.
    import torch

    from papo_data.train.batch import matrix
    from papo_data.train.policy import PolicyConfig, TokenPolicy

    cfg.check()
    with Dataset(dataset) as ds:
        demos = ds.arrow(sql_text(__file__, "bc_demos.sql"), {"per_task": cfg.demos_per_task})
        n_episodes = ds.arrow(
            sql_text(__file__, "bc_demo_count.sql"), {"per_task": cfg.demos_per_task}
        )
        dims = ds.dims
    if demos.num_rows == 0:
        raise BadInput(f"{dataset}: no successful episode to clone; collect expert demos first")
    tasks = tuple(sorted(set(demos["task"].to_pylist())))
    config = PolicyConfig(
        tasks=tasks,
        state_dim=dims["state_dim"],
        action_dim=dims["action_dim"],
        bins=cfg.bins,
        hidden=cfg.hidden,
        layers=cfg.layers,
    )
    torch.manual_seed(cfg.seed)
    policy = TokenPolicy(config)
    states = torch.from_numpy(matrix(demos["state"], config.state_dim).astype(np.float32))
    actions = torch.from_numpy(matrix(demos["action"], config.action_dim).astype(np.float32))
    task = torch.tensor([tasks.index(t) for t in demos["task"].to_pylist()])
    policy.state_mean.copy_(states.mean(0))
    policy.state_std.copy_(states.std(0).clamp(min=1e-3))  # constant dims stay finite

    # Position of each action in bin units, and Gaussian soft labels around it.
    unit = (actions.clamp(config.action_low, config.action_high) - config.action_low) / (
        config.action_high - config.action_low
    )
    position = unit * (config.bins - 1)
    grid = torch.arange(config.bins, dtype=torch.float32)
    if cfg.label_sigma > 0:
        labels = torch.softmax(-0.5 * ((grid - position.unsqueeze(-1)) / cfg.label_sigma) ** 2, -1)
    else:
        labels = torch.nn.functional.one_hot(position.round().long(), config.bins).float()

    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    generator = torch.Generator().manual_seed(cfg.seed)
    loss = torch.tensor(math.nan)
    policy.train()
    for _ in range(cfg.epochs):
        for rows in torch.randperm(len(states), generator=generator).split(cfg.batch_size):
            log_p = torch.log_softmax(policy(states[rows], task[rows]), dim=-1)
            loss = -(labels[rows] * log_p).sum(-1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    policy.eval()
    return BCResult(policy, n_episodes.column("n")[0].as_py(), len(states), float(loss.detach()))
