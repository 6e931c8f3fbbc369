"""Import a LeRobot v3.0 dataset written by another tool as a papo dataset.

Every frame is kept, in (episode_index, frame_index) order, and written through
`DatasetWriter`, so the result is committed and validated like any papo dataset. What is
taken from the source:

- `observation.state` and `action` (required; fixed-length float vectors, finite);
- `next.reward` from `next.reward` or `reward`, `next.success` from `next.success`,
  `is_success` or `success` (per frame; an episode succeeds if any frame did), `next.done`
  from `next.done` or `done`, `policy.log_prob` from `policy.log_prob` (see SOURCE_FEATURES);
- tasks from `meta/tasks.parquet` (one task per episode: its first frame's), fps and
  robot_type from `meta/info.json`.

What papo derives, because a LeRobot dataset does not say it:

- `episode_uid` = "<source folder name>/<source episode_index>";
- `group_id`: a GRPO group is "same task, same initial state", so episodes of one task whose
  first `observation.state` is bit-for-bit equal share a group; everything else is a group of
  one. Datasets recorded from seeded resets get their groups back; teleoperated data, where no
  two initial states are equal, gets one group per episode;
- `env_id` = "lerobot/<source folder name>", `policy_id` = "unknown", seeds -1 (unknown).

Everything else (video and image features, other columns, the `stats/...` and
`videos/...` columns of the episodes metadata, `meta/stats.json`) is not imported; each is
named in the report, and the report is stored in the `papo.imported` block of info.json. The
writer computes the statistics anew over what was imported.
A missing reward, success or done feature gets a default that the report states (missing
success: every episode counts as a failure, `papo.imported.success_known` is false).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from papo_data import schema
from papo_data.data import commit, lerobot, stats
from papo_data.data.files import first_line, readable_parquet
from papo_data.data.validate import validate
from papo_data.data.writer import DatasetWriter, Episode
from papo_data.errors import BadInput

Progress = Callable[[int], Callable[[int], Any]]

# papo steps column <- the source features it is read from (the first one present wins).
SOURCE_FEATURES: dict[str, tuple[str, ...]] = {
    "observation.state": ("observation.state",),
    "action": ("action",),
    "next.reward": ("next.reward", "reward"),
    "next.success": ("next.success", "is_success", "success"),
    "next.done": ("next.done", "done"),
    "policy.log_prob": ("policy.log_prob",),
}
DIMS_FROM = {"state_dim": "observation.state", "action_dim": "action"}
REQUIRED = tuple(DIMS_FROM.values())
# What a papo column holds when the source has no feature for it.
DEFAULTS = {
    "next.reward": "0 on every frame",
    "next.success": "false on every frame: success is unknown and every episode counts "
    "as a failure",
    "next.done": "true on the last frame of each episode",
    "policy.log_prob": "left out (no behaviour log-probabilities; queries read null)",
}
# papo columns the import derives itself (see `_episode`): a source's own values are not used.
DERIVED = (
    "episode_uid",
    "group_id",
    "group_member",
    "env_id",
    "policy_id",
    "init_seed",
    "policy_seed",
)
# The episodes-metadata columns the importer reads to find each episode's frames.
EPISODE_KEYS = ("episode_index", "length", "data/chunk_index", "data/file_index")
EPISODES_GLOB = schema.load("episodes").file_glob
FLOAT_DTYPES = ("float16", "float32", "float64")


@dataclass
class ImportReport:
    """What an import took, derived and left out; `problems` non-empty means our own output
    failed validation (a bug), and nothing was written."""

    source: str
    dataset: str
    episodes: int = 0
    frames: int = 0
    tasks: int = 0
    groups: int = 0
    mapped: dict[str, str] = field(default_factory=dict)  # papo column -> source feature
    not_mapped: dict[str, str] = field(default_factory=dict)  # papo column -> default used
    not_imported: list[str] = field(default_factory=list)  # "name (why)"
    problems: list[str] = field(default_factory=list)

    @property
    def success_known(self) -> bool:
        return "next.success" in self.mapped

    def as_info(self) -> dict[str, Any]:
        """The `papo.imported` block of info.json."""
        return {
            "format": f"lerobot {lerobot.CODEBASE_VERSION}",
            "source": Path(self.source).resolve().name,  # no local path in a shared dataset
            "mapped": self.mapped,
            "not_mapped": self.not_mapped,
            "not_imported": self.not_imported,
            "success_known": self.success_known,
            "episode_uid": "<source folder name>/<source episode_index>",
            "group_id": "same task and bit-equal first observation.state",
        }

    def lines(self) -> list[str]:
        out = [
            f"imported {self.episodes} episodes ({self.frames} frames, {self.tasks} tasks, "
            f"{self.groups} groups) from {self.source} into {self.dataset}",
            "mapped: " + ", ".join(f"{k} <- {v}" for k, v in self.mapped.items()),
        ]
        for column, default in self.not_mapped.items():
            out.append(f"not mapped: {column} (no usable source feature): {default}")
        out += [f"not imported: {what}" for what in self.not_imported]
        return out


# -- reading the source ----------------------------------------------------------------------


@dataclass
class Source:
    root: Path
    name: str
    info: dict[str, Any]
    tasks: dict[int, str]
    episodes: pd.DataFrame  # EPISODE_KEYS, sorted by episode_index
    columns: dict[str, str]  # papo column -> source feature, for the features found
    dims: schema.Dims


def read_info(src: Path) -> dict[str, Any]:
    """`meta/info.json` of a v3.0 dataset with observation.state and action vectors."""
    path = src / lerobot.INFO_PATH
    where = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(f"{src}: not a LeRobot dataset (no {lerobot.INFO_PATH})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{where}: cannot be read ({first_line(e)})") from None
    with contextlib.suppress(json.JSONDecodeError):
        raw = json.loads(text)
        # Say what is wrong in the order a user fixes it: the version, then our two features.
        if isinstance(raw, dict) and raw.get("codebase_version") == lerobot.CODEBASE_VERSION:
            features = raw.get("features")
            if isinstance(features, dict):
                for name in REQUIRED:
                    _check_vector_feature(features, name, where)
    return lerobot.parse_info(text, where)


def _check_vector_feature(features: dict[str, Any], name: str, where: str) -> None:
    feat = features.get(name)
    if not isinstance(feat, dict):
        raise BadInput(
            f"{where}: feature {name} is missing (papo needs observation.state and action)"
        )
    shape = feat.get("shape")
    if (
        feat.get("dtype") not in FLOAT_DTYPES
        or not isinstance(shape, list)
        or len(shape) != 1
        or not isinstance(shape[0], int)
        or shape[0] < 1
    ):
        raise BadInput(
            f"{where}: feature {name} is {feat.get('dtype')} of shape {shape}, "
            "expected a fixed-length float vector (e.g. float32 of shape [7])"
        )


def read_tasks(src: Path) -> dict[int, str]:
    """task_index -> text, from tasks.parquet (LeRobot writes the text as the pandas index)."""
    path = src / lerobot.TASKS_PATH
    try:
        with readable_parquet(path):
            frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise BadInput(f"{path}: is missing (LeRobot v3 keeps the task texts there)") from None
    if "task" in frame.columns:
        frame = frame.set_index("task")
    if "task_index" not in frame.columns:
        raise BadInput(f"{path}: field task_index is missing")
    if not pd.api.types.is_string_dtype(frame.index) or frame.index.hasnans:
        raise BadInput(f"{path}: the task texts (the index, or a column 'task') are not all text")
    index = frame["task_index"]
    if not pd.api.types.is_integer_dtype(index):
        raise BadInput(f"{path}: field task_index has type {index.dtype}, expected integers")
    if index.duplicated().any():
        raise BadInput(f"{path}: task_index {index[index.duplicated()].iloc[0]} appears twice")
    return {int(i): str(t) for t, i in zip(frame.index, index, strict=True)}


def read_episodes(src: Path) -> tuple[pd.DataFrame, list[str]]:
    """The episodes metadata the import needs, and the names of all its other columns."""
    parts, others = [], []
    paths = sorted(src.glob(EPISODES_GLOB))
    if not paths:
        raise BadInput(f"{src / EPISODES_GLOB}: no episodes metadata file")
    for path in paths:
        with readable_parquet(path):
            names = pq.read_schema(path).names
            missing = [k for k in EPISODE_KEYS if k not in names]
            if missing:
                raise BadInput(f"{path}: field {missing[0]} is missing")
            parts.append(pq.read_table(path, columns=list(EPISODE_KEYS)).to_pandas())
        others += [n for n in names if n not in others]
    episodes = pd.concat(parts, ignore_index=True).sort_values("episode_index")
    for key in EPISODE_KEYS:  # a null turns a pandas column into floats
        if not pd.api.types.is_integer_dtype(episodes[key]):
            raise BadInput(f"{src / EPISODES_GLOB}: field {key} is not all integers")
    if (episodes["length"] < 1).any():
        e = episodes.loc[episodes["length"] < 1, "episode_index"].iloc[0]
        raise BadInput(f"{src / EPISODES_GLOB}: episode {e} has length < 1 (no frames)")
    dup = episodes["episode_index"].duplicated()
    if dup.any():
        twice = episodes.loc[dup, "episode_index"].iloc[0]
        raise BadInput(f"{src / EPISODES_GLOB}: episode_index {twice} appears twice")
    return episodes.reset_index(drop=True), others


def open_source(src: Path, report: ImportReport) -> Source:
    """Read and check the metadata; decide what maps to what; fill the report's mapping."""
    info = read_info(src)
    features: dict[str, Any] = info["features"]
    dims = {d: int(features[c]["shape"][0]) for d, c in DIMS_FROM.items()}
    steps = schema.load("steps")
    columns: dict[str, str] = {}
    for papo_col, candidates in SOURCE_FEATURES.items():
        found = [c for c in candidates if _fits(features.get(c), steps.column(papo_col), dims)]
        if found:
            columns[papo_col] = found[0]
        else:
            report.not_mapped[papo_col] = DEFAULTS[papo_col]
    if "policy.log_prob" in columns and not _any_value(src, columns["policy.log_prob"]):
        del columns["policy.log_prob"]  # null on every frame: as good as absent
        report.not_mapped["policy.log_prob"] = DEFAULTS["policy.log_prob"]
    report.mapped = dict(columns)
    episodes, episode_columns = read_episodes(src)
    _check_every_data_file_is_referenced(src, info, episodes)
    report.not_imported += _left_out(src, features, columns, episode_columns)
    return Source(
        root=src,
        name=src.resolve().name,
        info=info,
        tasks=read_tasks(src),
        episodes=episodes,
        columns=columns,
        dims=dims,
    )


