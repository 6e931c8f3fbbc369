"""Meta-World v3 (all 50 tasks) as an `EnvAdapter`, with bit-exact snapshot and restore.

Meta-World's own pickling keeps only qpos/qvel and drops the mocap target, so it diverges. A
snapshot here is an `.npz` (loads with `allow_pickle=False`) holding:

- `physics`: MuJoCo's full integration state (`mjSTATE_INTEGRATION`: time, qpos, qvel, act,
  warm start, ctrl, applied forces, mocap pose, ...);
- `model/<name>`: the model arrays that `reset` moves bodies and sites with;
- `attr/<name>`: the env's numeric array attributes (targets, initial positions, `_prev_obs`...);
- `rng/env`, `rng/global`: the env's and numpy's global Mersenne Twister keys;
- `meta`: a JSON document (as uint8) with the task, the seed, versions, scalar attributes
  (step counter, flags, reward normalisers...) and the attributes that are live views into
  MuJoCo memory (`init_left_pad`, some `_target_pos`/`obj_init_pos`): those are re-pointed at
  the same memory, never overwritten, because their value *is* the current simulation.

On disk the arrays (all but `meta`) are packed into one flat array per dtype, `pack/<dtype>`,
with a JSON `layout` naming each array's dtype, offset and shape: a snapshot is taken every few
steps, and writing two dozen small .npy entries cost more than the rest of it.

Attributes are found by scanning the env rather than listed per task, so per-task state such
as `pickCompleted` or `_target_to_obj_init` is covered without a table to keep up to date.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import mujoco
import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS
from metaworld.policies import ENV_POLICY_MAP
from metaworld.policies.policy import Policy
from metaworld.sawyer_xyz_env import SawyerXYZEnv

from papo_data.errors import BadInput

SNAPSHOT_FORMAT = "metaworld-mujoco-npz/2"

INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "pick up the nut and place it onto the peg",
    "basketball-v3": "pick up the basketball and dunk it into the basket",
    "bin-picking-v3": "pick the cube out of the left bin and place it in the right bin",
    "box-close-v3": "pick up the lid and close the box with it",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "reach over the wall and press the button from the top",
    "button-press-v3": "press the button",
    "button-press-wall-v3": "reach past the wall and press the button",
    "coffee-button-v3": "push the button on the coffee machine",
    "coffee-pull-v3": "pull the mug out from under the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "turn the dial",
    "disassemble-v3": "pick the nut up off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door by turning the lock",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door by turning the lock",
    "drawer-close-v3": "push the drawer closed",
    "drawer-open-v3": "pull the drawer open",
    "faucet-close-v3": "turn the faucet handle to close the faucet",
    "faucet-open-v3": "turn the faucet handle to open the faucet",
    "hammer-v3": "pick up the hammer and hammer the nail into the wall",
    "hand-insert-v3": "put the gripper into the hole",
    "handle-press-side-v3": "press the handle down from the side",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up from the side",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever up",
    "peg-insert-side-v3": "pick up the peg and insert it into the hole from the side",
    "peg-unplug-side-v3": "pull the peg out of the socket sideways",
    "pick-out-of-hole-v3": "pick the puck up out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "pick-place-wall-v3": "pick up the puck, carry it over the wall and place it at the goal",
    "plate-slide-back-side-v3": "slide the plate sideways out of the goal",
    "plate-slide-back-v3": "slide the plate back out of the goal",
    "plate-slide-side-v3": "slide the plate sideways into the goal",
    "plate-slide-v3": "slide the plate into the goal",
    "push-back-v3": "pull the puck back to the goal",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck around the wall to the goal",
    "reach-v3": "move the gripper to the goal",
    "reach-wall-v3": "move the gripper over the wall to the goal",
    "shelf-place-v3": "pick up the puck and place it on the shelf",
    "soccer-v3": "push the ball into the goal",
    "stick-pull-v3": "grasp the stick and pull the bottle to the goal with it",
    "stick-push-v3": "grasp the stick and push the bottle to the goal with it",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-close-v3": "slide the window closed",
    "window-open-v3": "slide the window open",
}


def _state_names() -> list[str]:
    # Object quaternions keep each task's own component order (MuJoCo's w-first `xquat` in
    # some tasks, scipy's w-last in others), hence neutral indices rather than w/x/y/z.
    def obj(i: int) -> list[str]:
        return [f"obj{i}_{c}" for c in "xyz"] + [f"obj{i}_quat_{k}" for k in range(4)]

    frame = ["hand_x", "hand_y", "hand_z", "gripper_distance", *obj(1), *obj(2)]
    return [*frame, *(f"prev_{n}" for n in frame), "goal_x", "goal_y", "goal_z"]


STATE_NAMES = _state_names()
ACTION_NAMES = ["dx", "dy", "dz", "gripper"]

_PHYSICS = mujoco.mjtState.mjSTATE_INTEGRATION.value
# What reset moves (bodies and goal sites); everything else in the model is as compiled.
_MODEL_ARRAYS = ("body_pos", "body_quat", "site_pos", "site_quat", "geom_pos", "geom_quat")
_VERSIONS = {"mujoco": mujoco.__version__, "metaworld": version("metaworld")}
# `move` warns whenever a proportional gain saturates, which the experts do all the time.
_EXPERT_WARNING = r"Constant\(s\) may be too high"
_PY_SCALARS: dict[str, type] = {"bool": bool, "int": int, "float": float}


@dataclass
class _Sim:
    """One task's env, built once and reused across episodes."""

    task: str
    env: SawyerXYZEnv
    policy: Policy
    buffers: list[tuple[str, str, int, int, np.dtype[Any]]]
    """(owner, field, address, nbytes, dtype) of MuJoCo's arrays, to spot live views."""
    pristine: dict[str, Any]
    located: dict[tuple[Any, ...], list[Any] | None] = field(default_factory=dict)
    """_locate's answers by (address, shape, dtype, contiguity)."""
    """The decoded state of the just-built env: each reset starts from it."""


