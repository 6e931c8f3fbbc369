"""Writing a papo dataset: create it, append episodes, append or replace sidecar rows.

Every flush is one journaled commit (see `commit.py`): data file, episodes file, tasks and
`info.json` become visible together, metadata last, so a killed writer loses at most the
episodes it had not flushed and never leaves a half-written file behind.
"""

from __future__ import annotations

import json
from collections.abc import KeysView
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from papo_data import schema
from papo_data.data import commit, files, lerobot, stats
from papo_data.data.dataset import Dataset, check_root
from papo_data.errors import BadInput

MB = 1024 * 1024


class Known(NamedTuple):
    """What the writer keeps of each episode in the dataset or in its buffer."""

    policy_id: str
    length: int


@dataclass
class Episode:
    """One rollout as the simulator produced it; the writer derives everything else."""

    episode_uid: str
    task: str
    observation_state: np.ndarray  # (T, state_dim)
    action: np.ndarray  # (T, action_dim)
    reward: np.ndarray  # (T,)
    success: np.ndarray  # (T,) per-step success flags
    done: np.ndarray | None = None  # (T,); default: only the last step
    log_prob: np.ndarray | None = None  # (T, action_dim) behaviour log-probs
    group_id: str = ""
    group_member: int = 0
    env_id: str = ""
    policy_id: str = ""
    init_seed: int = 0
    policy_seed: int = 0


def _vectors(values: np.ndarray, dim: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, dim)


def _check_episode(ep: Episode, dims: schema.Dims) -> int:
    """Number of frames; BadInput names the episode, frame and field of any defect."""
    where = f"episode {ep.episode_uid!r}"
    if not ep.episode_uid:
        raise BadInput("episode: field episode_uid is empty")
    t = len(ep.action)
    if t == 0:
        raise BadInput(f"{where}: has no frames")
    arrays: dict[str, tuple[np.ndarray | None, tuple[int, ...]]] = {
        "observation.state": (ep.observation_state, (t, dims["state_dim"])),
        "action": (ep.action, (t, dims["action_dim"])),
        "next.reward": (ep.reward, (t,)),
        "next.success": (ep.success, (t,)),
        "next.done": (ep.done, (t,)),
        "policy.log_prob": (ep.log_prob, (t, dims["action_dim"])),
    }
    for name, (arr, shape) in arrays.items():
        if arr is None:
            continue
        if np.shape(arr) != shape:
            raise BadInput(f"{where}: field {name} has shape {np.shape(arr)}, expected {shape}")
        if name in ("observation.state", "action", "next.reward"):
            bad = ~np.isfinite(np.asarray(arr, dtype=np.float64))
            if bad.any():
                frame = int(np.argwhere(bad)[0][0])
                raise BadInput(f"{where}: frame {frame}: field {name} is NaN or infinite")
        if name in ("next.success", "next.done"):  # a flag: 0.7 or NaN must not become True
            flags = np.asarray(arr)
            bad = ~np.isin(flags, (0, 1)) if flags.dtype != bool else np.zeros(t, dtype=bool)
            if bad.any():
                frame = int(np.argwhere(bad)[0][0])
                raise BadInput(f"{where}: frame {frame}: field {name} is not a bool or 0/1")
    return t