def _any_value(src: Path, feature: str) -> bool:
    """Whether any frame of the data files holds a value of `feature` (reads that column)."""
    for path in sorted(src.glob(schema.load("steps").file_glob)):
        with readable_parquet(str(path)):
            if feature not in pq.read_schema(path).names:
                continue
            column = pq.read_table(path, columns=[feature]).column(0)
        if column.null_count < len(column):
            return True
    return False


def _check_every_data_file_is_referenced(
    src: Path, info: dict[str, Any], episodes: pd.DataFrame
) -> None:
    """Frames in a data file no episode points to would be lost: refuse instead."""
    pairs = episodes[["data/chunk_index", "data/file_index"]].drop_duplicates()
    referenced = {
        src / info["data_path"].format(chunk_index=c, file_index=f)
        for c, f in pairs.itertuples(index=False)
    }
    for path in sorted(src.glob(schema.load("steps").file_glob)):
        if path not in referenced:
            raise BadInput(
                f"{path}: no episode of the episodes metadata refers to this data "
                "file (its frames would be lost)"
            )


def _fits(feature: Any, column: schema.Column, dims: schema.Dims) -> bool:
    """Can this source feature fill this papo column (vector length, scalar, number)?"""
    if not isinstance(feature, dict):
        return False
    dtype, shape = feature.get("dtype"), feature.get("shape")
    if column.dim:
        return dtype in FLOAT_DTYPES and shape == [dims[column.dim]]
    number = dtype == "bool" or str(dtype).startswith(("int", "uint", "float"))
    return number and shape == [1]