class MetaWorldEnv:
    """Meta-World v3 tasks, goal observable (the 39-dim MT observation), 500 steps each.

    `reset(task, seed)` draws the task's random configuration from `np.random.RandomState(seed)`
    and starts from a just-built env, so it gives the initial state of metaworld's seeded env
    (`ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{task}-goal-observable"](seed=seed)`) without
    touching the global RNG, and never depends on earlier episodes (metaworld's own later
    resets do: bodies moved by one reset disturb the next one's settling).

    Actions are clipped to [-1, 1] and rounded to float32 (the env's action dtype, and what
    datasets store, so replaying stored actions is exact).
    """

    snapshot_format: str = SNAPSHOT_FORMAT
    state_names: list[str] = STATE_NAMES
    action_names: list[str] = ACTION_NAMES
    # round(1 / (model.opt.timestep * frame_skip)): 0.0025 s x 5 in every v3 task (checked when
    # a task is built) so it is known before the first reset.
    fps: int = 80
    max_steps: int = SawyerXYZEnv.max_path_length

    def __init__(self) -> None:
        self._sims: dict[str, _Sim] = {}
        self._sim: _Sim | None = None
        self._init_seed: int | None = None
        self._obs = np.zeros(len(STATE_NAMES))

    def tasks(self) -> dict[str, str]:
        return dict(INSTRUCTIONS)

    def reset(self, task: str, init_seed: int) -> np.ndarray:
        if isinstance(init_seed, bool) or not isinstance(init_seed, int | np.integer):
            raise BadInput(f"init_seed must be an integer, got {init_seed!r}")
        if not 0 <= init_seed < 2**32:
            raise BadInput(f"init_seed must be in [0, 2**32), got {init_seed}")
        sim = self._load(task)
        env = sim.env
        # Start from the just-built state so an episode never depends on the ones before it.
        _apply(sim, sim.pristine)
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env._np_random = np.random.RandomState(int(init_seed))  # type: ignore[assignment]
        obs, _ = env.reset()
        env._freeze_rand_vec = True  # a later env.reset() keeps this configuration
        self._sim, self._init_seed = sim, int(init_seed)
        self._obs = np.asarray(obs, dtype=np.float64)
        return self._obs.copy()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        env = self._current().env
        act = np.asarray(action, dtype=np.float32)
        if act.shape != (len(ACTION_NAMES),):
            raise BadInput(f"action must have shape ({len(ACTION_NAMES)},), got {act.shape}")
        if env.curr_path_length >= self.max_steps:
            # Checked here: metaworld checks only after it has moved the mocap target.
            raise RuntimeError(f"the episode is over after {self.max_steps} steps; reset first")
        obs, reward, _, _, info = env.step(np.clip(act, -1.0, 1.0))
        self._obs = np.asarray(obs, dtype=np.float64)
        return self._obs.copy(), float(reward), bool(info["success"])

    def expert_action(self, obs: np.ndarray) -> np.ndarray:
        policy = self._current().policy
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_EXPERT_WARNING)
            # A copy: several experts edit slices of the observation in place.
            action = policy.get_action(np.array(obs, dtype=np.float64))
        return np.asarray(action, dtype=np.float32)

    def snapshot(self, *, with_global_rng: bool = False) -> bytes:
        """The state as bytes. numpy's global RNG is left out unless asked: no task steps with
        it, and it would make the bytes differ between processes (tables must not)."""
        return _encode(self._current(), self._init_seed, self._obs, with_global_rng)

    def restore(self, blob: bytes, *, restore_global_rng: bool = False) -> np.ndarray:
        """Continue from `blob`; returns the observation the env showed when it was taken.
        numpy's global RNG is restored too only if asked."""
        state = _decode(blob)
        meta = state["meta"]
        sim = self._load(meta["task"])
        _apply(sim, state)
        if restore_global_rng and "global" in meta["rng"]:
            np.random.set_state(_rng_tuple(meta["rng"]["global"], state["rng/global"]))
        self._sim, self._init_seed = sim, meta["init_seed"]
        if "obs" not in state:
            raise BadInput("snapshot holds no observation (not taken during an episode)")
        self._obs = np.array(state["obs"], dtype=np.float64)
        return self._obs.copy()

    def _current(self) -> _Sim:
        if self._sim is None:
            raise RuntimeError("no episode: call reset() or restore() first")
        return self._sim

    def _load(self, task: str) -> _Sim:
        sim = self._sims.get(task)
        if sim is not None:
            return sim
        if task not in INSTRUCTIONS:
            raise BadInput(
                f"unknown task {task!r}; expected a Meta-World v3 task such as 'pick-place-v3' "
                f"({len(INSTRUCTIONS)} tasks: see MetaWorldEnv().tasks())"
            )
        env = ALL_V3_ENVIRONMENTS[task]()
        env._partially_observable = False  # the goal is part of the observation (MT setting)
        # Cached for the old setting, and observations are clipped to it: recompute.
        del env.sawyer_observation_space
        env._set_task_called = True  # the initial configuration comes from reset's seed instead
        fps = round(1 / (env.model.opt.timestep * env.frame_skip))
        if fps != self.fps:
            raise RuntimeError(f"{task} runs at {fps} fps, not {self.fps}")
        buffers = [
            (owner, field, arr.__array_interface__["data"][0], arr.nbytes, arr.dtype)
            for owner, obj in (("data", env.data), ("model", env.model))
            for field in dir(obj)
            if not field.startswith("_") and isinstance(arr := getattr(obj, field), np.ndarray)
        ]
        policy: Policy = ENV_POLICY_MAP[task]()  # type: ignore[abstract]  # concrete subclasses
        sim = _Sim(task, env, policy, buffers, pristine={})
        sim.pristine = _decode(_encode(sim, None))
        self._sims[task] = sim
        return sim


