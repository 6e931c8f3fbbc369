"""GRPO with planning-aware advantages (PAPO), top to bottom in one file.

For episode i of group G with reward R_i, step t and action token d (one per action dim):

    A_i       = (R_i - mean_G R) / (std_G R + eps)      scale_rewards = group
                (R_i - mean_G R) / (std_batch R + eps)  scale_rewards = batch
                 R_i - mean_G R                         scale_rewards = none
    A_{i,t}   = A_i * w_{i,t}                           PAPO; w > 0, so the sign of A_i never flips,
                                                        and w == 1 is plain GRPO bit for bit
    r_{i,t,d} = exp(log pi(a_{i,t,d}) - log pi_old(a_{i,t,d}))
    l_{i,t,d} = -min(r A_{i,t}, clip(r, 1 - eps_low, 1 + eps_high) A_{i,t})
                + beta * (exp(q) - q - 1),  q = log pi_ref - log pi     (k3 KL, optional)

and the token losses are aggregated as token-mean (over all tokens of the mini-batch),
seq-mean-token-mean (mean over episodes of each episode's token mean) or dr-grpo (sum divided by
episodes x horizon x action dims, a constant that does not favour short episodes).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from papo_data.errors import BadInput
from papo_data.train.policy import TokenPolicy

SCALE_REWARDS = ("group", "batch", "none")
LOSS_TYPES = ("token-mean", "seq-mean-token-mean", "dr-grpo")


@dataclass(frozen=True)
class GRPOConfig:
    """Every knob of the update (TRL's `GRPOConfig` is the model)."""

    group_size: int = 8
    """Rollouts per group (same task and initial state)."""
    scale_rewards: str = "group"
    """group | batch | none: divide the group-centred reward by the group's std, the batch's std,
    or nothing (Dr. GRPO). Sample stds (n - 1), as torch.std and TRL; a group whose rewards are
    all equal (to 1e-6) gets A = 0 however it is scaled."""
    advantage_epsilon: float = 1e-4
    """eps in (R - mean) / (std + eps)."""
    epsilon_low: float = 0.2
    """Lower PPO clip: ratios below 1 - epsilon_low stop pushing down."""
    epsilon_high: float = 0.2
    """Upper PPO clip: ratios above 1 + epsilon_high stop pushing up (DAPO's clip-higher > low)."""
    loss_type: str = "token-mean"
    """token-mean | seq-mean-token-mean | dr-grpo."""
    beta: float = 0.0
    """Weight of the k3 KL penalty to the reference (starting) policy; 0 turns it off."""
    learning_rate: float = 1e-4
    """Adam step size."""
    epochs_per_batch: int = 2
    """Passes over each collected batch (TRL's num_iterations)."""
    mini_batch_episodes: int = 16
    """Episodes per gradient step (whole episodes, so every aggregation is well defined)."""
    max_grad_norm: float = 1.0
    """Gradient norm clip; 0 turns it off."""
    temperature: float = 1.0
    """Sampling temperature; log-probs in the ratio use the same temperature."""
    filter_zero_variance_groups: bool = True
    """Drop groups whose outcomes are all equal (their advantage is 0) from the loss."""
    zero_variance_warning: float = 0.5
    """Warn when more than this share of groups has all-equal outcomes."""

    def check(self) -> None:
        if self.group_size < 2:
            raise BadInput(f"grpo.group_size must be at least 2, got {self.group_size}")
        if self.scale_rewards not in SCALE_REWARDS:
            raise BadInput(f"grpo.scale_rewards must be one of {SCALE_REWARDS}")
        if self.loss_type not in LOSS_TYPES:
            raise BadInput(f"grpo.loss_type must be one of {LOSS_TYPES}")
        for name in ("epsilon_low", "epsilon_high", "beta", "max_grad_norm", "advantage_epsilon"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise BadInput(f"grpo.{name} must be a number >= 0, got {value}")
        if not self.epsilon_low < 1:
            raise BadInput(f"grpo.epsilon_low must be < 1, got {self.epsilon_low}")
        if not (0 < self.learning_rate < math.inf and 0 < self.temperature < math.inf):
            raise BadInput("grpo.learning_rate and grpo.temperature must be finite and > 0")
        if self.epochs_per_batch < 1 or self.mini_batch_episodes < 1:
            raise BadInput("grpo.epochs_per_batch and grpo.mini_batch_episodes must be >= 1")
        if not 0 <= self.zero_variance_warning <= 1:
            raise BadInput("grpo.zero_variance_warning must be in [0, 1]")


@dataclass
class Batch:
    """Steps of whole episodes, ordered by episode then frame."""

    states: torch.Tensor  # (T, S) float32
    tasks: torch.Tensor  # (T,) long, the policy's task index
    tokens: torch.Tensor  # (T, A) long
    old_log_probs: torch.Tensor  # (T, A) behaviour log-prob of each token
    weights: torch.Tensor  # (T,) PAPO weight w_{i,t}; 1 for GRPO
    episode: torch.Tensor  # (T,) long, 0 .. E-1, non-decreasing
    rewards: torch.Tensor  # (E,) float32
    groups: torch.Tensor  # (E,) long, 0 .. n_groups-1
    horizon: int  # longest possible episode (dr-grpo's constant)

    @property
    def n_episodes(self) -> int:
        return len(self.rewards)


class ZeroVarianceGroupsWarning(UserWarning):
    """Most groups have all-equal outcomes: the update learns from few or no episodes."""


def group_advantages(
    rewards: torch.Tensor, groups: torch.Tensor, scale: str, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A_i per episode, a bool per group: all its outcomes are equal)."""
    n_groups = int(groups.max()) + 1
    count = torch.bincount(groups, minlength=n_groups).to(rewards.dtype)
    mean = torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, groups, rewards) / count
    centred = rewards - mean[groups]
    squares = torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, groups, centred**2)
    group_std = (squares / (count - 1).clamp(min=1)).sqrt()  # unbiased, as torch.std
    # Equal to rounding: seven float32 returns of 0.7 are not exactly equal once centred.
    high = torch.full((n_groups,), -math.inf, dtype=rewards.dtype)
    high = high.scatter_reduce(0, groups, rewards, "amax")
    low = torch.full((n_groups,), math.inf, dtype=rewards.dtype)
    low = low.scatter_reduce(0, groups, rewards, "amin")
    equal = high - low <= 1e-6 * mean.abs().clamp(min=1)
    if scale == "group":
        advantage = centred / (group_std[groups] + eps)
    elif scale == "batch":  # one episode has no spread (torch.std would be NaN)
        advantage = centred / ((rewards.std() if len(rewards) > 1 else 0.0) + eps)
    else:
        advantage = centred
    return torch.where(equal[groups], 0.0, advantage), equal


def planning_aware_advantages(
    episode_advantage: torch.Tensor, weights: torch.Tensor, episode: torch.Tensor
) -> torch.Tensor:
    """A_{i,t} = A_i * w_{i,t}: the PAPO advantage of every step (the whole of the method)."""
    return episode_advantage[episode] * weights


def policy_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    episode: torch.Tensor,
    cfg: GRPOConfig,
    horizon: int,
    ref_log_probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate (+ k3 KL), aggregated per `cfg.loss_type`. Token tensors are (T, A);
    `advantages` (T,) and `episode` (T,) hold each step's A_{i,t} and its episode 0 .. n-1."""
    ratio = torch.exp(log_probs - old_log_probs)
    adv = advantages.unsqueeze(-1)
    clipped = torch.clamp(ratio, 1 - cfg.epsilon_low, 1 + cfg.epsilon_high)
    per_token = -torch.min(ratio * adv, clipped * adv)
    if cfg.beta > 0 and ref_log_probs is not None:
        q = ref_log_probs - log_probs
        per_token = per_token + cfg.beta * (torch.exp(q) - q - 1)

    n_dims = per_token.shape[-1]
    if cfg.loss_type == "token-mean":
        loss = per_token.mean()
    elif cfg.loss_type == "seq-mean-token-mean":
        n_seq = int(episode.max()) + 1
        seq_sum = torch.zeros(n_seq, dtype=per_token.dtype).index_add_(
            0, episode, per_token.sum(-1)
        )
        seq_tokens = torch.bincount(episode, minlength=n_seq) * n_dims
        loss = (seq_sum / seq_tokens).mean()
    else:  # dr-grpo
        n_seq = int(episode.max()) + 1
        loss = per_token.sum() / (n_seq * horizon * n_dims)

    with torch.no_grad():
        low = (ratio < 1 - cfg.epsilon_low) & (adv < 0)
        high = (ratio > 1 + cfg.epsilon_high) & (adv > 0)
        stats = {
            "clip_fraction": (low | high).float().mean(),
            "approx_kl": ((ratio - 1) - torch.log(ratio)).mean(),
        }
    return loss, stats


def update(
    policy: TokenPolicy,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    cfg: GRPOConfig,
    *,
    seed: int,
    reference: TokenPolicy | None = None,
) -> dict[str, float]:
    """`cfg.epochs_per_batch` passes of mini-batch steps over `batch`; returns the metrics."""
    advantage, zero_variance = group_advantages(
        batch.rewards, batch.groups, cfg.scale_rewards, cfg.advantage_epsilon
    )
    step_advantage = planning_aware_advantages(advantage, batch.weights, batch.episode)

    share = float(zero_variance.float().mean())
    if share > cfg.zero_variance_warning:
        warnings.warn(
            f"{int(zero_variance.sum())} of {len(zero_variance)} groups have all-equal outcomes "
            f"and contribute no gradient (share {share:.2f} > {cfg.zero_variance_warning})",
            ZeroVarianceGroupsWarning,
            stacklevel=2,
        )
    episodes = torch.arange(batch.n_episodes)
    if cfg.filter_zero_variance_groups:
        episodes = episodes[~zero_variance[batch.groups]]
    metrics = {
        "zero_variance_groups": float(zero_variance.sum()),
        "zero_variance_share": share,
        "trained_episodes": float(len(episodes)),
        "mean_abs_advantage": float(step_advantage.abs().mean()),
    }
    if len(episodes) == 0:
        return {**metrics, "loss": math.nan, "clip_fraction": math.nan, "approx_kl": math.nan,
                "entropy": math.nan, "grad_norm": math.nan, "updates": 0.0}  # fmt: skip

    starts = torch.searchsorted(batch.episode, torch.arange(batch.n_episodes))
    ends = torch.searchsorted(batch.episode, torch.arange(batch.n_episodes), right=True)
    reference_log_probs = None
    if cfg.beta > 0 and reference is not None:
        with torch.no_grad():
            reference_log_probs, _ = reference.token_log_probs(
                batch.states, batch.tasks, batch.tokens, cfg.temperature
            )

    generator = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {"loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0}
    sums |= {"entropy": 0.0, "grad_norm": 0.0}
    n_updates = 0
    policy.train()
    for _ in range(cfg.epochs_per_batch):
        order = episodes[torch.randperm(len(episodes), generator=generator)]
        for chunk in order.split(cfg.mini_batch_episodes):
            chunk = chunk.sort().values
            rows = torch.cat([torch.arange(int(starts[e]), int(ends[e])) for e in chunk])
            local_episode = torch.repeat_interleave(
                torch.arange(len(chunk)), (ends[chunk] - starts[chunk])
            )
            log_probs, entropy = policy.token_log_probs(
                batch.states[rows], batch.tasks[rows], batch.tokens[rows], cfg.temperature
            )
            loss, stats = policy_loss(
                log_probs,
                batch.old_log_probs[rows],
                step_advantage[rows],
                local_episode,
                cfg,
                batch.horizon,
                None if reference_log_probs is None else reference_log_probs[rows],
            )
            optimizer.zero_grad()
            loss.backward()
            # max_norm inf: no clipping, but the norm is still measured for the metrics.
            norm = torch.nn.utils.clip_grad_norm_(
                policy.parameters(), cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
            )
            optimizer.step()
            sums["loss"] += float(loss.detach())
            sums["clip_fraction"] += float(stats["clip_fraction"])
            sums["approx_kl"] += float(stats["approx_kl"])
            sums["entropy"] += float(entropy.detach().mean())
            sums["grad_norm"] += float(norm)
            n_updates += 1
    policy.eval()
    return {**metrics, **{k: v / n_updates for k, v in sums.items()}, "updates": float(n_updates)}