def _left_out(
    src: Path, features: dict[str, Any], columns: dict[str, str], episode_columns: list[str]
) -> list[str]:
    """One "name (why)" per source feature, episodes-metadata column group or file that the
    import does not carry over."""
    # LeRobot's index, episode_index, frame_index, timestamp, task_index: the writer makes them.
    bookkeeping = set(schema.load("steps").names) - set(SOURCE_FEATURES) - set(DERIVED)
    used = set(columns.values())
    candidates = {c: papo for papo, cs in SOURCE_FEATURES.items() for c in cs}
    out = []
    for name, feat in features.items():
        dtype = feat.get("dtype") if isinstance(feat, dict) else None
        if name in DERIVED:
            out.append(f"{name} (papo derives its own)")
        elif name in used or name in bookkeeping:
            continue
        elif dtype in ("video", "image"):
            out.append(f"{name} ({dtype})")
        elif name in candidates and candidates[name] in columns:
            out.append(f"{name} ({columns[candidates[name]]} was mapped to {candidates[name]})")
        elif name in candidates:
            shape = feat.get("shape") if isinstance(feat, dict) else None
            out.append(f"{name} ({dtype} of shape {shape} does not fit {candidates[name]})")
        else:
            out.append(f"{name} (no papo column)")
    known = set(schema.load("episodes").names)  # the writer recomputes these
    source_stats: dict[str, list[str]] = {}
    for col in episode_columns:
        parts = col.split("/")
        if col in DERIVED:
            out.append(f"{col} (episodes metadata column; papo derives its own)")
        elif col in known:
            continue
        elif parts[0] == "stats" and len(parts) == 3:
            source_stats.setdefault(parts[1], []).append(parts[2])
        elif parts[0] == "videos" and len(parts) == 3 and parts[1] in features:
            continue  # part of the video feature, reported with it
        else:
            out.append(f"{col} (episodes metadata column)")
    for feature, names in source_stats.items():
        out.append(f"stats/{feature}/{{{','.join(names)}}} (papo computes its own statistics)")
    if (src / stats.STATS_PATH).exists():
        out.append(f"{stats.STATS_PATH} (papo computes its own statistics)")
    for table in schema.SIDECAR_TABLES:  # the source was itself a papo dataset
        if any(src.glob(schema.load(table).file_glob)):
            out.append(f"{table} (papo sidecar table: it refers to the source's episode_uids)")
    return out