def _encode(
    sim: _Sim,
    init_seed: int | None,
    obs: np.ndarray | None = None,
    with_global_rng: bool = False,
) -> bytes:
    env = sim.env
    arrays: dict[str, Any] = {}
    physics = np.empty(mujoco.mj_stateSize(env.model, _PHYSICS), dtype=np.float64)
    mujoco.mj_getState(env.model, env.data, physics, _PHYSICS)
    arrays["physics"] = physics
    for name in _MODEL_ARRAYS:
        arrays[f"model/{name}"] = getattr(env.model, name)
    scalars: dict[str, Any] = {}
    views: dict[str, list[Any]] = {}
    for name, value in vars(env).items():
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                where = _locate(sim, name, value)
                if where is None:
                    arrays[f"attr/{name}"] = value
                else:
                    views[name] = where
        elif (encoded := _encode_scalar(value)) is not None:
            scalars[name] = encoded
    rng: dict[str, Any] = {}
    rngs: list[tuple[str, Any]] = [("env", _env_rng_state(env))]
    if with_global_rng:
        rngs.append(("global", np.random.get_state()))
    for key, state in rngs:
        if state is not None:
            kind, keys, pos, has_gauss, cached_gaussian = state
            arrays[f"rng/{key}"] = keys
            rng[key] = [kind, int(pos), int(has_gauss), float(cached_gaussian)]
    meta = {
        "format": SNAPSHOT_FORMAT,
        "task": sim.task,
        "init_seed": init_seed,
        "versions": _VERSIONS,
        "scalars": scalars,
        "views": views,
        "rng": rng,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    if obs is not None:
        arrays["obs"] = obs
    return _npz(arrays)


def _pack(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All arrays but `meta` as one flat array per dtype, plus a JSON `layout`."""
    groups: dict[str, list[np.ndarray]] = {}
    layout: dict[str, list[Any]] = {}
    sizes: dict[str, int] = {}
    for name, array in arrays.items():
        if name == "meta":
            continue
        a = np.asarray(array)
        key = a.dtype.str
        layout[name] = [key, sizes.get(key, 0), list(a.shape)]
        sizes[key] = sizes.get(key, 0) + a.size
        groups.setdefault(key, []).append(a.reshape(-1))
    packed = {f"pack/{key}": np.concatenate(parts) for key, parts in groups.items()}
    packed["layout"] = np.frombuffer(json.dumps(layout).encode(), dtype=np.uint8)
    packed["meta"] = arrays["meta"]
    return packed


def _unpack(stored: dict[str, np.ndarray]) -> dict[str, Any]:
    layout = json.loads(stored["layout"].tobytes())
    out: dict[str, Any] = {"meta": stored["meta"]}
    for name, (key, offset, shape) in layout.items():
        size = int(np.prod(shape, dtype=np.int64))
        out[name] = stored[f"pack/{key}"][offset : offset + size].reshape(shape).copy()
    return out


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive with fixed timestamps (np.savez stamps the clock: same state, same bytes)."""
    arrays = _pack(arrays)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asanyarray(array), allow_pickle=False)
            zf.writestr(
                zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), npy.getvalue()
            )
    return out.getvalue()