def conform(rows: pa.Table | pl.DataFrame, table: str, dims: schema.Dims) -> pa.Table:
    """Rows as the table's exact Arrow schema, in schema order; BadInput names what is off."""
    ts = schema.load(table)
    tbl = rows.to_arrow() if isinstance(rows, pl.DataFrame) else rows
    if not isinstance(tbl, pa.Table):
        raise BadInput(
            f"{table}: rows must be a pyarrow Table or a polars DataFrame, got "
            f"{type(rows).__module__}.{type(rows).__name__}"
        )
    missing = [n for n in ts.names if n not in tbl.column_names]
    if missing:
        raise BadInput(f"{table}: field {missing[0]} is missing")
    target = ts.arrow_schema(dims)
    cols = []
    for f in target:
        try:
            cols.append(tbl.column(f.name).cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            got = files.describe(tbl.schema.field(f.name).type)
            raise BadInput(
                f"{table}: field {f.name} has type {got}, expected {files.describe(f.type)}"
            ) from None
        if not f.nullable and cols[-1].null_count:
            row = pc.index(pc.is_null(cols[-1]), True).as_py()
            raise BadInput(f"{table}: row {row}: field {f.name} is null")
    return pa.Table.from_arrays(cols, schema=target)


def _empty_or_uncommitted(root: Path) -> bool:
    """Whether `root` holds nothing, or nothing but what `create` makes before its first commit
    (meta/, the lock, hidden temp files): an earlier create killed midway. A committed journal
    would make it a dataset."""
    lock = Path(commit.LOCK)
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel not in (Path("meta"), lock) and not (
            rel.parts[0] == "meta" and commit.TMP_MARK in rel.name
        ):
            return False
    return True


class DatasetWriter:
    """Creates a dataset or appends to one. Use as a context manager so buffers are flushed."""

    def __init__(self, root: Path, *, flush_every: int = 64):
        self.root = root
        self.flush_every = flush_every
        self._lock = commit.writer_lock(root)
        self._lock.__enter__()
        try:
            self._load()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        self._buffer: list[Episode] = []
        self._sidecar_buffer: dict[str, list[pa.Table]] = {}
        # The first episodes decide whether the dataset holds behaviour log-probs (see create).
        self._decide_log_probs = self.info["total_episodes"] == 0

    def _load(self) -> None:
        root = self.root
        commit.roll_forward(root)
        commit.remove_stale_temps(root)
        ds = Dataset(root)
        ds.check_files()
        self.info = ds.info
        self.dims = ds.dims
        tasks = ds.table("tasks")
        self.tasks: dict[str, int] = dict(zip(tasks["task"], tasks["task_index"], strict=True))
        last = ds.sql(
            'SELECT "data/chunk_index", "data/file_index", "meta/episodes/chunk_index", '
            '"meta/episodes/file_index" FROM episodes ORDER BY episode_index DESC LIMIT 1'
        ).rows()
        self._last_data = (last[0][0], last[0][1]) if last else None
        self._last_meta = (last[0][2], last[0][3]) if last else None
        episodes = ds.sql("SELECT episode_uid, policy_id, length FROM episodes")
        # collect compares the policy with its own before it skips an episode it finds;
        # sidecar rows are checked against the length
        self.episodes: dict[str, Known] = {u: Known(p, n) for u, p, n in episodes.iter_rows()}
        ds.close()

    @property
    def episode_uids(self) -> KeysView[str]:
        """The uids of every episode in the dataset, buffered ones included."""
        return self.episodes.keys()

    # -- creating and opening -------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | Path,
        *,
        fps: int,
        state_names: list[str],
        action_names: list[str],
        env: str,
        robot_type: str | None = None,
        chunks_size: int = 1000,
        data_files_size_in_mb: int = 100,
        flush_every: int = 64,
        log_probs: bool | None = None,
    ) -> DatasetWriter:
        """Create an empty dataset at `root` (a new or empty folder) and open it for writing.
        `log_probs`: whether its episodes carry behaviour log-probs; False leaves the
        `policy.log_prob` column and feature out (LeRobot cannot batch a feature that is null).
        None: the first flush decides, out when none of its episodes has them."""
        root = Path(root)
        if root.exists() and not (root.is_dir() and _empty_or_uncommitted(root)):
            raise BadInput(f"{root}: exists and is not an empty folder")
        if root.exists():
            commit.remove_stale_temps(root)
        info = lerobot.new_info(
            fps=fps,
            state_names=list(state_names),
            action_names=list(action_names),
            env=env,
            robot_type=robot_type,
            chunks_size=chunks_size,
            data_files_size_in_mb=data_files_size_in_mb,
            log_probs=log_probs is not False,
        )
        try:
            (root / "meta").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BadInput(f"{root}: cannot create ({e.strerror})") from None
        txn = commit.Transaction(root)
        txn.stage_table(_tasks_table([]), root / lerobot.TASKS_PATH)
        txn.stage_text(json.dumps(info, indent=2), root / lerobot.INFO_PATH)
        txn.commit()
        writer = cls(root, flush_every=flush_every)
        writer._decide_log_probs = log_probs is None
        return writer

    @classmethod
    def open(cls, root: str | Path, *, flush_every: int = 64) -> DatasetWriter:
        """Open an existing dataset for appending."""
        check_root(Path(root))
        return cls(Path(root), flush_every=flush_every)

    # -- episodes -------------------------------------------------------------------------
    def add_episode(
        self, ep: Episode, sidecars: dict[str, pa.Table | pl.DataFrame] | None = None
    ) -> None:
        """Buffer one episode; it is committed at the next `flush()` (or every `flush_every`).
        `sidecars` rows that belong to it (e.g. its snapshots) are committed with it."""
        length = _check_episode(ep, self.dims)
        if ep.log_prob is not None and "policy.log_prob" not in self.info["features"]:
            raise BadInput(
                f"episode {ep.episode_uid!r}: field log_prob: this dataset holds no behaviour "
                "log-probs (its first episodes had none; to mix, create it with log_probs=True)"
            )
        if ep.episode_uid in self.episode_uids:
            raise BadInput(
                f"episode {ep.episode_uid!r}: field episode_uid is already in the dataset"
            )
        staged = {}
        for table, rows in (sidecars or {}).items():
            if table not in schema.SIDECAR_TABLES:
                raise BadInput(f"{table}: not a sidecar table")
            staged[table] = conform(rows, table, self.dims)
        for table, rows in staged.items():
            self._sidecar_buffer.setdefault(table, []).append(rows)
        self.episodes[ep.episode_uid] = Known(ep.policy_id, length)
        self._buffer.append(ep)
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Commit buffered episodes: data file, episodes file, tasks, then info.json."""
        if not self._buffer:
            return
        txn = commit.Transaction(self.root)
        try:
            after = self._stage_buffer(txn)
        except BaseException:
            txn.abort()
            raise
        txn.commit()
        self.info, self.tasks, self._last_data, self._last_meta = after
        self._decide_log_probs = False
        self._buffer.clear()
        self._sidecar_buffer.clear()

    def _stage_buffer(
        self, txn: commit.Transaction
    ) -> tuple[dict[str, Any], dict[str, int], tuple[int, int], tuple[int, int]]:
        """Stage the buffered episodes into `txn`; returns the writer state after the commit."""
        info = dict(self.info)
        if self._decide_log_probs and all(ep.log_prob is None for ep in self._buffer):
            info["features"] = {k: v for k, v in info["features"].items() if k != "policy.log_prob"}
        tasks = dict(self.tasks)
        for ep in self._buffer:
            tasks.setdefault(ep.task, len(tasks))
        steps = self._steps_table(self._buffer, tasks, info["features"])
        data_loc = self._stage_append(txn, "steps", steps, self._last_data)
        episodes = self._episodes_table(self._buffer, tasks, data_loc)
        before = self._dataset_stats(info)
        if before is not None:  # LeRobot's per-episode statistics ride along as extra columns
            per_episode = stats.episode_stats(steps, info["features"])
            for name in per_episode.column_names:
                episodes = episodes.append_column(name, per_episode.column(name))
            merged = stats.aggregate(before + stats.rows_to_stats(per_episode))
            txn.stage_text(stats.to_json(merged), self.root / stats.STATS_PATH)
        elif (self.root / stats.STATS_PATH).exists():
            txn.delete(self.root / stats.STATS_PATH)  # stale: better none than wrong ones
        meta_loc = self._stage_append(
            txn, "episodes", episodes, self._last_meta, meta=True, keep_stats=before is not None
        )
        if len(tasks) != len(self.tasks):
            txn.stage_table(_tasks_table(list(tasks)), self.root / lerobot.TASKS_PATH)
        info["total_episodes"] += len(self._buffer)
        info["total_frames"] += len(steps)
        info["total_tasks"] = len(tasks)
        info["splits"] = lerobot.splits(info["total_episodes"])
        for table, parts in self._sidecar_buffer.items():
            self._stage_sidecar(txn, table, pa.concat_tables(parts))
        txn.stage_text(json.dumps(info, indent=2), self.root / lerobot.INFO_PATH)
        return info, tasks, data_loc, meta_loc

    def _dataset_stats(self, info: dict[str, Any]) -> list[stats.Stats] | None:
        """The statistics to extend ([] for an empty dataset), or None when the dataset keeps
        none: written before papo kept them, or by an older papo since (stats.json then covers
        fewer frames than the dataset). Such a dataset gets no statistics rather than wrong or
        partial ones: LeRobot's tools fail on null per-episode statistics."""
        if info["total_episodes"] == 0:
            return []
        path = self.root / stats.STATS_PATH
        if not path.exists():
            return None
        kept = stats.from_json(path.read_text())
        covered = int(kept.get("index", {}).get("count", [-1])[0])
        return [kept] if covered == info["total_frames"] else None

    def _steps_table(
        self, eps: list[Episode], tasks: dict[str, int], features: dict[str, Any]
    ) -> pa.Table:
        lengths = np.array([len(ep.action) for ep in eps])
        first_index = self.info["total_frames"]
        first_episode = self.info["total_episodes"]
        frame_index = np.concatenate([np.arange(n) for n in lengths])
        s, a = self.dims["state_dim"], self.dims["action_dim"]

        def done(ep: Episode) -> np.ndarray:
            if ep.done is not None:
                return np.asarray(ep.done, dtype=bool)
            d = np.zeros(len(ep.action), dtype=bool)
            d[-1] = True
            return d

        log_prob: pa.Array
        if all(ep.log_prob is None for ep in eps):
            log_prob = pa.nulls(int(lengths.sum()), pa.list_(pa.float32(), a))
        else:
            chunks = [
                _vectors(ep.log_prob, a)
                if ep.log_prob is not None
                else pa.nulls(len(ep.action), pa.list_(pa.float32(), a))
                for ep in eps
            ]
            log_prob = pa.concat_arrays(chunks)
        columns = {
            "index": np.arange(first_index, first_index + lengths.sum(), dtype=np.int64),
            "episode_index": np.repeat(np.arange(len(eps)) + first_episode, lengths),
            "frame_index": frame_index,
            "timestamp": (frame_index / self.info["fps"]).astype(np.float32),
            "task_index": np.repeat([tasks[ep.task] for ep in eps], lengths),
            "observation.state": _vectors(np.concatenate([ep.observation_state for ep in eps]), s),
            "action": _vectors(np.concatenate([ep.action for ep in eps]), a),
            "next.reward": np.concatenate([ep.reward for ep in eps]).astype(np.float32),
            "next.done": np.concatenate([done(ep) for ep in eps]),
            "next.success": np.concatenate([np.asarray(ep.success, dtype=bool) for ep in eps]),
            "episode_uid": np.repeat([ep.episode_uid for ep in eps], lengths),
            "policy.log_prob": log_prob,
        }
        steps = conform(pa.table(columns), "steps", self.dims)
        return steps.select(schema.load("steps").held(features).names)

    def _episodes_table(
        self, eps: list[Episode], tasks: dict[str, int], data_loc: tuple[int, int]
    ) -> pa.Table:
        start = self.info["total_frames"]
        rows = []
        for i, ep in enumerate(eps):
            success = np.asarray(ep.success, dtype=bool)
            rows.append(
                {
                    "episode_index": self.info["total_episodes"] + i,
                    "tasks": [ep.task],
                    "length": len(ep.action),
                    "data/chunk_index": data_loc[0],
                    "data/file_index": data_loc[1],
                    "dataset_from_index": start,
                    "dataset_to_index": start + len(ep.action),
                    "meta/episodes/chunk_index": 0,  # set by _stage_append
                    "meta/episodes/file_index": 0,
                    "episode_uid": ep.episode_uid,
                    "task_index": tasks[ep.task],
                    "group_id": ep.group_id,
                    "group_member": ep.group_member,
                    "env_id": ep.env_id,
                    "policy_id": ep.policy_id,
                    "init_seed": ep.init_seed,
                    "policy_seed": ep.policy_seed,
                    "success": bool(success.any()),
                    "return": float(np.sum(np.asarray(ep.reward, dtype=np.float32))),
                    "first_success_frame": int(np.argmax(success)) if success.any() else None,
                }
            )
            start += len(ep.action)
        return conform(pa.Table.from_pylist(rows), "episodes", self.dims)

    def _stage_append(
        self,
        txn: commit.Transaction,
        table: str,
        rows: pa.Table,
        last: tuple[int, int] | None,
        *,
        meta: bool = False,
        keep_stats: bool = True,
    ) -> tuple[int, int]:
        """Append `rows` to the table's latest file, or roll over to a new file once the
        latest one reaches `data_files_size_in_mb` (LeRobot's rule). Returns (chunk, file)."""
        template = schema.load(table).file_template
        limit = self.info.get("data_files_size_in_mb", 100) * MB
        existing = None
        if last is None:
            loc = (0, 0)
        else:
            path = self.root / template.format(chunk_index=last[0], file_index=last[1])
            if path.stat().st_size < limit:
                loc, existing = last, path
            elif last[1] + 1 >= self.info["chunks_size"]:
                loc = (last[0] + 1, 0)
            else:
                loc = (last[0], last[1] + 1)
        if meta:
            n = len(rows)
            rows = rows.set_column(
                rows.schema.get_field_index("meta/episodes/chunk_index"),
                "meta/episodes/chunk_index",
                pa.array([loc[0]] * n, pa.int64()),
            ).set_column(
                rows.schema.get_field_index("meta/episodes/file_index"),
                "meta/episodes/file_index",
                pa.array([loc[1]] * n, pa.int64()),
            )
        if existing is not None:
            old = pq.read_table(existing)
            rows = pa.concat_tables([old, rows], promote_options="permissive")
        if not keep_stats:  # a dataset that keeps no statistics: no half-null stats/ columns either
            rows = rows.select([c for c in rows.column_names if not c.startswith("stats/")])
        final = self.root / template.format(chunk_index=loc[0], file_index=loc[1])
        txn.stage_table(rows, final)
        return loc

    def update_papo(self, **fields: Any) -> None:
        """Set fields of the `papo` block of info.json (e.g. how episodes end), in one commit."""
        self.flush()
        info = self._with_papo(fields)
        txn = commit.Transaction(self.root)
        txn.stage_text(json.dumps(info, indent=2), self.root / lerobot.INFO_PATH)
        txn.commit()
        self.info = info

    def _with_papo(self, fields: dict[str, Any]) -> dict[str, Any]:
        info = dict(self.info)
        info["papo"] = {**info.get("papo", {}), **fields}
        return info

    # -- sidecar tables -------------------------------------------------------------------
    def write_sidecar(
        self,
        table: str,
        rows: pa.Table | pl.DataFrame,
        *,
        replace: dict[str, Any] | None = None,
        papo: dict[str, Any] | None = None,
        texts: dict[str, str] | None = None,
    ) -> None:
        """Append rows to a `papo/` table in one commit; with `replace={"detector": "joint"}`
        the rows matching it are removed in the same commit (a rerun never duplicates; a list
        value matches any of its items). In the same commit, `papo={...}` sets these fields of
        info.json's `papo` block (the record of how the rows were made) and `texts` writes
        other files of the dataset (path relative to its root -> text), e.g. a report."""
        if table not in schema.SIDECAR_TABLES:
            raise BadInput(f"{table}: not a sidecar table ({', '.join(schema.SIDECAR_TABLES)})")
        self.flush()
        tbl = conform(rows, table, self.dims)
        self._check_refers(table, tbl)
        txn = commit.Transaction(self.root)
        parts = files.table_files(self.root, table, commit.overlay(self.root))
        if replace:
            for part in parts:
                old = pq.read_table(part)
                hit = np.ones(len(old), dtype=bool)
                for col, value in replace.items():
                    values = pa.array(value if isinstance(value, list) else [value])
                    hit &= np.asarray(pc.is_in(old.column(col), values).fill_null(False))
                if hit.all():
                    txn.delete(part)
                elif hit.any():
                    txn.stage_table(old.filter(pa.array(~hit)), part)
        self._stage_sidecar(txn, table, tbl)
        for rel, text in (texts or {}).items():
            txn.stage_text(text, self.root / rel)
        info = self._with_papo(papo) if papo else None
        if info is not None:
            txn.stage_text(json.dumps(info, indent=2), self.root / lerobot.INFO_PATH)
        txn.commit()
        if info is not None:
            self.info = info

    def _check_refers(self, table: str, rows: pa.Table) -> None:
        """Each row's episode is in the dataset and, where the table refers to a frame, the
        frame is one of the episode's (what `validate` checks, before anything is written)."""
        uids = pa.array(list(self.episodes), pa.string())
        at = pc.index_in(rows.column("episode_uid"), value_set=uids)
        if at.null_count:
            row = int(np.flatnonzero(np.asarray(at.is_null()))[0])
            uid = rows.column("episode_uid")[row].as_py()
            raise BadInput(f"{table}: row {row}: field episode_uid {uid!r} is not in episodes")
        if schema.load(table).refers_to != "frame":
            return
        lengths = np.fromiter((k.length for k in self.episodes.values()), np.int64)
        frame = np.asarray(rows.column("frame_index"))
        bad = np.flatnonzero((frame < 0) | (frame >= lengths[np.asarray(at)]))
        if len(bad):
            row = int(bad[0])
            uid = rows.column("episode_uid")[row].as_py()
            raise BadInput(
                f"{table}: row {row}: field frame_index {frame[row]} is outside episode {uid!r} "
                f"(frames 0..{lengths[np.asarray(at)[row]] - 1})"
            )

    def compact(self, table: str) -> None:
        """Rewrite a sidecar table's parts as one sorted part, in one commit (appending in
        batches leaves many small files; readers are faster on one)."""
        self.flush()
        parts = files.table_files(self.root, table, commit.overlay(self.root))
        if len(parts) <= 1:
            return
        rows = pa.concat_tables(conform(pq.read_table(p), table, self.dims) for p in parts)
        txn = commit.Transaction(self.root)
        for part in parts:
            txn.delete(part)
        ts = schema.load(table)
        rows = rows.sort_by([(c, "ascending") for c in ts.order_by])
        # A fresh part number: a reader never sees the old name with new contents.
        number = max(int(p.stem.split("-")[-1]) for p in parts) + 1
        txn.stage_table(rows, self.root / ts.file_template.format(part=number))
        txn.commit()

    def _stage_sidecar(self, txn: commit.Transaction, table: str, rows: pa.Table) -> None:
        """Stage rows as the table's next part file."""
        if not len(rows):
            return
        ts = schema.load(table)
        rows = rows.sort_by([(c, "ascending") for c in ts.order_by])
        staged = [f for _, f in txn.renames]
        parts = files.table_files(self.root, table, commit.overlay(self.root)) + staged
        number = max(
            (int(p.stem.split("-")[-1]) for p in parts if p.match(ts.file_glob)), default=-1
        )
        txn.stage_table(rows, self.root / ts.file_template.format(part=number + 1))

    # -- closing --------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._lock.__exit__(None, None, None)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tasks_table(tasks: list[str]) -> pa.Table:
    """LeRobot v3 `tasks.parquet`: column task_index, pandas index `task` (as LeRobot reads it)."""
    frame = pd.DataFrame(
        {"task_index": np.arange(len(tasks), dtype=np.int64)},
        index=pd.Index(tasks, name="task", dtype=object),
    )
    table = pa.Table.from_pandas(frame, preserve_index=True)
    target = schema.load("tasks").arrow_schema({})
    return table.select(target.names).cast(target.with_metadata(table.schema.metadata))
