"""Behaviour policies for rollouts: the scripted experts with a seeded noise model.

A policy is sampled with a numpy Generator the caller owns, so that two arms of a branch can
share their random numbers, and it reports the log-probability of each action token (one per
action dimension) for offline GRPO.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from papo_data.errors import BadInput


class Policy(Protocol):
    """What collection and branching need from a policy."""

    policy_id: str

    def reset(self) -> None:
        """Forget per-episode state (call at every episode start and branch restore)."""

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(action, per-dimension log-probability of that action)."""
        ...


class Expert(Protocol):
    def expert_action(self, obs: np.ndarray) -> np.ndarray: ...


@dataclass
class NoisyExpertConfig:
    """Noise that makes the scripted expert fail sometimes, as a real policy does."""

    sigma: float = 0.3
    """Std of Gaussian noise added to the continuous (xyz) dims of every action."""
    delay_prob: float = 0.3
    """Probability that a gripper switch of the expert is delayed (a late decision)."""
    max_delay: int = 8
    """A delayed switch waits 1..max_delay steps, uniformly."""

    def check(self) -> None:
        if not (self.sigma >= 0 and math.isfinite(self.sigma)):
            raise BadInput(f"--noise must be a number >= 0, got {self.sigma}")
        if not 0 <= self.delay_prob <= 1:
            raise BadInput(f"--delay-prob must be in [0, 1], got {self.delay_prob}")
        if self.max_delay < 1:
            raise BadInput(f"--max-delay must be at least 1, got {self.max_delay}")


class NoisyExpert:
    """The env's scripted expert plus Gaussian action noise and gripper-decision delays.

    The gripper dim is a decision: when the expert switches it (a change of more than 0.5),
    the switch is delayed with probability `delay_prob`. Its log-probability is that of the
    decision taken at a switch step (log p or log 1-p), 0 elsewhere; the xyz dims carry the
    Gaussian log-density of the noise drawn. Actions are logged unclipped (the env clips), so
    the densities are exact.
    """

    def __init__(self, env: Expert, config: NoisyExpertConfig):
        config.check()
        self.env = env
        self.config = config
        self.policy_id = (
            f"expert-noisy(sigma={config.sigma},delay_prob={config.delay_prob},"
            f"max_delay={config.max_delay})"
        )
        self.reset()

    def reset(self) -> None:
        self._held_gripper: float | None = None  # gripper value held during a delay
        self._delay_left = 0
        self._last_expert_gripper: float | None = None

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        action = np.asarray(self.env.expert_action(obs.copy()), dtype=np.float64).copy()
        log_prob = np.zeros(len(action))
        # One draw of each kind per step, used or not: the random stream stays aligned across
        # arms whatever decisions they take.
        eps = rng.standard_normal(3)
        u = rng.random()
        delay = int(rng.integers(1, cfg.max_delay + 1))

        gripper = float(action[3])
        switched = (
            self._last_expert_gripper is not None and abs(gripper - self._last_expert_gripper) > 0.5
        )
        if self._delay_left > 0:
            self._delay_left -= 1
            if switched:  # the expert switched back meanwhile: follow it
                self._delay_left = 0
            else:
                action[3] = self._held_gripper
        elif switched and cfg.delay_prob > 0:
            if u < cfg.delay_prob:
                self._held_gripper = self._last_expert_gripper
                self._delay_left = delay - 1
                action[3] = self._held_gripper
                log_prob[3] = math.log(cfg.delay_prob) - math.log(cfg.max_delay)
            else:
                log_prob[3] = math.log1p(-cfg.delay_prob) if cfg.delay_prob < 1 else -math.inf
        self._last_expert_gripper = gripper

        if cfg.sigma > 0:
            action[:3] += cfg.sigma * eps
            log_prob[:3] = -0.5 * eps**2 - math.log(cfg.sigma) - 0.5 * math.log(2 * math.pi)
        return action.astype(np.float32), log_prob.astype(np.float32)


def policy_from_id(policy_id: str, env: Expert, policy_dir: Path | None = None) -> Policy:
    """Rebuild the behaviour policy an episode records in `episodes.policy_id`, so branches
    continue with the episode's own policy after their intervention window. Trained policies'
    checkpoints are looked up in `policy_dir` (a dataset's `papo/policies/`)."""
    match = re.fullmatch(r"(expert-noisy|torch)\((.*)\)", policy_id)
    if not match:
        raise BadInput(f"episodes: field policy_id: cannot rebuild policy {policy_id!r}")
    fields = dict(kv.split("=", 1) for kv in match.group(2).split(",") if "=" in kv)
    if match.group(1) == "torch":
        from papo_data.train.policy import torch_policy_from_fields

        if not {"sha", "task", "temperature"} <= fields.keys():
            raise BadInput(f"episodes: field policy_id: malformed {policy_id!r}")
        return torch_policy_from_fields(fields, policy_dir)
    try:
        config = NoisyExpertConfig(
            sigma=float(fields["sigma"]),
            delay_prob=float(fields["delay_prob"]),
            max_delay=int(fields["max_delay"]),
        )
    except (KeyError, ValueError):
        raise BadInput(f"episodes: field policy_id: malformed {policy_id!r}") from None
    return NoisyExpert(env, config)
