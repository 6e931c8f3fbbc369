"""A dataset's rollouts as one GRPO `Batch`: steps, tokens, behaviour log-probs, PAPO weights."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from papo_data.data.dataset import Dataset
from papo_data.data.files import readable_parquet
from papo_data.data.sqlfiles import sql_text
from papo_data.errors import BadInput
from papo_data.train.grpo import Batch
from papo_data.train.policy import TokenPolicy

BEHAVIOURS = ("logged", "init")
REWARDS = ("success", "return")


def run_weights(ds: Dataset, run_id: str) -> pa.Table:
    """The weights an export run wrote into the dataset (empty when none)."""
    return ds.arrow(
        'SELECT "index", weight FROM weights WHERE run_id = $run ORDER BY "index"', {"run": run_id}
    )


def read_weights_file(path: Path) -> pa.Table:
    """An exported weights file, checked: (index, weight) present, unique, finite and > 0."""
    try:
        with readable_parquet(path):
            table = pq.read_table(path)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such weights file") from None
    for name, kinds in (("index", pa.types.is_integer), ("weight", pa.types.is_floating)):
        if name not in table.column_names:
            raise BadInput(f"{path}: missing column {name!r}")
        if not kinds(table.schema.field(name).type):
            raise BadInput(f"{path}: field {name}: wrong type {table.schema.field(name).type}")
    if "run_id" in table.column_names and len(pc.unique(table["run_id"])) > 1:
        raise BadInput(f"{path}: field run_id: several runs in one file; export one run")
    index = table["index"].to_numpy()
    weight = table["weight"].to_numpy(zero_copy_only=False)
    _, first, counts = np.unique(index, return_index=True, return_counts=True)
    if (counts > 1).any():
        row = int(np.sort(first[counts > 1])[0])
        raise BadInput(f"{path}: row {row}: duplicate index {index[row]}")
    _check_positive(weight, str(path))
    keys = [c for c in ("episode_uid", "frame_index") if c in table.column_names]
    return table.select(["index", "weight", *keys])  # the keys check the file is this dataset's


def matrix(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed-size-list column (state, action, log-prob) as an (n, width) array."""
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(-1, width)


def load_batch(
    ds: Dataset,
    policy: TokenPolicy,
    weights: pa.Table | None,
    *,
    reward: str = "success",
    behaviour: str = "logged",
    temperature: float = 1.0,
    weights_name: str = "weights",
) -> Batch:
    """Every episode of `ds` as one batch. `weights` (index, weight) must cover every step when
    given (None: w = 1, plain GRPO). `behaviour` says where pi_old comes from: the logged
    `policy.log_prob` of a trained policy at this temperature, or `policy` itself (init)."""
    if reward not in REWARDS:
        raise BadInput(f"--reward must be one of {REWARDS}, got {reward!r}")
    if behaviour not in BEHAVIOURS:
        raise BadInput(f"--behaviour must be one of {BEHAVIOURS}, got {behaviour!r}")
    step_weights = weights if weights is not None else pa.table({"index": [], "weight": []})
    ds.con.register("step_weights", step_weights)
    steps = ds.arrow(sql_text(__file__, "batch_steps.sql"))
    episodes = ds.arrow(sql_text(__file__, "batch_episodes.sql")).to_pylist()
    if not episodes:
        raise BadInput(f"{ds.root}: the dataset has no episodes to train on")
    if weights is not None:
        _check_coverage(steps, weights, weights_name)
        _check_positive(weights["weight"].to_numpy(zero_copy_only=False), weights_name)
        if {"episode_uid", "frame_index"} <= set(weights.column_names):
            for wrong in ds.arrow(sql_text(__file__, "weights_mismatch.sql")).to_pylist():
                raise BadInput(
                    f"{weights_name}: index {wrong['index']}: names {wrong['file_uid']} frame "
                    f"{wrong['file_frame']}, but that step is {wrong['episode_uid']} frame "
                    f"{wrong['frame_index']} here (weights of another dataset?)"
                )

    cfg = policy.config
    states = matrix(steps["state"], cfg.state_dim)
    actions = matrix(steps["action"], cfg.action_dim)
    if not np.isfinite(actions).all():
        row = int(np.argmax(~np.isfinite(actions).all(1)))
        raise BadInput(f"{ds.root}: steps: row {row}: field action: not finite")
    episode_of = {e["episode_index"]: i for i, e in enumerate(episodes)}
    tasks = torch.tensor([policy.task_index(t) for t in steps["task"].to_pylist()])
    episode = torch.tensor([episode_of[e] for e in steps["episode_index"].to_pylist()])
    tokens = policy.tokens(torch.from_numpy(actions.copy()))
    state_t = torch.from_numpy(states.astype(np.float32))

    if behaviour == "logged":
        old = _logged_log_probs(ds, steps, episodes, cfg.action_dim, temperature)
    else:
        with torch.no_grad():
            old, _ = policy.token_log_probs(state_t, tasks, tokens, temperature)
    rewards = [float(e["success"]) if reward == "success" else e["return"] for e in episodes]
    return Batch(
        states=state_t,
        tasks=tasks,
        tokens=tokens,
        old_log_probs=old.float(),
        weights=torch.tensor(steps["weight"].to_numpy(), dtype=torch.float32),
        episode=episode,
        rewards=torch.tensor(rewards, dtype=torch.float32),
        groups=torch.tensor([e["group_index"] for e in episodes]),
        horizon=int(ds.info.get("papo", {}).get("horizon") or max(torch.bincount(episode))),
    )


def _check_positive(weight: np.ndarray, name: str) -> None:
    """w > 0 everywhere: A_i * w then keeps the sign of A_i (DESIGN §3)."""
    bad = ~(np.isfinite(weight) & (weight > 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise BadInput(f"{name}: row {row}: field weight: must be finite and > 0: {weight[row]}")


def _check_coverage(steps: pa.Table, weights: pa.Table, name: str) -> None:
    known = set(steps["index"].to_pylist())
    given = weights["index"].to_pylist()
    stray = [i for i in given if i not in known]
    if stray:
        raise BadInput(f"{name}: index {stray[0]} is not a step of the dataset")
    if len(given) != len(known):
        missing = min(known - set(given))
        raise BadInput(
            f"{name}: covers {len(given)} of {len(known)} steps (index {missing} has no weight); "
            "export one row per step with 'papo export-weights'"
        )


def _logged_log_probs(
    ds: Dataset, steps: pa.Table, episodes: list[dict], width: int, temperature: float
) -> torch.Tensor:
    """pi_old from the log: only a trained token policy's log-probs are a ratio's denominator."""
    for e in episodes:
        match = re.fullmatch(r"torch\(.*temperature=([^,)]*)\)", e["policy_id"])
        if not match:
            raise BadInput(
                f"{ds.root}: episodes: episode {e['episode_index']}: field policy_id: "
                f"{e['policy_id']!r} is not a token policy, so its log-probs cannot be a GRPO "
                "ratio's denominator; use --behaviour init"
            )
        if not math.isclose(float(match.group(1)), temperature):
            raise BadInput(
                f"{ds.root}: episodes: episode {e['episode_index']}: sampled at temperature "
                f"{match.group(1)}, the update uses {temperature}"
            )
    column = steps["log_prob"]
    if column.null_count:
        row = int(np.argmax(column.is_null().to_numpy(zero_copy_only=False)))
        raise BadInput(f"{ds.root}: steps: row {row}: field policy.log_prob: missing")
    return torch.from_numpy(matrix(column, width).astype(np.float32))
