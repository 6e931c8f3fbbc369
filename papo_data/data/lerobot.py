"""LeRobot v3.0 metadata: `meta/info.json`, derived from the `steps` schema.

The format itself is data (path templates, defaults); this module only fills it in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from papo_data import schema
from papo_data.errors import BadInput

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
INFO_DEFAULTS: dict[str, Any] = {
    "codebase_version": CODEBASE_VERSION,
    "robot_type": None,
    "total_episodes": 0,
    "total_frames": 0,
    "total_tasks": 0,
    "chunks_size": 1000,
    "data_files_size_in_mb": 100,
    "video_files_size_in_mb": 500,
    "fps": 80,
    "splits": {},
    "data_path": schema.load("steps").file_template,
    "video_path": None,
    "features": {},
}
REQUIRED_INFO_KEYS = (
    "codebase_version",
    "fps",
    "features",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_path",
    "splits",
)
# Which names list labels each vector column of `steps`.
VECTOR_NAMES = {
    "observation.state": "state_names",
    "action": "action_names",
    "policy.log_prob": "action_names",
}


def lerobot_dtype(column: schema.Column) -> str:
    """LeRobot feature dtype of a steps column (vectors are their element type)."""
    return "float32" if column.dim else column.type


def features(
    state_names: list[str], action_names: list[str], log_probs: bool = True
) -> dict[str, dict[str, Any]]:
    """`info.json` features declaring every `steps` column, in schema order (without
    `policy.log_prob` for a dataset that will hold none)."""
    names = {"state_names": state_names, "action_names": action_names}
    dims = {"state_dim": len(state_names), "action_dim": len(action_names)}
    out: dict[str, dict[str, Any]] = {}
    for col in schema.load("steps").columns:
        if col.name == "policy.log_prob" and not log_probs:
            continue
        if col.dim:
            out[col.name] = {
                "dtype": lerobot_dtype(col),
                "shape": [dims[col.dim]],
                "names": names[VECTOR_NAMES[col.name]],
            }
        else:
            out[col.name] = {"dtype": lerobot_dtype(col), "shape": [1], "names": None}
    return out


def new_info(
    *,
    fps: int,
    state_names: list[str],
    action_names: list[str],
    env: str,
    robot_type: str | None = None,
    chunks_size: int = 1000,
    data_files_size_in_mb: int = 100,
    log_probs: bool = True,
) -> dict[str, Any]:
    info = dict(INFO_DEFAULTS)
    info.update(
        fps=fps,
        robot_type=robot_type,
        chunks_size=chunks_size,
        data_files_size_in_mb=data_files_size_in_mb,
        features=features(state_names, action_names, log_probs),
        papo={
            "schema_version": schema.schema_version(),
            "env": env,
            "state_names": state_names,
            "action_names": action_names,
        },
    )
    return info


def dims(info: dict[str, Any]) -> schema.Dims:
    """Vector lengths, from the declared shapes of `observation.state` and `action`."""
    feats = info["features"]
    out = {}
    for dim, col in (("state_dim", "observation.state"), ("action_dim", "action")):
        try:
            out[dim] = int(feats[col]["shape"][0])
        except (KeyError, TypeError, IndexError, ValueError):
            raise BadInput(
                f"{INFO_PATH}: features.{col}.shape is missing or not a length"
            ) from None
    return out


def parse_info(text: str, where: str = INFO_PATH) -> dict[str, Any]:
    """Parse and sanity-check `info.json`; BadInput names the field at fault."""
    try:
        info = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{where}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(info, dict):
        raise BadInput(f"{where}: expected a JSON object")
    for key in REQUIRED_INFO_KEYS:
        if key not in info:
            raise BadInput(f"{where}: field {key} is missing")
    if info["codebase_version"] != CODEBASE_VERSION:
        raise BadInput(
            f"{where}: field codebase_version is {info['codebase_version']!r}, "
            f"expected {CODEBASE_VERSION!r} (convert older datasets with lerobot first)"
        )
    for key, least in (
        ("total_episodes", 0),
        ("total_frames", 0),
        ("total_tasks", 0),
        ("chunks_size", 1),
        ("fps", 1),
    ):
        value = info[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise BadInput(f"{where}: field {key} is {value!r}, expected an integer >= {least}")
    if info["data_path"] != INFO_DEFAULTS["data_path"]:
        raise BadInput(
            f"{where}: field data_path is {info['data_path']!r}, expected "
            f"{INFO_DEFAULTS['data_path']!r} (the LeRobot v3 layout)"
        )
    if not isinstance(info["features"], dict):
        raise BadInput(f"{where}: field features is not an object")
    dims(info)
    return info


def splits(total_episodes: int) -> dict[str, str]:
    return {"train": f"0:{total_episodes}"} if total_episodes else {}


def read_info(root: Path, path: Path | None = None) -> dict[str, Any]:
    p = path or root / INFO_PATH
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise BadInput(f"{root}: not a papo dataset (no {INFO_PATH})") from None
    except UnicodeDecodeError:
        raise BadInput(f"{INFO_PATH}: not valid JSON (not UTF-8 text)") from None
    except OSError as e:
        raise BadInput(f"{INFO_PATH}: cannot be read ({e.strerror})") from None
    return parse_info(text)