# -- reading frames --------------------------------------------------------------------------


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def vectors(
    table: pa.Table, name: str, dim: int, where: str, *, nullable: bool = False
) -> np.ndarray:
    """A list column as a (rows, dim) float32 array, finite unless `nullable` (then a masked
    array whose null rows are masked); BadInput names the row of any defect."""
    col = table.column(name).combine_chunks()
    t = col.type
    if not (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)):
        raise BadInput(f"{where}: field {name} has type {t}, expected a list of {dim} floats")
    if not pa.types.is_floating(t.value_type):
        raise BadInput(f"{where}: field {name} holds {t.value_type}, expected floats")
    null = col.is_null().to_numpy(zero_copy_only=False)
    if null.any() and not nullable:
        raise BadInput(f"{where}: row {_first(null)}: field {name} is null")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    wrong = (lengths != dim) & ~null
    if wrong.any():
        row = _first(wrong)
        raise BadInput(f"{where}: row {row}: field {name} has {lengths[row]} values, not {dim}")
    values = np.full((len(col), dim), np.nan, dtype=np.float32)
    flat = pc.list_flatten(col.filter(pa.array(~null)))
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused below
        values[~null] = flat.to_numpy(zero_copy_only=False).reshape(-1, dim)
    bad = np.asarray(~np.isfinite(values).all(axis=1)) & ~null  # nulls inside a list: NaN too
    if bad.any():
        raise BadInput(f"{where}: row {_first(bad)}: field {name} is NaN or infinite (as float32)")
    if nullable:
        return np.ma.MaskedArray(values, mask=np.repeat(null[:, None], dim, axis=1))
    return values


def scalars(table: pa.Table, name: str, kind: str, where: str) -> np.ndarray:
    """A scalar column as `kind` ("float32", "int64" or "bool") values."""
    col = table.column(name).combine_chunks()
    t = col.type
    if col.null_count:
        row = _first(col.is_null().to_numpy(zero_copy_only=False))
        raise BadInput(f"{where}: row {row}: field {name} is null")
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
    if not numeric:
        raise BadInput(f"{where}: field {name} has type {t}, expected a number")
    values = col.to_numpy(zero_copy_only=False)
    if kind == "bool":
        if not pa.types.is_boolean(t):
            bad = (values != 0) & (values != 1)
            if bad.any():
                raise BadInput(f"{where}: row {_first(bad)}: field {name} is not 0/1 or a bool")
        return values.astype(bool)
    if kind == "int64":
        if not pa.types.is_integer(t):
            raise BadInput(f"{where}: field {name} has type {t}, expected integers")
        return values.astype(np.int64)
    values = values.astype(np.float32)
    if not np.isfinite(values).all():
        raise BadInput(f"{where}: row {_first(~np.isfinite(values))}: field {name} is not finite")
    return values