def _locate(sim: _Sim, name: str, value: np.ndarray) -> list[Any] | None:
    """[owner, field, element offset, shape] if `value` is a view into MuJoCo memory."""
    if value.flags.owndata:
        return None
    address = value.__array_interface__["data"][0]
    # MuJoCo's buffers never move for a built env, so an address always maps to the same place:
    # remember it (scanning every buffer on each snapshot cost a third of its time).
    key = (address, value.shape, value.dtype.str, value.flags.c_contiguous)
    if key not in sim.located:
        sim.located[key] = _search(sim, name, value, address)
    where = sim.located[key]
    return None if where is None else list(where)


def _search(sim: _Sim, name: str, value: np.ndarray, address: int) -> list[Any] | None:
    for owner, member, start, nbytes, dtype in sim.buffers:
        if start <= address < start + nbytes:
            offset, misaligned = divmod(address - start, dtype.itemsize)
            if value.dtype != dtype or misaligned or not value.flags.c_contiguous:
                raise RuntimeError(f"{sim.task}: cannot snapshot {name}, an odd view of {member}")
            return [owner, member, offset, list(value.shape)]
    return None


def _view(env: SawyerXYZEnv, where: list[Any]) -> np.ndarray:
    owner, field, offset, shape = where
    flat = getattr(getattr(env, owner), field).reshape(-1)
    return flat[offset : offset + int(np.prod(shape, dtype=np.int64))].reshape(shape)


