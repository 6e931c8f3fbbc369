"""Bring a simulator to any logged frame: restore the nearest checkpoint at or before it, replay
the logged actions, and check every observation against the log bit for bit."""

from __future__ import annotations

import numpy as np

from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.errors import BadInput
from papo_data.sim import EnvAdapter


class ReplayMismatch(Exception):
    """The simulator did not reproduce the log: the snapshot or the simulator is at fault."""


def replay_to(env: EnvAdapter, ds: Dataset, episode_uid: str, frame: int) -> np.ndarray:
    """Put `env` in the state before the action of `frame` of the episode; returns the
    observation there. Raises ReplayMismatch naming the episode and the first frame whose
    observation differs from the logged `observation.state`."""
    params = {"episode_uid": episode_uid, "frame": frame}
    checkpoint = ds.arrow(sql_text(__file__, "replay_checkpoint.sql"), params).to_pylist()
    if not checkpoint:
        raise BadInput(f"episode {episode_uid!r}: no snapshot at or before frame {frame}")
    start = checkpoint[0]["frame_index"]
    if checkpoint[0]["format"] != env.snapshot_format:
        raise BadInput(
            f"episode {episode_uid!r}: snapshot format {checkpoint[0]['format']!r}, "
            f"this simulator reads {env.snapshot_format!r}"
        )
    rows = ds.arrow(
        sql_text(__file__, "replay_frames.sql"),
        {"episode_uid": episode_uid, "first": start, "last": frame},
    )
    if rows.num_rows != frame - start + 1:
        raise BadInput(f"episode {episode_uid!r}: has no frame {frame}")
    states = np.stack(rows.column("state").to_numpy(zero_copy_only=False))
    actions = np.stack(rows.column("action").to_numpy(zero_copy_only=False))
    obs = env.restore(checkpoint[0]["state"])
    for i in range(frame - start + 1):
        if not np.array_equal(obs.astype(np.float32), states[i]):
            worst = int(np.argmax(np.abs(obs.astype(np.float32) - states[i])))
            raise ReplayMismatch(
                f"episode {episode_uid!r}: frame {start + i}: observation differs from the log "
                f"(first at dim {worst}: {obs[worst]!r} vs {states[i][worst]!r}), "
                f"replayed from the checkpoint at frame {start}"
            )
        if i < frame - start:
            obs, _, _ = env.step(actions[i])
    return obs