def read_data_file(src: Source, path: Path) -> tuple[dict[str, np.ndarray], str]:
    """One data file's frames in file order: the LeRobot index columns and the mapped ones."""
    where = str(path)
    wanted = ["episode_index", "frame_index", "task_index", *src.columns.values()]
    try:
        with readable_parquet(where):
            names = pq.read_schema(path).names
            # LeRobot refuses such a file too; importing it would drop the column silently
            # (an undeclared `next.reward` became 0 on every frame).
            undeclared = [c for c in names if c not in src.info["features"]]
            if undeclared:
                raise BadInput(
                    f"{where}: column {undeclared[0]} is not declared in meta/info.json "
                    "features (LeRobot refuses undeclared columns); declare it or drop it"
                )
            missing = [c for c in wanted if c not in names]
            if missing:
                raise BadInput(f"{where}: field {missing[0]} is not a column of this file")
            table = pq.read_table(path, columns=wanted)
    except FileNotFoundError:
        raise BadInput(f"{where}: is missing (the episodes metadata names it)") from None
    values: dict[str, np.ndarray] = {}
    steps = schema.load("steps")
    for papo_col, feature in src.columns.items():
        col = steps.column(papo_col)
        if col.dim:
            dim = src.dims[col.dim]
            values[papo_col] = vectors(table, feature, dim, where, nullable=col.nullable)
        else:
            values[papo_col] = scalars(table, feature, col.type, where)
    for key in ("episode_index", "frame_index", "task_index"):
        values[key] = scalars(table, key, "int64", where)
    return values, where


def episodes_of_file(
    src: Source, path: Path, episodes: pd.DataFrame
) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """(source episode_index, task_index, per-frame arrays) of the file's episodes, in order."""
    values, where = read_data_file(src, path)
    order = np.lexsort((values["frame_index"], values["episode_index"]))
    sorted_episode = values["episode_index"][order]
    stray = ~np.isin(values["episode_index"], episodes["episode_index"].to_numpy())
    if stray.any():
        row = _first(stray)
        raise BadInput(
            f"{where}: row {row}: episode_index {values['episode_index'][row]} is not one of "
            "this file's episodes in the episodes metadata"
        )
    for e, length in zip(episodes["episode_index"], episodes["length"], strict=True):
        lo, hi = np.searchsorted(sorted_episode, [e, e + 1])
        if hi - lo != length:
            raise BadInput(
                f"{where}: episode {e} has {hi - lo} frames, the episodes metadata says {length}"
            )
        rows = order[lo:hi]
        twice = np.flatnonzero(np.diff(values["frame_index"][rows]) == 0)
        if len(twice):
            row = rows[twice[0] + 1]
            raise BadInput(
                f"{where}: row {row}: frame_index {values['frame_index'][row]} of episode {e} "
                "appears twice"
            )
        task = int(values["task_index"][rows[0]])
        if task not in src.tasks:
            raise BadInput(
                f"{where}: row {rows[0]}: task_index {task} is not in {lerobot.TASKS_PATH}"
            )
        yield int(e), task, {k: v[rows] for k, v in values.items()}


# -- writing ---------------------------------------------------------------------------------


def _episode(
    src: Source, e: int, task: int, frames: dict[str, np.ndarray], group: tuple[str, int]
) -> Episode:
    n = len(frames["action"])
    return Episode(
        episode_uid=f"{src.name}/{e}",
        task=src.tasks[task],
        observation_state=frames["observation.state"],
        action=frames["action"],
        reward=frames.get("next.reward", np.zeros(n, dtype=np.float32)),
        success=frames.get("next.success", np.zeros(n, dtype=bool)),
        done=frames.get("next.done"),
        log_prob=_whole(frames.get("policy.log_prob")),
        group_id=group[0],
        group_member=group[1],
        env_id=f"lerobot/{src.name}",
        policy_id="unknown",
        init_seed=-1,
        policy_seed=-1,
    )


def _whole(values: np.ndarray | None) -> np.ndarray | None:
    """A nullable vector of one episode: its values if no frame is null, else None."""
    if values is None or np.ma.getmaskarray(values).any():
        return None
    return np.ma.getdata(values)


def group_of(src: Source, task: int, first_state: np.ndarray) -> str:
    """Same task and a bit-equal initial state: the same GRPO group (DESIGN §2)."""
    digest = hashlib.sha256(np.ascontiguousarray(first_state, np.float32).tobytes()).hexdigest()
    return f"lerobot/{src.name}/task-{task}/init-{digest[:12]}"