def _encode_scalar(value: Any) -> list[Any] | None:
    """[type, value] for JSON, or None for what is not episode state (spaces, config, text)."""
    if isinstance(value, np.bool_ | np.integer | np.floating):  # first: np.float64 is a float
        return [f"np.{value.dtype.name}", value.item()]
    if value is None or isinstance(value, bool | int | float):
        return [type(value).__name__, value]
    if isinstance(value, list) and all(_encode_scalar(v) is not None for v in value):
        return ["list", [_encode_scalar(v) for v in value]]
    return None


def _decode_scalar(encoded: list[Any]) -> Any:
    kind, value = encoded
    if kind == "list":
        return [_decode_scalar(v) for v in value]
    if kind.startswith("np."):
        return np.dtype(kind[3:]).type(value)
    return None if kind == "NoneType" else _PY_SCALARS[kind](value)


def _env_rng_state(env: SawyerXYZEnv) -> Any:
    # None until the first reset; afterwards the RandomState that reset drew from.
    rng = vars(env).get("_np_random")
    return rng.get_state(legacy=True) if isinstance(rng, np.random.RandomState) else None


def _rng_tuple(meta: list[Any], keys: np.ndarray) -> tuple[str, np.ndarray, int, int, float]:
    kind, pos, has_gauss, cached_gaussian = meta
    return (kind, keys, pos, has_gauss, cached_gaussian)


def _decode(blob: bytes) -> dict[str, Any]:
    """The blob's arrays by name, with `meta` parsed; BadInput if it is not our format."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            state = _unpack({name: npz[name] for name in npz.files})
        meta = json.loads(state["meta"].tobytes())
    except Exception as exc:
        raise BadInput(f"snapshot is not a {SNAPSHOT_FORMAT} blob: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != SNAPSHOT_FORMAT:
        raise BadInput(f"snapshot format is not {SNAPSHOT_FORMAT}")
    if meta.get("versions") != _VERSIONS:
        # Other builds need not step identically, and branches must replay bit-exactly.
        raise BadInput(f"snapshot made with {meta.get('versions')}, this is {_VERSIONS}")
    state["meta"] = meta
    return state


def _apply(sim: _Sim, state: dict[str, Any]) -> None:
    """Make `sim.env` continue exactly as the env that `state` was taken from."""
    env, meta = sim.env, state["meta"]
    for name in _MODEL_ARRAYS:
        getattr(env.model, name)[...] = state[f"model/{name}"]
    physics = state["physics"]
    if physics.shape != (mujoco.mj_stateSize(env.model, _PHYSICS),):
        raise BadInput(f"snapshot physics state has shape {physics.shape}, not this model's")
    mujoco.mj_setState(env.model, env.data, physics, _PHYSICS)
    mujoco.mj_forward(env.model, env.data)  # derived quantities (positions, contacts) for obs
    # mj_forward rewrote the solver warm start; a 1e-18 difference there grows until success
    # flips, so put the saved one back.
    mujoco.mj_setState(env.model, env.data, physics, _PHYSICS)

    attrs: dict[str, Any] = {
        key.removeprefix("attr/"): value for key, value in state.items() if key.startswith("attr/")
    }
    attrs |= {name: _decode_scalar(value) for name, value in meta["scalars"].items()}
    attrs |= {name: _view(env, where) for name, where in meta["views"].items()}
    for name, value in list(vars(env).items()):
        is_state = (isinstance(value, np.ndarray) and value.dtype.kind in "biuf") or (
            _encode_scalar(value) is not None
        )
        if is_state and name not in attrs:
            delattr(env, name)  # set in a later episode than the snapshot's: absent there
    for name, value in attrs.items():
        setattr(env, name, value)  # a new array or a re-pointed view, never written into

    if "env" in meta["rng"]:
        rng = np.random.RandomState()
        rng.set_state(_rng_tuple(meta["rng"]["env"], state["rng/env"]))
        env._np_random = rng  # type: ignore[assignment]
    else:
        vars(env).pop("_np_random", None)
