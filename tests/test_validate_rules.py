"""Every rule of `papo validate` against a fixture that breaks it.

Each case copies a small valid dataset, breaks one thing with plain pyarrow / text edits (never
with our writer), then runs the CLI in-process: `validate` must exit 2 with one line naming the
file and field at fault, and neither `validate` nor `sql` may modify any file of the dataset.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from papo_data import DatasetWriter, Episode
from papo_data.cli import main
from papo_data.data.validate import check_tables, validate
from papo_data.errors import BadInput
from papo_data.schema import TABLES

INFO = "meta/info.json"
TASKS = "meta/tasks.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
DATA = "data/chunk-000/file-000.parquet"
PLANNING = "papo/planning_actions/part-000000.parquet"
WEIGHTS = "papo/weights/part-000000.parquet"
PATH = "<the path given to validate>"
CLI_ERROR = "papo validate: error: "  # how the CLI prefixes a problem found before validating
STATE_DIM, ACTION_DIM = 3, 4
N_EPISODES = 6

Mutation = Callable[[Path], "Path | None"]
Change = Callable[[pa.Table], pa.Table]
Rows = Callable[[pa.Table], Any]


# -- the valid dataset -------------------------------------------------------------------------
def _episodes(rng: np.random.Generator) -> list[Episode]:
    out = []
    for i in range(N_EPISODES):
        t = int(rng.integers(3, 9))
        success = np.zeros(t, dtype=bool)
        if i % 2 == 0:
            success[int(rng.integers(1, t)) :] = True
        out.append(
            Episode(
                episode_uid=f"ep-{i:03d}",
                task=("pick the cube", "open the drawer")[i % 2],
                observation_state=rng.normal(size=(t, STATE_DIM)),
                action=rng.uniform(-1, 1, size=(t, ACTION_DIM)),
                reward=success.astype(np.float32),
                success=success,
                group_id=f"g{i // 3}",
                group_member=i % 3,
                env_id="test/env-v0",
                policy_id="random",
                init_seed=i // 3,
                policy_seed=i,
            )
        )
    return out


def _planning_actions(lengths: list[int]) -> pa.Table:
    uids = [f"ep-{i:03d}" for i in range(len(lengths))]
    return pa.table(
        {
            "episode_uid": uids,
            "frame_index": pa.array([1] * len(uids), pa.int64()),
            "window": pa.array([2] * len(uids), pa.int32()),
            "variation_score": pa.array([1.5] * len(uids), pa.float32()),
            "outcome_score": pa.array([None] * len(uids), pa.float32()),
            "score": pa.array([1.5] * len(uids), pa.float32()),
            "rank": pa.array([1] * len(uids), pa.int32()),
            "detector": ["joint"] * len(uids),
        }
    )


def _weights(lengths: list[int]) -> pa.Table:
    n = sum(lengths)
    return pa.table(
        {
            "episode_uid": [f"ep-{i:03d}" for i, t in enumerate(lengths) for _ in range(t)],
            "episode_index": pa.array(np.repeat(np.arange(len(lengths)), lengths), pa.int64()),
            "frame_index": pa.array(np.concatenate([np.arange(t) for t in lengths]), pa.int64()),
            "index": pa.array(np.arange(n), pa.int64()),
            "weight": pa.array(np.ones(n), pa.float32()),
            "importance": pa.array(np.zeros(n), pa.float32()),
            "is_planning": pa.array(np.zeros(n, dtype=bool)),
            "run_id": ["r1"] * n,
        }
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "ds"
    episodes = _episodes(np.random.default_rng(7))
    lengths = [len(ep.action) for ep in episodes]
    writer = DatasetWriter.create(
        root,
        fps=10,
        state_names=["x", "y", "z"],
        action_names=["dx", "dy", "dz", "grip"],
        env="test",
    )
    with writer:
        for ep in episodes:
            writer.add_episode(ep)
        writer.write_sidecar("planning_actions", _planning_actions(lengths))
        writer.write_sidecar("weights", _weights(lengths))
    return root


@pytest.fixture
def dataset(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "ds"))


# -- running the CLI and watching the files ----------------------------------------------------
class Run(NamedTuple):
    rc: int
    out: str
    err: list[str]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    return Run(rc, out, err.splitlines())


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and folder under `root`: its bytes (None for folders) and its mtime."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


# -- mutations: plain pyarrow and text edits, never our writer ---------------------------------
def rewrite(rel: str, change: Change) -> Mutation:
    def mutate(root: Path) -> None:
        path = root / rel
        pq.write_table(change(pq.read_table(path)), path)

    return mutate


def edit_info(change: Callable[[dict[str, Any]], object]) -> Mutation:
    def mutate(root: Path) -> None:
        path = root / INFO
        info = json.loads(path.read_text())
        change(info)
        path.write_text(json.dumps(info, indent=2))

    return mutate


def write_bytes(rel: str, data: bytes) -> Mutation:
    def mutate(root: Path) -> None:
        (root / rel).write_bytes(data)

    return mutate


def truncate(rel: str) -> Mutation:
    def mutate(root: Path) -> None:
        data = (root / rel).read_bytes()
        (root / rel).write_bytes(data[: len(data) // 2])

    return mutate


def remove(rel: str) -> Mutation:
    def mutate(root: Path) -> None:
        (root / rel).unlink()

    return mutate


def elsewhere(rel: str) -> Mutation:
    """Validate `rel` inside the dataset instead of the dataset itself."""
    return lambda root: root / rel


def replace_with_folder(rel: str) -> Mutation:
    def mutate(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).mkdir()

    return mutate


# -- column changes ----------------------------------------------------------------------------
def put(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    """`table` with column `name` replaced; the field turns nullable if `values` holds nulls."""
    i = table.schema.get_field_index(name)
    field = table.schema.field(i).with_type(values.type)
    if values.null_count:
        field = field.with_nullable(True)
    return table.set_column(i, field, values)


def all_rows(table: pa.Table) -> slice:
    return slice(None)


def row(i: int) -> Rows:
    return lambda table: i


def last_rows(n: int) -> Rows:
    return lambda table: slice(len(table) - n, None)


def of_episode(episode: int) -> Rows:
    return lambda table: table["episode_index"].to_numpy() == episode


def shift(name: str, delta: float, rows: Rows = all_rows) -> Change:
    """Add `delta` to column `name` in `rows` (numbers keep their type)."""

    def change(table: pa.Table) -> pa.Table:
        values = table[name].to_numpy().copy()
        values[rows(table)] += delta
        return put(table, name, pa.array(values, table.schema.field(name).type))

    return change


def set_value(name: str, i: int, value: Any) -> Change:
    def change(table: pa.Table) -> pa.Table:
        values = table[name].to_pylist()
        values[i] = value
        return put(table, name, pa.array(values, table.schema.field(name).type))

    return change


def cast(name: str, type_: pa.DataType) -> Change:
    return lambda table: put(table, name, table[name].cast(type_))


def drop(name: str) -> Change:
    return lambda table: table.drop_columns([name])


def add_column(name: str) -> Change:
    return lambda table: table.append_column(name, pa.array(np.zeros(len(table), np.int64)))


def edit_vectors(name: str, change_matrix: Callable[[np.ndarray], np.ndarray]) -> Change:
    """Change a fixed_size_list column as a (rows, dim) matrix; the result stays fixed-size."""

    def change(table: pa.Table) -> pa.Table:
        column = table[name].combine_chunks()
        matrix = column.flatten().to_numpy().reshape(len(column), -1).copy()
        matrix = np.ascontiguousarray(change_matrix(matrix), dtype=np.float32)
        flat = pa.array(matrix.reshape(-1))
        return put(table, name, pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]))

    return change


def at(i: int, j: int, value: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(matrix: np.ndarray) -> np.ndarray:
        matrix[i, j] = value
        return matrix

    return change


def invert(name: str) -> Change:
    return lambda table: put(table, name, pc.invert(table[name]))


def swap_first_rows(table: pa.Table) -> pa.Table:
    return table.take([1, 0, *range(2, len(table))])


def duplicate_first_row(table: pa.Table) -> pa.Table:
    return pa.concat_tables([table, table.slice(0, 1)])


def drop_last_row(table: pa.Table) -> pa.Table:
    return table.slice(0, len(table) - 1)


def without_episode(episode: int) -> Change:
    return lambda table: table.filter(pc.not_equal(table["episode_index"], episode))


def fill(name: str, value: float) -> Change:
    return lambda table: put(table, name, pa.array(np.full(len(table), value), table[name].type))


def chain(*changes: Change) -> Change:
    def change(table: pa.Table) -> pa.Table:
        for c in changes:
            table = c(table)
        return table

    return change


def set_info(key: str, value: Any, *, under: str | None = None) -> Mutation:
    def change(info: dict[str, Any]) -> None:
        (info[under] if under else info)[key] = value

    return edit_info(change)


def pop_info(*keys: str) -> Mutation:
    def change(info: dict[str, Any]) -> None:
        for key in keys[:-1]:
            info = info[key]
        info.pop(keys[-1])

    return edit_info(change)


def features(column: str, key: str, value: Any) -> Mutation:
    return edit_info(lambda info: info["features"][column].__setitem__(key, value))


# -- the cases ---------------------------------------------------------------------------------
class Case(NamedTuple):
    id: str
    mutate: Mutation
    file: str  # the line must start with this file (PATH: the path given to validate)
    words: tuple[str, ...]  # ... and hold each of these
    bug: str | None = None  # a known package bug: the case is expected to fail


CASES = [
    # the dataset folder and meta/info.json
    Case("missing_path", elsewhere("no-such-folder"), PATH, ("no such file or directory",)),
    Case("not_a_dataset", elsewhere("data"), PATH, ("not a papo dataset", INFO)),
    Case("file_not_folder", elsewhere(INFO), PATH, ("not a directory",)),
    Case("info_not_json", write_bytes(INFO, b"{not json"), INFO, ("not valid JSON",)),
    Case("info_not_utf8", write_bytes(INFO, b"\xff\xfe{}"), INFO, ("not valid JSON",)),
    Case("info_not_object", write_bytes(INFO, b"[]"), INFO, ("expected a JSON object",)),
    Case("info_missing_fps", pop_info("fps"), INFO, ("field fps", "missing")),
    Case("info_fps_not_int", set_info("fps", "ten"), INFO, ("field fps", "integer")),
    Case("info_codebase", set_info("codebase_version", "v2.1"), INFO, ("codebase_version",)),
    Case(
        "info_total_frames",
        edit_info(lambda i: i.update(total_frames=i["total_frames"] + 1)),
        INFO,
        ("field total_frames", "the files hold"),
    ),
    Case("info_total_tasks", set_info("total_tasks", 5), INFO, ("field total_tasks", "hold 2")),
    Case(
        "info_feature_missing",
        pop_info("features", "next.reward"),
        INFO,
        ("features.next.reward", "is missing"),
    ),
    Case(
        "info_feature_dtype",
        features("next.done", "dtype", "int64"),
        INFO,
        ("features.next.done", "dtype"),
    ),
    Case(
        "info_feature_names",
        features("observation.state", "names", ["a"]),
        INFO,
        ("features.observation.state", "1 names"),
    ),
    Case(
        "info_vector_shape",
        pop_info("features", "action", "shape"),
        INFO,
        ("features.action.shape",),
    ),
    Case("info_papo_missing", pop_info("papo"), INFO, ("field papo", "missing")),
    Case(
        "info_schema_version",
        set_info("schema_version", "0.0.1", under="papo"),
        INFO,
        ("papo.schema_version",),
    ),
    Case(
        "info_state_names",
        set_info("state_names", ["x"], under="papo"),
        INFO,
        ("papo.state_names", "3 names"),
    ),
    Case("info_no_train_split", set_info("splits", {}), INFO, ("field splits", "no train split")),
    Case(
        "info_is_folder",
        replace_with_folder(INFO),
        INFO,
        ("info.json",),
    ),
    Case(
        "info_data_path_placeholder",
        set_info("data_path", "data/{episode_chunk:03d}/file-{file_index:03d}.parquet"),
        INFO,
        ("data_path",),
    ),
    Case(
        "info_feature_shape_not_list",
        features("next.reward", "shape", 1),
        INFO,
        ("features.next.reward", "shape"),
    ),
    Case(
        "info_fps_zero",
        set_info("fps", 0),
        INFO,
        ("field fps",),
    ),
    # steps: the data file
    Case("data_truncated", truncate(DATA), DATA, ("not a readable Parquet file",)),
    Case(
        "data_not_parquet",
        write_bytes(DATA, b"frame,action\n0,1\n"),
        DATA,
        ("not a readable Parquet file",),
    ),
    Case(
        "steps_missing_column",
        rewrite(DATA, drop("next.reward")),
        DATA,
        ("field next.reward", "column is missing"),
    ),
    Case(
        "steps_mistyped",
        rewrite(DATA, cast("frame_index", pa.float64())),
        DATA,
        ("field frame_index", "type is double, expected int64"),
    ),
    Case(
        "steps_vector_length",
        rewrite(DATA, edit_vectors("action", lambda m: m[:, :3])),
        DATA,
        ("field action", "[3], expected", "[4]"),
    ),
    Case(
        "steps_nan_action",
        rewrite(DATA, edit_vectors("action", at(4, 1, np.nan))),
        DATA,
        ("row 4", "field action", "NaN"),
    ),
    Case(
        "steps_inf_state",
        rewrite(DATA, edit_vectors("observation.state", at(2, 0, np.inf))),
        DATA,
        ("row 2", "field observation.state", "infinite"),
    ),
    Case(
        "steps_nan_reward",
        rewrite(DATA, shift("next.reward", np.nan, row(3))),
        DATA,
        ("row 3", "field next.reward", "NaN"),
    ),
    Case(
        "steps_nan_constant_column",
        rewrite(DATA, chain(fill("next.reward", 1.0), shift("next.reward", np.nan, row(3)))),
        DATA,
        ("row 3", "field next.reward", "NaN"),
    ),
    Case(
        "steps_null",
        rewrite(DATA, set_value("episode_uid", 5, None)),
        DATA,
        ("row 5", "field episode_uid", "is null"),
    ),
    Case(
        "steps_extra_column",
        rewrite(DATA, add_column("extra")),
        DATA,
        ("field extra", "not declared"),
    ),
    Case(
        "steps_index_gap",
        rewrite(DATA, shift("index", 1, last_rows(4))),
        DATA,
        ("field index", "numbering has a gap"),
    ),
    Case(
        "steps_duplicate_index",
        rewrite(DATA, set_value("index", 1, 0)),
        DATA,
        ("row 1", "field index", f"duplicate key (0,) (first seen in {DATA} row 0)"),
    ),
    Case("steps_unsorted", rewrite(DATA, swap_first_rows), DATA, ("field index", "not sorted")),
    Case(
        "steps_episode_missing",
        rewrite(DATA, without_episode(5)),
        EPISODES,
        ("row 5", "field episode_index", "has no frames"),
    ),
    Case(
        "steps_frame_start",
        rewrite(DATA, shift("frame_index", 1, of_episode(1))),
        DATA,
        ("field frame_index", "must start at 0"),
    ),
    Case(
        "steps_timestamp",
        rewrite(DATA, shift("timestamp", 0.5, row(3))),
        DATA,
        ("row 3", "field timestamp", "frame_index / fps"),
    ),
    Case(
        "steps_many_bad_timestamps",
        rewrite(DATA, shift("timestamp", 0.5)),
        DATA,
        ("field timestamp", "more rows like the above"),
    ),
    Case(
        "steps_unknown_task",
        rewrite(DATA, shift("task_index", 9)),
        DATA,
        ("field task_index", "not in meta/tasks.parquet"),
    ),
    # tasks
    Case("tasks_missing", remove(TASKS), TASKS, ("is missing",)),
    Case(
        "tasks_gap",
        rewrite(TASKS, shift("task_index", 1, row(1))),
        TASKS,
        ("field task_index", "gap"),
    ),
    # episodes
    Case(
        "episodes_duplicate_uid",
        rewrite(EPISODES, set_value("episode_uid", 1, "ep-000")),
        EPISODES,
        ("row 1", "field episode_uid", "duplicate key"),
    ),
    Case(
        "episodes_length",
        rewrite(EPISODES, shift("length", 1, row(2))),
        EPISODES,
        ("row 2", "field length", "steps hold"),
    ),
    Case(
        "episodes_from_index",
        rewrite(EPISODES, shift("dataset_from_index", 1, row(2))),
        EPISODES,
        ("row 2", "field dataset_from_index", "first frame"),
    ),
    Case(
        "episodes_to_index",
        rewrite(EPISODES, shift("dataset_to_index", -1, row(2))),
        EPISODES,
        ("row 2", "field dataset_to_index", "last frame"),
    ),
    Case(
        "episodes_file_index",
        rewrite(EPISODES, set_value("data/file_index", 0, 7)),
        EPISODES,
        ("row 0", "field data/file_index", "file-007.parquet"),
    ),
    Case(
        "episodes_uid_mismatch",
        rewrite(EPISODES, set_value("episode_uid", 0, "ep-zzz")),
        EPISODES,
        ("row 0", "field episode_uid", "steps say ep-000"),
    ),
    Case(
        "episodes_task_mismatch",
        rewrite(EPISODES, set_value("task_index", 0, 1)),
        EPISODES,
        ("row 0", "field task_index", "steps say 0"),
    ),
    Case(
        "episodes_success",
        rewrite(EPISODES, invert("success")),
        EPISODES,
        ("field success", "steps say"),
    ),
    Case(
        "episodes_return",
        rewrite(EPISODES, shift("return", 1.0, row(0))),
        EPISODES,
        ("row 0", "field return", "steps sum"),
    ),
    Case(
        "episodes_first_success",
        rewrite(EPISODES, set_value("first_success_frame", 1, 0)),
        EPISODES,
        ("row 1", "field first_success_frame", "steps say null"),
    ),
    Case(
        "episodes_tasks_text",
        rewrite(EPISODES, set_value("tasks", 0, ["fly"])),
        EPISODES,
        ("row 0", "field tasks", "does not hold"),
    ),
    Case(
        "episodes_null",
        rewrite(EPISODES, set_value("group_id", 0, None)),
        EPISODES,
        ("row 0", "field group_id", "is null"),
    ),
    Case(
        "episodes_row_missing",
        rewrite(EPISODES, drop_last_row),
        DATA,
        ("field episode_index", "no row in meta/episodes"),
    ),
    # sidecar tables
    Case(
        "planning_unknown_episode",
        rewrite(PLANNING, set_value("episode_uid", 0, "ghost")),
        PLANNING,
        ("row 0", "field episode_uid", "ghost", "not in meta/episodes"),
    ),
    Case(
        "planning_frame_beyond",
        rewrite(PLANNING, set_value("frame_index", 0, 99)),
        PLANNING,
        ("row 0", "field frame_index", "no frame 99"),
    ),
    Case(
        "planning_duplicate",
        rewrite(PLANNING, duplicate_first_row),
        PLANNING,
        ("field detector, episode_uid, frame_index", "duplicate key"),
    ),
    Case(
        "planning_mistyped",
        rewrite(PLANNING, cast("window", pa.int64())),
        PLANNING,
        ("field window", "type is int64, expected int32"),
    ),
    Case(
        "planning_nan",
        rewrite(PLANNING, shift("score", np.nan, row(0))),
        PLANNING,
        ("row 0", "field score", "NaN"),
    ),
    Case(
        "weights_index",
        rewrite(WEIGHTS, shift("index", 1000, row(0))),
        WEIGHTS,
        ("row 0", "field index", "but the step"),
    ),
    Case("weights_truncated", truncate(WEIGHTS), WEIGHTS, ("not a readable Parquet file",)),
    Case(
        "weights_filename_column",
        rewrite(WEIGHTS, add_column("filename")),
        WEIGHTS,
        ("filename",),
    ),
]


def _param(case: Case) -> Any:
    """A known package bug makes its case a strict xfail: fixing the bug turns it red."""
    bug = [pytest.mark.xfail(reason=f"package bug: {case.bug}", strict=True)] if case.bug else []
    return pytest.param(case, id=case.id, marks=bug)


# -- tests -------------------------------------------------------------------------------------
def test_pristine_is_valid(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(dataset)
    run = run_cli(capsys, "validate", str(dataset))
    assert (run.rc, run.err) == (0, []), run.err
    assert "valid" in run.out
    run = run_cli(capsys, "sql", str(dataset), "select count(*) as n from steps")
    assert run.rc == 0, run.err
    assert snapshot(dataset) == before


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_rule(case: Case, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = case.mutate(dataset) or dataset
    before = snapshot(dataset)

    run = run_cli(capsys, "validate", str(target))
    assert run.rc == 2, run.out + "\n".join(run.err)
    file = str(target) if case.file == PATH else case.file
    hits = [
        line
        for line in run.err
        if line.removeprefix(CLI_ERROR).startswith(f"{file}: ")
        and all(w in line for w in case.words)
    ]
    assert hits, f"no line starts with {file!r} and holds {case.words}:\n" + "\n".join(run.err)
    assert snapshot(dataset) == before, "validate modified the dataset"

    run = run_cli(capsys, "sql", str(target), "select count(*) from steps")
    assert run.rc in (0, 2), run.err
    if run.rc == 2:
        assert len(run.err) == 1, run.err
    assert snapshot(dataset) == before, "sql modified the dataset"


def test_console_script_nan_action(dataset: Path) -> None:
    case = next(c for c in CASES if c.id == "steps_nan_action")
    case.mutate(dataset)
    papo = Path(sys.executable).with_name("papo")
    proc = subprocess.run(
        [str(papo), "validate", str(dataset)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{DATA}: row 4: field action: is NaN or infinite" in proc.stderr.splitlines()


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_commands_refuse_what_validate_finds(case: Case, dataset: Path) -> None:
    """`check_tables`, which each command runs over the tables it reads before reading them
    (steps by one aggregate pass), refuses every broken dataset with a problem `validate`
    reports, and changes nothing."""
    target = case.mutate(dataset) or dataset
    before = snapshot(dataset)
    problems = [str(p) for p in validate(target)]
    if case.id == "episodes_file_index":  # LeRobot's pointer to the data file: not ours
        check_tables(target, TABLES)
        return
    with pytest.raises(BadInput) as refused:
        check_tables(target, TABLES)
    assert str(refused.value) in problems
    assert snapshot(dataset) == before


@pytest.mark.parametrize(
    ("version", "read"),
    [("1.0.0", True), ("1.1.0", True), ("1.1.7", True), ("1.2.0", False), ("2.0.0", False),
     ("0.9.0", False), ("one", False), (None, False)],
)  # fmt: skip
def test_older_minor_schema_versions_are_read_newer_ones_are_not(
    version: object, read: bool
) -> None:
    """1.1 added an optional column and LeRobot statistics: it reads 1.0 datasets, while a 1.0
    reader cannot read a 1.1 dataset that leaves policy.log_prob out."""
    from papo_data import schema

    assert schema.schema_version() == "1.1.0"
    assert schema.reads_version(version) is read
