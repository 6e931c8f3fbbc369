"""The trained policy: state + task embedding -> one categorical over action bins per action dim.

Actions are VLA-style tokens: each continuous dimension is cut into `bins` evenly spaced values
over [action_low, action_high] (both ends included), and the policy emits one token per
dimension. The log-probability of an action is per token (one per dimension), which is what GRPO's
ratio and the `policy.log_prob` column hold.

Checkpoints are plain `torch.save` dicts of tensors and primitives, loaded with
`weights_only=True`, carrying the policy's config so they rebuild without extra arguments.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from papo_data.data import commit
from papo_data.errors import BadInput

CHECKPOINT_FORMAT = "papo-policy/1"


@dataclass(frozen=True)
class PolicyConfig:
    """Shape of the policy network."""

    tasks: tuple[str, ...]
    """Task names the policy knows, in embedding order (e.g. "reach-v3")."""
    state_dim: int = 39
    action_dim: int = 4
    bins: int = 256
    """Action tokens per dimension."""
    hidden: int = 256
    layers: int = 2
    task_embedding: int = 32
    action_low: float = -1.0
    action_high: float = 1.0


class TokenPolicy(nn.Module):
    """MLP over [normalised state, task embedding] -> logits of shape (N, action_dim, bins)."""

    state_mean: torch.Tensor
    state_std: torch.Tensor
    bin_values: torch.Tensor  # the action value of each token

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        # Set from the demonstrations by behaviour cloning; kept in the checkpoint.
        self.register_buffer("state_mean", torch.zeros(config.state_dim))
        self.register_buffer("state_std", torch.ones(config.state_dim))
        self.task_embedding = nn.Embedding(len(config.tasks), config.task_embedding)
        layers: list[nn.Module] = []
        width = config.state_dim + config.task_embedding
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.ReLU()]
            width = config.hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.action_dim * config.bins)
        self.register_buffer(
            "bin_values",
            torch.linspace(config.action_low, config.action_high, config.bins, dtype=torch.float32),
        )

    def forward(self, state: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        z = (state - self.state_mean) / self.state_std
        h = self.body(torch.cat([z, self.task_embedding(task)], dim=-1))
        return self.head(h).view(-1, self.config.action_dim, self.config.bins)

    def token_log_probs(
        self, state: torch.Tensor, task: torch.Tensor, tokens: torch.Tensor, temperature: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-prob of each token, entropy of each token's distribution), both (N, action_dim)."""
        log_p = torch.log_softmax(self(state, task) / temperature, dim=-1)
        chosen = log_p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        return chosen, entropy

    def tokens(self, action: torch.Tensor) -> torch.Tensor:
        """Nearest bin of each action value (exact for the policy's own actions)."""
        c = self.config
        unit = (action.clamp(c.action_low, c.action_high) - c.action_low) / (
            c.action_high - c.action_low
        )
        return torch.round(unit * (c.bins - 1)).long()

    def task_index(self, task: str) -> int:
        try:
            return self.config.tasks.index(task)
        except ValueError:
            raise BadInput(
                f"task {task!r} is unknown to the policy (it knows {', '.join(self.config.tasks)})"
            ) from None


def save_checkpoint(path: Path, policy: TokenPolicy, **extra: Any) -> None:
    """Write atomically: a killed save leaves the previous checkpoint intact."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": {**asdict(policy.config), "tasks": list(policy.config.tasks)},
        "state_dict": policy.state_dict(),
        **extra,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    commit.write_atomic_bytes(buffer.getvalue(), Path(path))


def load_checkpoint(path: Path) -> tuple[TokenPolicy, dict[str, Any]]:
    """(policy, the checkpoint's other entries). Never unpickles: `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # truncated or not a torch file
        raise BadInput(f"{path}: not a readable policy checkpoint ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise BadInput(f"{path}: not a papo policy checkpoint (format {CHECKPOINT_FORMAT})")
    raw = payload.pop("config")
    config = PolicyConfig(**{**raw, "tasks": tuple(raw["tasks"])})
    policy = TokenPolicy(config)
    policy.load_state_dict(payload.pop("state_dict"))
    if not all(torch.isfinite(p).all() for p in policy.parameters()):
        raise BadInput(f"{path}: holds NaN or infinite parameters (a diverged training run?)")
    payload.pop("format")
    return policy, payload


def file_digest(path: Path) -> str:
    """Content digest naming a checkpoint; cached per file version (collect asks per episode)."""
    stat = path.stat()
    return _digest(str(path), stat.st_mtime_ns, stat.st_size)


@cache
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@dataclass
class TorchPolicy:
    """A `TokenPolicy` behind the rollout interface of `papo_data.sim.policies.Policy`.

    Sampling draws one uniform per dimension from the caller's numpy Generator (inverse CDF), so
    branches keep common random numbers across arms exactly as with the scripted experts.
    """

    model: TokenPolicy
    task: str
    temperature: float = 1.0
    policy_id: str = ""
    _task: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._task = torch.tensor([self.model.task_index(self.task)])
        self.model.eval()

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            state = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
            logits = self.model(state, self._task)[0] / self.temperature
            log_p = torch.log_softmax(logits.double(), dim=-1).numpy()
        cdf = np.cumsum(np.exp(log_p), axis=-1)
        u = rng.random(len(log_p))
        tokens = np.minimum((cdf < (u * cdf[:, -1])[:, None]).sum(-1), log_p.shape[-1] - 1)
        action = self.model.bin_values.numpy()[tokens]
        return action.astype(np.float32), log_p[np.arange(len(tokens)), tokens].astype(np.float32)


def torch_policy_id(digest: str, task: str, temperature: float) -> str:
    return f"torch(sha={digest},task={task},temperature={temperature})"


@cache
def _load_cached(path: str, digest: str) -> TokenPolicy:
    # One load per worker process and checkpoint; branches rebuild the policy for every arm.
    # Keyed by digest too, so a checkpoint rewritten in place is reloaded.
    return load_checkpoint(Path(path))[0]


def torch_policy_from_fields(
    fields: dict[str, str], policy_dir: Path | None, file_name: str | None = None
) -> TorchPolicy:
    """Rebuild a policy recorded as `torch(sha=...,task=...,temperature=...)`; its checkpoint
    is `<policy_dir>/<sha>.pt` (a dataset keeps it under `papo/policies/`) unless named."""
    if policy_dir is None:
        raise BadInput("a torch policy needs its dataset's papo/policies folder to be rebuilt")
    path = policy_dir / (file_name or f"{fields['sha']}.pt")
    if not path.is_file():
        raise BadInput(f"{path}: the checkpoint of policy sha={fields['sha']} is missing")
    return TorchPolicy(
        _load_cached(str(path), fields["sha"]),
        task=fields["task"],
        temperature=float(fields["temperature"]),
        policy_id=torch_policy_id(fields["sha"], fields["task"], float(fields["temperature"])),
    )
