"""An independent checker of the LeRobot v3.0 dataset contract, for tests.

Written from the LeRobot v3.0 format (huggingface/lerobot `datasets/utils.py`,
`lerobot_dataset.py`), not from papo_data, so that it can judge datasets written by papo and
by other tools alike:

- `meta/info.json`: codebase_version "v3.0", the fields `create_empty_dataset_info` writes,
  path templates `data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet` and
  `videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4`;
- `meta/tasks.parquet`: a pandas frame indexed by the task texts, with a `task_index` column;
- `meta/stats.json`: feature -> {min, max, mean, std, count, ...}, lists of the feature's length
  (LeRobot's normaliser reads it: without it, training silently skips normalisation);
- `meta/episodes/chunk-*/file-*.parquet`: one row per episode, its frames' global range
  `[dataset_from_index, dataset_to_index)`, the data (and video) file holding them, and
  optional `stats/<feature>/<stat>` columns;
- `data/chunk-*/file-*.parquet`: exactly the non-video features of info.json, loadable with the
  Hugging Face features LeRobot derives from them (`get_hf_features_from_features`): shape [1]
  is a scalar Value, shape [n] a list of length n, video features are not columns.

`check_lerobot_v3(root)` returns every problem found, one string each; [] means the dataset
keeps the contract.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
STATS_PATH = "meta/stats.json"
STATS = ("min", "max", "mean", "std", "count")  # and LeRobot 0.4's quantiles, not required
EPISODES_GLOB = "meta/episodes/chunk-*/file-*.parquet"
DATA_GLOB = "data/chunk-*/file-*.parquet"
INFO_FIELDS = (
    "codebase_version",
    "robot_type",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_files_size_in_mb",
    "video_files_size_in_mb",
    "fps",
    "splits",
    "data_path",
    "video_path",
    "features",
)
# The per-frame columns every LeRobot dataset has (DEFAULT_FEATURES).
DEFAULT_FEATURES = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
EPISODE_COLUMNS = (
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
    "meta/episodes/chunk_index",
    "meta/episodes/file_index",
)
VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
TIMESTAMP_TOLERANCE_S = 1e-4  # LeRobot's default tolerance_s
CHUNK_FILE = re.compile(r"chunk-(\d+)/file-(\d+)\.parquet$")


def check_lerobot_v3(root: str | Path) -> list[str]:
    """Every way the folder at `root` departs from the LeRobot v3.0 layout ([] = none)."""
    root = Path(root)
    problems: list[str] = []
    info = _check_info(root, problems)
    if info is None:
        return problems
    tasks = _check_tasks(root, info, problems)
    _check_stats(root, info, problems)
    episodes = _check_episodes(root, info, tasks, problems)
    frames = _check_data_files(root, info, problems)
    if episodes is not None and frames is not None:
        _check_frames_against_episodes(root, info, episodes, frames, tasks, problems)
    return problems


# -- meta/info.json ------------------------------------------------------------------------


def _is_count(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _check_info(root: Path, problems: list[str]) -> dict[str, Any] | None:
    path = root / INFO_PATH
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        problems.append(f"{INFO_PATH}: is missing")
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problems.append(f"{INFO_PATH}: not valid JSON ({e})")
        return None
    if not isinstance(info, dict):
        problems.append(f"{INFO_PATH}: not a JSON object")
        return None
    missing = [k for k in INFO_FIELDS if k not in info]
    problems += [f"{INFO_PATH}: field {k} is missing" for k in missing]
    if missing:
        return None
    if info["codebase_version"] != "v3.0":
        problems.append(f"{INFO_PATH}: codebase_version is {info['codebase_version']!r}, not v3.0")
        return None
    for key in ("total_episodes", "total_frames", "total_tasks"):
        if not _is_count(info[key]):
            problems.append(f"{INFO_PATH}: {key} is {info[key]!r}, not a count")
    for key in ("chunks_size", "fps"):
        if not _is_count(info[key], 1):
            problems.append(f"{INFO_PATH}: {key} is {info[key]!r}, not a positive integer")
    for key in ("data_files_size_in_mb", "video_files_size_in_mb"):
        value = info[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"{INFO_PATH}: {key} is {value!r}, not a positive size")
    data_path = info["data_path"]
    if not isinstance(data_path, str) or _template_fields(data_path) != {
        "chunk_index",
        "file_index",
    }:
        problems.append(
            f"{INFO_PATH}: data_path {data_path!r} is not a template of chunk_index and file_index"
        )
        return None  # nothing below can locate the data files
    features = info["features"]
    if not isinstance(features, dict):
        problems.append(f"{INFO_PATH}: features is not an object")
        return None
    _check_features(features, problems)
    has_video = any(isinstance(f, dict) and f.get("dtype") == "video" for f in features.values())
    video_path = info["video_path"]
    if has_video and (
        not isinstance(video_path, str)
        or _template_fields(video_path) != {"video_key", "chunk_index", "file_index"}
    ):
        problems.append(
            f"{INFO_PATH}: video_path {video_path!r} is not a template of video_key, "
            "chunk_index and file_index (the dataset has video features)"
        )
    splits = info["splits"]
    if not isinstance(splits, dict):
        problems.append(f"{INFO_PATH}: splits is not an object")
    else:
        for name, span in splits.items():
            m = re.fullmatch(r"(\d+):(\d+)", str(span))
            total = info["total_episodes"]
            if not m or not int(m[1]) <= int(m[2]) <= (total if _is_count(total) else 0):
                problems.append(f"{INFO_PATH}: split {name} is {span!r}, not 'from:to' episodes")
    return info


def _check_features(features: dict[str, Any], problems: list[str]) -> None:
    for key, feat in features.items():
        where = f"{INFO_PATH}: features.{key}"
        if "/" in key:
            problems.append(f"{where}: a feature name may not contain '/'")
        if not isinstance(feat, dict) or not {"dtype", "shape", "names"} <= set(feat):
            problems.append(f"{where}: needs dtype, shape and names")
            continue
        shape = feat["shape"]
        if not isinstance(shape, list) or not shape or not all(_is_count(n, 1) for n in shape):
            problems.append(f"{where}: shape {shape!r} is not a list of positive lengths")
            continue
        dtype = feat["dtype"]
        if dtype in ("video", "image"):
            if len(shape) != 3:
                problems.append(f"{where}: a {dtype} has shape (height, width, channels)")
            continue
        try:
            datasets.Value(dtype)
        except (ValueError, TypeError):
            problems.append(f"{where}: dtype {dtype!r} is not a Hugging Face Value type")
        names = feat["names"]
        if isinstance(names, list) and len(shape) == 1 and len(names) != shape[0]:
            problems.append(f"{where}: {len(names)} names for shape {shape}")
    for key, dtype in DEFAULT_FEATURES.items():
        feat = features.get(key)
        if not isinstance(feat, dict) or feat.get("dtype") != dtype or feat.get("shape") != [1]:
            problems.append(f"{INFO_PATH}: features.{key} must be {dtype} of shape [1]")


# -- meta/tasks.parquet --------------------------------------------------------------------


def _check_tasks(root: Path, info: dict[str, Any], problems: list[str]) -> pd.DataFrame | None:
    try:
        tasks = pd.read_parquet(root / TASKS_PATH)
    except FileNotFoundError:
        problems.append(f"{TASKS_PATH}: is missing")
        return None
    except (pa.ArrowInvalid, OSError) as e:
        problems.append(f"{TASKS_PATH}: not a readable Parquet file ({e})")
        return None
    # LeRobot reads the texts from the index, whatever its name (its own writer leaves it
    # unnamed; others name it `task`): row numbers there are wrong texts.
    if not all(isinstance(t, str) for t in tasks.index):
        problems.append(f"{TASKS_PATH}: the pandas index does not hold the task texts")
        if "task" in tasks.columns:  # judge the rest as if it did
            tasks = tasks.set_index("task")
    if "task_index" not in tasks.columns:
        problems.append(f"{TASKS_PATH}: column task_index is missing")
        return None
    if tasks.index.has_duplicates:
        problems.append(f"{TASKS_PATH}: a task text appears twice")
    indices = tasks["task_index"].tolist()
    if sorted(indices) != list(range(len(tasks))):
        problems.append(f"{TASKS_PATH}: task_index values are {indices}, not 0..{len(tasks) - 1}")
    if len(tasks) != info["total_tasks"]:
        problems.append(
            f"{INFO_PATH}: total_tasks is {info['total_tasks']}, {TASKS_PATH} holds {len(tasks)}"
        )
    return tasks


def _check_stats(root: Path, info: dict[str, Any], problems: list[str]) -> None:
    path = root / STATS_PATH
    if not path.is_file():
        if info["total_episodes"]:
            problems.append(f"{STATS_PATH}: is missing")
        return
    try:
        stats = json.loads(path.read_text())
    except ValueError as e:
        problems.append(f"{STATS_PATH}: not JSON ({e})")
        return
    features = info["features"]
    for key, entry in stats.items() if isinstance(stats, dict) else []:
        feat = features.get(key)
        if not isinstance(feat, dict):
            problems.append(f"{STATS_PATH}: {key} is not a declared feature")
            continue
        if not isinstance(entry, dict) or not set(STATS) <= set(entry):
            problems.append(f"{STATS_PATH}: {key} needs {', '.join(STATS)}")
            continue
        width = feat["shape"][-1] if feat.get("dtype") in ("video", "image") else feat["shape"][0]
        if np.asarray(entry["count"]).shape != (1,):
            problems.append(f"{STATS_PATH}: {key}.count is not one number")
        shapes = {np.asarray(entry[stat]).shape for stat in STATS if stat != "count"}
        if feat.get("dtype") not in ("video", "image") and shapes != {(width,)}:
            problems.append(f"{STATS_PATH}: {key}: statistics of shape {shapes}, not ({width},)")
    if not isinstance(stats, dict):
        problems.append(f"{STATS_PATH}: not a mapping of feature -> statistics")


# -- meta/episodes -------------------------------------------------------------------------


def _chunk_file(path: Path) -> tuple[int, int]:
    m = CHUNK_FILE.search(path.as_posix())
    assert m, path
    return int(m[1]), int(m[2])


def _check_episodes(
    root: Path, info: dict[str, Any], tasks: pd.DataFrame | None, problems: list[str]
) -> pd.DataFrame | None:
    paths = sorted(root.glob(EPISODES_GLOB))
    if not paths:
        if info["total_episodes"]:
            problems.append(f"{EPISODES_GLOB}: no episodes metadata file")
        return None if info["total_episodes"] else pd.DataFrame(columns=list(EPISODE_COLUMNS))
    features = info["features"]
    videos = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") == "video"]
    frames = []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            problems.append(f"{rel}: not a readable Parquet file ({e})")
            return None
        required = list(EPISODE_COLUMNS) + [
            f"videos/{key}/{col}" for key in videos for col in VIDEO_COLUMNS
        ]
        missing = [c for c in required if c not in table.column_names]
        problems += [f"{rel}: column {c} is missing" for c in missing]
        if missing:
            return None
        for col in table.column_names:
            parts = col.split("/")
            if parts[0] == "stats" and (len(parts) != 3 or parts[1] not in features):
                problems.append(f"{rel}: column {col} is not stats/<declared feature>/<stat>")
        tasks_type = table.schema.field("tasks").type
        if not (pa.types.is_list(tasks_type) or pa.types.is_large_list(tasks_type)) or not (
            pa.types.is_string(tasks_type.value_type)
            or pa.types.is_large_string(tasks_type.value_type)
        ):
            problems.append(f"{rel}: column tasks is {tasks_type}, not a list of strings")
        frame = table.select(required).to_pandas()
        own = _chunk_file(path)
        said = frame[["meta/episodes/chunk_index", "meta/episodes/file_index"]].to_numpy()
        for row in np.flatnonzero((said != np.array(own)).any(axis=1)):
            problems.append(
                f"{rel}: row {row}: meta/episodes/chunk_index, file_index say "
                f"{tuple(said[row])}, the row is in {own}"
            )
        frame["_file"] = rel
        frame["_row"] = np.arange(len(frame))
        frames.append(frame)
    episodes = pd.concat(frames, ignore_index=True).sort_values("episode_index", kind="stable")
    n = len(episodes)
    if episodes["episode_index"].tolist() != list(range(n)):
        problems.append(f"{EPISODES_GLOB}: episode_index values are not 0..{n - 1}, each once")
    if n != info["total_episodes"]:
        problems.append(
            f"{INFO_PATH}: total_episodes is {info['total_episodes']}, metadata has {n}"
        )
    start = episodes["dataset_from_index"].to_numpy()
    stop = episodes["dataset_to_index"].to_numpy()
    length = episodes["length"].to_numpy()
    for i in np.flatnonzero((stop - start != length) | (length < 1)):
        e = episodes.iloc[i]
        problems.append(
            f"{e['_file']}: row {e['_row']}: length {e['length']} is not "
            f"dataset_to_index - dataset_from_index ({e['dataset_to_index']} - "
            f"{e['dataset_from_index']}) or is not positive"
        )
    expected_start = np.concatenate([[0], stop[:-1]])
    for i in np.flatnonzero(start != expected_start):
        e = episodes.iloc[i]
        problems.append(
            f"{e['_file']}: row {e['_row']}: dataset_from_index {e['dataset_from_index']} "
            f"leaves a gap or overlap (the previous episode ends at {expected_start[i]})"
        )
    if n and stop[-1] != info["total_frames"]:
        problems.append(
            f"{INFO_PATH}: total_frames is {info['total_frames']}, the episodes end at {stop[-1]}"
        )
    if tasks is not None:
        for _, e in episodes.iterrows():
            unknown = [t for t in e["tasks"] if t not in tasks.index]
            if unknown or len(e["tasks"]) == 0:
                problems.append(
                    f"{e['_file']}: row {e['_row']}: tasks {list(e['tasks'])} "
                    f"are empty or not in {TASKS_PATH}"
                )
    _check_videos(root, info, episodes, videos, problems)
    return episodes


def _check_videos(
    root: Path, info: dict[str, Any], episodes: pd.DataFrame, videos: list[str], problems: list[str]
) -> None:
    for key in videos:
        col = f"videos/{key}"
        bad = episodes[col + "/from_timestamp"] > episodes[col + "/to_timestamp"]
        for _, e in episodes[bad].iterrows():
            problems.append(f"{e['_file']}: row {e['_row']}: {col} from_timestamp > to_timestamp")
        pairs = episodes[[col + "/chunk_index", col + "/file_index"]].drop_duplicates()
        for chunk, file in pairs.itertuples(index=False):
            rel = info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
            if not (root / rel).is_file():
                problems.append(f"{rel}: video file named by the episodes metadata is missing")


# -- data/ ---------------------------------------------------------------------------------


def _expected_type(dtype: str) -> pa.DataType:
    return datasets.Value(dtype).pa_type


def _check_column(
    rel: str, key: str, feat: dict[str, Any], column: pa.ChunkedArray, problems: list[str]
) -> None:
    """The column as `get_hf_features_from_features` would declare the feature."""
    where = f"{rel}: column {key}"
    actual, dtype, shape = column.type, feat["dtype"], feat["shape"]
    if dtype == "image":
        if not (pa.types.is_struct(actual) and {"bytes", "path"} <= {f.name for f in actual}):
            problems.append(f"{where}: an image is a struct of bytes and path, got {actual}")
        return
    try:
        expected = _expected_type(dtype)
    except (ValueError, TypeError):
        return  # reported with the feature
    if shape == [1]:
        same = actual == expected or (dtype == "string" and pa.types.is_large_string(actual))
        if not same:
            problems.append(f"{where}: type {actual}, features declare {dtype} of shape [1]")
        return
    # Lists nest once per dimension; each level holds exactly shape[d] values.
    level: pa.ChunkedArray | pa.Array = column
    for d, n in enumerate(shape):
        t = level.type
        if pa.types.is_fixed_size_list(t):
            if t.list_size != n:
                problems.append(
                    f"{where}: dimension {d} has fixed size {t.list_size}, shape {shape}"
                )
                return
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            lengths = pc.list_value_length(level).drop_null()
            wrong = pc.not_equal(lengths, n)
            if len(lengths) and pc.any(wrong).as_py():
                problems.append(f"{where}: dimension {d} holds lists not of length {n}")
                return
        else:
            problems.append(f"{where}: type {actual}, features declare {dtype} of shape {shape}")
            return
        level = pc.list_flatten(level)
    if level.type != expected:
        problems.append(f"{where}: values are {level.type}, features declare {dtype}")


def _check_data_files(root: Path, info: dict[str, Any], problems: list[str]) -> pd.DataFrame | None:
    features = info["features"]
    columns = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") != "video"]
    frames = []
    ok = True
    for path in sorted(root.glob(DATA_GLOB)):
        rel = path.relative_to(root).as_posix()
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            problems.append(f"{rel}: not a readable Parquet file ({e})")
            ok = False
            continue
        undeclared = [c for c in table.column_names if c not in features]
        problems += [
            f"{rel}: column {c} is not declared in {INFO_PATH} features" for c in undeclared
        ]
        videos_as_columns = [c for c in table.column_names if c in features and c not in columns]
        problems += [f"{rel}: column {c} is a video feature" for c in videos_as_columns]
        missing = [c for c in columns if c not in table.column_names]
        problems += [f"{rel}: feature {c} has no column" for c in missing]
        for key in columns:
            if key in table.column_names:
                _check_column(rel, key, features[key], table.column(key), problems)
        if any(c not in table.column_names for c in DEFAULT_FEATURES):
            ok = False
            continue
        frame = table.select(list(DEFAULT_FEATURES)).to_pandas()
        frame["_file"] = rel
        frame["_row"] = np.arange(len(frame))
        frame["_chunk_file"] = [_chunk_file(path)] * len(frame)
        frames.append(frame)
    if not ok:
        return None
    if not frames:
        return pd.DataFrame(columns=[*DEFAULT_FEATURES, "_file", "_row", "_chunk_file"])
    return pd.concat(frames, ignore_index=True)


def _check_frames_against_episodes(
    root: Path,
    info: dict[str, Any],
    episodes: pd.DataFrame,
    frames: pd.DataFrame,
    tasks: pd.DataFrame | None,
    problems: list[str],
) -> None:
    total = info["total_frames"]
    if len(frames) != total:
        problems.append(f"{INFO_PATH}: total_frames is {total}, the data files hold {len(frames)}")
    index = np.sort(frames["index"].to_numpy())
    if not np.array_equal(index, np.arange(len(frames))):
        problems.append(f"{DATA_GLOB}: column index is not 0..{len(frames) - 1}, each once")
    referenced = set()
    by_episode = dict(list(frames.groupby("episode_index")))
    for _, e in episodes.iterrows():
        where = f"{e['_file']}: row {e['_row']} (episode {e['episode_index']})"
        loc = (int(e["data/chunk_index"]), int(e["data/file_index"]))
        rel = info["data_path"].format(chunk_index=loc[0], file_index=loc[1])
        referenced.add(rel)
        if not (root / rel).is_file():
            problems.append(f"{where}: data_path resolves to {rel}, which does not exist")
            continue
        rows = by_episode.get(e["episode_index"])
        if rows is None:
            problems.append(f"{where}: no frame in the data files")
            continue
        rows = rows.sort_values("index")
        want = np.arange(e["dataset_from_index"], e["dataset_to_index"])
        if not np.array_equal(rows["index"].to_numpy(), want):
            problems.append(
                f"{where}: frames have index {rows['index'].min()}..{rows['index'].max()} "
                f"({len(rows)} frames), not [{e['dataset_from_index']}, {e['dataset_to_index']})"
            )
        elif set(rows["_file"]) != {rel}:
            problems.append(f"{where}: frames lie in {sorted(set(rows['_file']))}, not in {rel}")
        if not np.array_equal(rows["frame_index"].to_numpy(), np.arange(len(rows))):
            problems.append(f"{where}: frame_index is not 0..{len(rows) - 1} in index order")
        steps = np.diff(rows["timestamp"].to_numpy(dtype=np.float64))
        if len(steps) and np.abs(steps - 1 / info["fps"]).max() > TIMESTAMP_TOLERANCE_S:
            problems.append(f"{where}: timestamps are not 1/fps apart")
        if tasks is not None and not set(rows["task_index"]) <= set(tasks["task_index"]):
            problems.append(f"{where}: task_index {sorted(set(rows['task_index']))} not in tasks")
    orphans = {p.relative_to(root).as_posix() for p in root.glob(DATA_GLOB)} - referenced
    problems += [f"{rel}: no episode refers to this data file" for rel in sorted(orphans)]
    known = set(episodes["episode_index"])
    stray = sorted(set(frames["episode_index"]) - known)
    if stray:
        problems.append(f"{DATA_GLOB}: frames of episodes {stray[:5]} not in the episodes metadata")