def _names(feature: dict[str, Any], dim: int, prefix: str) -> list[str]:
    """LeRobot names (a list, or {"motors": [...]}) when they fit, else prefix.0, prefix.1..."""
    names = feature.get("names")
    if isinstance(names, dict) and len(names) == 1:
        names = next(iter(names.values()))
    if isinstance(names, list) and len(names) == dim and all(isinstance(n, str) for n in names):
        return names
    return [f"{prefix}.{i}" for i in range(dim)]


def write_dataset(src: Source, out: Path, report: ImportReport, progress: Progress | None) -> None:
    features = src.info["features"]
    state, action = src.columns["observation.state"], src.columns["action"]
    members: dict[str, int] = {}
    retasked = [0, 0]  # episodes, frames whose task is not their episode's first
    partly_null = 0  # episodes whose policy.log_prob is null on some frames only
    advance = progress(len(src.episodes)) if progress else None
    # One commit per source data file: the writer rewrites its latest file on every flush.
    with DatasetWriter.create(
        out,
        fps=src.info["fps"],
        state_names=_names(features[state], src.dims["state_dim"], state),
        action_names=_names(features[action], src.dims["action_dim"], action),
        env=f"lerobot/{src.name}",
        robot_type=src.info.get("robot_type"),
        flush_every=1 << 62,
        log_probs="policy.log_prob" in src.columns,  # none (or all null): the column is left out
    ) as writer:
        files = src.episodes.groupby(["data/chunk_index", "data/file_index"], sort=True)
        for (chunk, file), episodes in files:
            path = src.root / src.info["data_path"].format(chunk_index=chunk, file_index=file)
            for e, task, frames in episodes_of_file(src, path, episodes):
                other = int((frames["task_index"] != task).sum())
                retasked = [retasked[0] + (other > 0), retasked[1] + other]
                if "policy.log_prob" in frames:
                    null = np.ma.getmaskarray(frames["policy.log_prob"]).any(axis=1)
                    partly_null += bool(null.any() and not null.all())
                group = group_of(src, task, frames["observation.state"][0])
                members[group] = members.get(group, -1) + 1
                writer.add_episode(_episode(src, e, task, frames, (group, members[group])))
                report.frames += len(frames["action"])
                if advance:
                    advance(1)
            writer.flush()
        report.episodes = len(src.episodes)
        report.tasks = len(writer.tasks)
        report.groups = len(members)
        if retasked[0]:
            report.not_imported.append(
                f"task_index of {retasked[1]} frames in {retasked[0]} episodes (papo keeps one "
                "task per episode: its first frame's)"
            )
        if partly_null:
            report.not_imported.append(
                f"policy.log_prob of {partly_null} episodes null on some frames only (kept "
                "null for the whole episode)"
            )
        writer.update_papo(imported=report.as_info())


# -- the whole import, atomically ------------------------------------------------------------


def _check_destination(src: Path, out: Path, overwrite: bool) -> None:
    s, o = src.resolve(), out.resolve()
    if s == o or s in o.parents or o in s.parents:
        raise BadInput(f"{out}: the dataset folder may not be, contain or lie inside {src}")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not overwrite:
        raise BadInput(f"{out}: exists and is not an empty folder (use --overwrite)")
    try:
        papo = json.loads((out / lerobot.INFO_PATH).read_text()).get("papo")
    except (OSError, ValueError, AttributeError):
        papo = None
    if not isinstance(papo, dict):
        raise BadInput(f"{out}: --overwrite only replaces a papo dataset, and this is not one")


def import_lerobot(
    src: str | Path, out: str | Path, *, overwrite: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Import the LeRobot v3.0 dataset at `src` as a papo dataset at `out`.

    The dataset is built in a hidden sibling folder, validated, then renamed into place: bad
    input (BadInput) or invalid output (`report.problems`) leave `out` as it was."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise BadInput(f"{src}: no such folder (a LeRobot dataset is a folder)")
    _check_destination(src, out, overwrite)
    report = ImportReport(source=str(src), dataset=str(out))
    if out.is_symlink():  # replace the folder it points to and keep the link
        out = out.resolve()
    source = open_source(src, report)
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    commit.remove_stale_siblings(out)  # of imports killed midway
    staging = commit.temp_name(out)
    try:
        write_dataset(source, staging, report, progress)
        report.problems = [str(p) for p in validate(staging)]
        if not report.problems:
            commit.replace_folder(staging, out)
            created = []
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for p in created:  # parents made for a dataset that was not written
            with contextlib.suppress(OSError):
                p.rmdir()
    return report
