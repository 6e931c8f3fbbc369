"""Shared builders: small random episodes written through the public writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from papo_data import DatasetWriter, Episode

STATE_NAMES = ["s0", "s1", "s2"]
ACTION_NAMES = ["a0", "a1", "a2", "gripper"]


def random_episode(rng: np.random.Generator, uid: str, length: int, task: str = "t0") -> Episode:
    return Episode(
        episode_uid=uid,
        task=task,
        observation_state=rng.normal(size=(length, len(STATE_NAMES))),
        action=rng.normal(size=(length, len(ACTION_NAMES))),
        reward=rng.normal(size=length),
        success=rng.random(length) > 0.8,
        group_id=f"g-{uid[-1]}",
        env_id="test/random",
        policy_id="random",
    )


def create(path: Path, **kwargs: object) -> DatasetWriter:
    return DatasetWriter.create(
        path,
        fps=10,
        state_names=STATE_NAMES,
        action_names=ACTION_NAMES,
        env="test",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    path = tmp_path / "ds"
    with create(path) as w:
        for i in range(5):
            w.add_episode(random_episode(rng, f"ep{i}", int(rng.integers(2, 9)), f"t{i % 2}"))
    return path
