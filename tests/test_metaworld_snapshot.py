"""Meta-World snapshots replay bit-exactly: real simulator, real expert policies, no mocks."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from metaworld.env_dict import ALL_V3_ENVIRONMENTS

from papo_data.errors import BadInput
from papo_data.sim import EnvAdapter
from papo_data.sim.metaworld import MetaWorldEnv

# The eight named in the design, plus tasks whose `_target_pos` (basketball, bin-picking) or
# `obj_init_pos` (door-lock) are live views into MuJoCo memory.
TASKS = [
    "pick-place-v3",
    "drawer-open-v3",
    "door-open-v3",
    "button-press-v3",
    "peg-insert-side-v3",
    "assembly-v3",
    "push-v3",
    "reach-v3",
    "basketball-v3",
    "bin-picking-v3",
    "door-lock-v3",
]
SEED = 3
BRANCH_STEPS = 150


def noisy_expert(env: MetaWorldEnv, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return env.expert_action(obs) + rng.normal(0.0, 0.3, size=4)


def run(env: MetaWorldEnv, actions: list[np.ndarray]) -> tuple[np.ndarray, list[float], list[bool]]:
    steps = [env.step(a) for a in actions]
    return np.array([o for o, _, _ in steps]), [r for _, r, _ in steps], [s for _, _, s in steps]


@pytest.mark.parametrize(
    ("task", "prefix"), [*((t, 20) for t in TASKS), ("pick-place-v3", 0), ("assembly-v3", 200)]
)
def test_restore_replays_bit_exactly(task: str, prefix: int) -> None:
    env = MetaWorldEnv()
    rng = np.random.default_rng(7)
    obs = env.reset(task, SEED)
    for _ in range(prefix):
        obs, _, _ = env.step(noisy_expert(env, obs, rng))
    blob = env.snapshot()
    actions: list[np.ndarray] = []
    steps = []
    for _ in range(BRANCH_STEPS):
        actions.append(noisy_expert(env, obs, rng))
        steps.append(env.step(actions[-1]))
        obs = steps[-1][0]
    want = (np.array([o for o, _, _ in steps]), [r for _, r, _ in steps], [s for _, _, s in steps])

    env.restore(blob)  # (a) the same instance
    same = run(env, actions)
    fresh_env = MetaWorldEnv()
    fresh_env.restore(blob)  # (b) an instance that never ran this task
    fresh = run(fresh_env, actions)
    env.reset(task, SEED + 1)  # (c) after another episode moved the bodies and goal
    env.step(np.ones(4))
    env.restore(blob)
    history = run(env, actions)

    for got in (same, fresh, history):
        assert np.array_equal(got[0], want[0])  # bit-identical, not allclose
        assert got[1] == want[1]
        assert got[2] == want[2]


def test_snapshot_loads_without_pickle() -> None:
    env = MetaWorldEnv()
    env.reset("pick-place-v3", SEED)
    env.step(np.array([0.1, -0.2, 0.3, 1.0]))
    with np.load(io.BytesIO(env.snapshot()), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    assert all(a.dtype.kind in "biuf" for a in arrays.values())
    meta = json.loads(arrays["meta"].tobytes())
    assert meta["format"] == env.snapshot_format
    assert meta["task"] == "pick-place-v3"
    assert meta["init_seed"] == SEED
    assert meta["scalars"]["curr_path_length"] == ["int", 1]
    assert "init_left_pad" in meta["views"]  # a live view: re-pointed, not copied


def test_garbage_snapshot_is_bad_input() -> None:
    with pytest.raises(BadInput, match="snapshot is not"):
        MetaWorldEnv().restore(b"not an npz")


def test_same_task_and_seed_give_the_same_initial_state() -> None:
    first = MetaWorldEnv().reset("peg-insert-side-v3", SEED)
    used = MetaWorldEnv()
    used.reset("peg-insert-side-v3", SEED + 1)
    for _ in range(30):
        used.step(np.array([1.0, 1.0, -1.0, 1.0]))
    used.reset("reach-v3", 0)
    assert np.array_equal(used.reset("peg-insert-side-v3", SEED), first)
    assert not np.array_equal(used.reset("peg-insert-side-v3", SEED + 1), first)


@pytest.mark.parametrize("task", ["door-open-v3", "button-press-v3", "bin-picking-v3"])
def test_expert_does_not_edit_the_observation(task: str) -> None:
    # These experts shift slices of the observation in place.
    env = MetaWorldEnv()
    obs = env.reset(task, SEED)
    before = obs.copy()
    action = env.expert_action(obs)
    assert np.array_equal(obs, before)
    assert np.array_equal(env.expert_action(obs), action)


def test_unknown_task_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown task 'pick-plaice-v3'"):
        MetaWorldEnv().reset("pick-plaice-v3", 0)


def test_metadata() -> None:
    env: EnvAdapter = MetaWorldEnv()
    tasks = env.tasks()
    assert len(tasks) == 50
    assert tasks["pick-place-v3"] == "pick up the puck and place it at the goal"
    assert len(env.state_names) == len(set(env.state_names)) == 39
    assert env.action_names == ["dx", "dy", "dz", "gripper"]
    assert env.max_steps == 500
    obs = env.reset("reach-v3", 0)
    assert obs.shape == (39,)
    assert obs.dtype == np.float64
    raw = ALL_V3_ENVIRONMENTS["reach-v3"]()
    assert env.fps == round(1 / (raw.model.opt.timestep * raw.frame_skip)) == 80
