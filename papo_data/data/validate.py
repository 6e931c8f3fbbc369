"""`papo validate`: every problem of a dataset, each naming its file, row and field.

File-level checks read Parquet footers only; row-level checks are SQL (one `.sql` file per rule
under `sql/checks/`) run by DuckDB over views that carry each row's file name and row number.
A table whose files are unreadable or mistyped skips its row-level checks (they would only
repeat the same fault), and so do the cross-table checks that need it.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from papo_data import schema
from papo_data.data import files, lerobot
from papo_data.data.dataset import Dataset
from papo_data.data.files import Problem
from papo_data.data.sqlfiles import ident, literal, sql_text
from papo_data.errors import BadInput

MAX_ROWS_PER_RULE = 20
RESERVED = ("filename", "file_row_number")  # the row-level views add these
INFO = lerobot.INFO_PATH


def validate(path: str | Path) -> list[Problem]:
    """All problems found in the dataset at `path`; an empty list means it is valid."""
    root = Path(path)
    try:
        ds = Dataset(root, raw=True)  # one view of the files for every check below
    except BadInput as e:
        return [_problem_from_message(str(e))]
    try:
        problems = _check_info(ds.info, ds.dims)
        broken: set[str] = set()
        for table in schema.TABLES:
            table_problems = _check_table_files(ds, table)
            if table_problems:
                broken.add(table)
            problems += table_problems
        problems += _check_rows(ds, broken)
    finally:
        ds.close()
    return list(dict.fromkeys(problems))  # in the order found: files first, then rules


def check_tables(
    path: str | Path, tables: Collection[str], columns: Collection[str] | None = None
) -> None:
    """BadInput naming the first problem of the `tables` a command reads, before it reads
    them: info.json, their files, and their rows by the rules `validate` runs. Steps (millions
    of rows) get one aggregate pass instead (`steps_quick.sql`; of the vectors, only the
    `columns` the command reads, default all, since reading a 39-d state costs seconds at 10M
    steps); the steps rules run only when that pass finds a fault, to name the row. Left to
    `validate`: the episodes' data/file_index pointers, which only LeRobot readers follow.
    Sidecar tables the command is about to replace are not its input: leave them out."""
    with Dataset(Path(path), raw=True) as ds:
        problems = _check_info(ds.info, ds.dims)
        for table in tables:
            problems += _check_table_files(ds, table)
            if not ds.files[table] and table in ("steps", "episodes"):
                glob = schema.load(table).file_glob
                problems.append(Problem(glob, None, None, f"no such files (the {table} table)"))
        if not problems:
            steps_checked = "steps" in tables and _steps_look_valid(ds, columns)
            rows = set(tables)
            if "steps" in tables and not steps_checked:
                rows.add("episodes")  # the rules that name the fault may need it
            problems = _check_rows(ds, set(), rows, steps_checked)
    if problems:
        raise BadInput(str(problems[0]))


def _steps_look_valid(ds: Dataset, columns: Collection[str] | None) -> bool:
    """Whether `steps_quick.sql` finds no fault."""
    checks = []
    for c in schema.load("steps").columns:
        if c.dim and columns is not None and c.name not in columns:
            continue
        name, allowed = ident(c.name), str(c.nullable).lower()  # allowed: a nullable null
        if c.is_float and c.dim:  # DuckDB orders NaN above +inf: max and min catch it
            checks.append(
                f"coalesce(list_max({name}) < 'inf' AND list_min({name}) > '-inf', {allowed})"
            )
        elif c.is_float:
            checks.append(f"coalesce(isfinite({name}), {allowed})")
        elif not c.nullable:
            checks.append(f"{name} IS NOT NULL")
    checks.append(f"abs(timestamp - frame_index / {float(ds.info['fps'])}) <= 1e-4")
    query = sql_text(__file__, "checks/steps_quick.sql").format(row_ok=" AND ".join(checks))
    ((faults,),) = ds.con.sql(query).fetchall()
    return faults == 0


def _problem_from_message(message: str) -> Problem:
    file, _, rest = message.partition(": ")
    return Problem(file, None, None, rest or message)


def _check_info(info: dict[str, Any], dims: schema.Dims) -> list[Problem]:
    """info.json features must declare every steps column as LeRobot expects it."""
    problems = []
    feats = info["features"]
    for col in schema.load("steps").held(feats).columns:
        feat = feats.get(col.name)
        field = f"features.{col.name}"
        if not isinstance(feat, dict):
            problems.append(
                Problem(INFO, None, field, "is missing (every steps column is declared)")
            )
            continue
        shape = [dims[col.dim]] if col.dim else [1]
        if feat.get("dtype") != lerobot.lerobot_dtype(col):
            problems.append(
                Problem(
                    INFO,
                    None,
                    field,
                    f"dtype is {feat.get('dtype')!r}, expected {lerobot.lerobot_dtype(col)!r}",
                )
            )
        if feat.get("shape") != shape:
            problems.append(
                Problem(INFO, None, field, f"shape is {feat.get('shape')}, expected {shape}")
            )
        names = feat.get("names")
        if isinstance(names, list) and len(names) != shape[0] and feat.get("shape") == shape:
            problems.append(Problem(INFO, None, field, f"has {len(names)} names for shape {shape}"))
    papo = info.get("papo")
    if not isinstance(papo, dict):
        return [*problems, Problem(INFO, None, "papo", "is missing (schema_version, env, names)")]
    if not schema.reads_version(papo.get("schema_version")):
        problems.append(
            Problem(
                INFO,
                None,
                "papo.schema_version",
                f"is {papo.get('schema_version')!r}, "
                f"this papo_data reads {schema.schema_version()!r}",
            )
        )
    for key, dim in (("state_names", "state_dim"), ("action_names", "action_dim")):
        names = papo.get(key)
        if not isinstance(names, list) or len(names) != dims[dim]:
            problems.append(Problem(INFO, None, f"papo.{key}", f"must list {dims[dim]} names"))
    return problems


def _check_table_files(ds: Dataset, table: str) -> list[Problem]:
    root, paths = ds.root, ds.files[table]
    if table == "tasks" and not paths:
        return [Problem(lerobot.TASKS_PATH, None, None, "is missing (LeRobot needs it)")]
    problems = []
    ts = ds.held(table)
    for path in paths:
        actual, found = files.read_footer(root, path, ds.view)
        if actual is not None:
            found = files.check_columns(root, path, ts, actual, ds.dims)
            found += [
                Problem(str(path.relative_to(root)), None, c, "column name is reserved by papo")
                for c in actual.names
                if c in RESERVED
            ]
            if table == "steps":
                found += _check_declared(root, path, actual.names, ds.info)
        problems += found
    return problems


def _check_declared(
    root: Path, path: Path, columns: list[str], info: dict[str, Any]
) -> list[Problem]:
    """LeRobot refuses data columns that info.json does not declare, and the reverse."""
    rel = str(path.relative_to(root))
    feats = info["features"]
    out = [
        Problem(rel, None, c, f"column is not declared in {INFO} features")
        for c in columns
        if c not in feats
    ]
    stored = [
        k
        for k, f in feats.items()
        if isinstance(f, dict) and f.get("dtype") not in ("video", "image")
    ]
    out += [
        Problem(rel, None, k, f"declared in {INFO} features but not in the file")
        for k in stored
        if k not in columns
    ]
    return out


class _Rules:
    """Runs the SQL rules over views with file names and row numbers."""

    def __init__(self, ds: Dataset, broken: set[str]):
        self.ds = ds
        self.broken = broken
        self.problems: list[Problem] = []
        self.names = {
            str(ds.view.readable(p)): str(p.relative_to(ds.root))
            for t in schema.TABLES
            for p in ds.files[t]
        }

    def relative(self, message: str) -> str:
        """Messages that quote another file name it relative to the dataset."""
        for absolute, relative in self.names.items():
            message = message.replace(absolute, relative)
        return message

    def ok(self, *tables: str) -> bool:
        return not self.broken.intersection(tables)

    def rows(self, rule: str, **params: Any) -> list[tuple[Any, ...]]:
        query = sql_text(__file__, f"checks/{rule}.sql").format(**params)
        return self.ds.con.sql(query).fetchall()

    def run(self, rule: str, **params: Any) -> None:
        query = sql_text(__file__, f"checks/{rule}.sql").format(**params)
        rel = self.ds.con.sql(f"SELECT * FROM ({query}) ORDER BY 1, 2")
        rows = rel.limit(MAX_ROWS_PER_RULE + 1).fetchall()
        for filename, row, field, message in rows[:MAX_ROWS_PER_RULE]:
            self.problems.append(
                Problem(self.names.get(filename, filename), row, field, self.relative(message))
            )
        if len(rows) > MAX_ROWS_PER_RULE:
            ((total,),) = self.ds.con.sql(f"SELECT count(*) FROM ({query})").fetchall()
            more = total - MAX_ROWS_PER_RULE
            filename, _, field, message = rows[-1]
            self.problems.append(
                Problem(
                    self.names.get(filename, filename),
                    None,
                    field,
                    f"... and {more} more rows like the above ({rule})",
                )
            )


def _check_rows(
    ds: Dataset,
    broken: set[str],
    only: Collection[str] = schema.TABLES,
    steps_checked: bool = False,
) -> list[Problem]:
    """The row-level rules of the tables in `only` (a rule that spans tables runs when all of
    them are in `only`); `steps_checked`: skip the rules `steps_quick.sql` stands in for."""
    info = ds.info
    for table in broken:
        ds.files[table] = []  # an empty view; its rules are skipped below
    r = _Rules(ds, broken | set(schema.TABLES).difference(only))
    for table in schema.TABLES:
        if not r.ok(table) or (table == "steps" and steps_checked):
            continue
        ts = schema.load(table)
        for col in ts.columns:
            f = {"table": table, "field": ident(col.name), "field_literal": literal(col.name)}
            if not col.nullable:
                r.run("not_null", **f)
            if col.is_float:
                value = f"list_sum(CAST({f['field']} AS DOUBLE[]))" if col.dim else f["field"]
                r.run("not_finite", value=value, **f)
            if col.range:
                r.run("in_range", low=col.range[0], high=col.range[1], **f)
            if col.values:
                r.run(
                    "in_values",
                    values=", ".join(literal(v) for v in col.values),
                    values_literal=literal(", ".join(col.values)),
                    **f,
                )
        for key in ts.unique:
            r.run(
                "unique",
                table=table,
                key=", ".join(ident(k) for k in key),
                field_literal=literal(", ".join(key)),
            )
    numbering = [
        ("steps", "index", "1"),
        ("steps", "frame_index", "episode_index"),
        ("episodes", "episode_index", "1"),
        ("tasks", "task_index", "1"),
    ]
    for table, field, partition in numbering:
        if r.ok(table) and not (table == "steps" and steps_checked):
            r.run(
                "contiguous",
                table=table,
                field=ident(field),
                field_literal=literal(field),
                partition=partition,
            )
    if r.ok("steps") and not steps_checked:
        r.run("steps_order")
        r.run("steps_timestamp", fps=float(info["fps"]))
    if r.ok("steps", "episodes") and not steps_checked:
        r.run("episodes_vs_steps")
        _check_episode_files(r, info)
    if r.ok("steps", "episodes", "tasks"):
        r.run("tasks_ref")
        _check_totals(r, info)
    for table in schema.SIDECAR_TABLES:
        if not r.ok(table, "episodes"):
            continue
        r.run("refers_episode", table=table)
        if schema.load(table).refers_to == "frame":
            r.run("refers_frame", table=table)
    if r.ok("weights", "steps"):
        r.run("weights_index")
    return r.problems


def _check_episode_files(r: _Rules, info: dict[str, Any]) -> None:
    """data/chunk_index and data/file_index must name the one file holding the frames."""
    template = info["data_path"]
    for filename, row, episode, chunk, file, holders in r.rows("episode_files"):
        expected = template.format(chunk_index=chunk, file_index=file)
        found = sorted(r.names.get(h, h) for h in holders)
        if found != [expected]:
            r.problems.append(
                Problem(
                    r.names.get(filename, filename),
                    row,
                    "data/file_index",
                    f"episode {episode} points to {expected}, its frames are in {', '.join(found)}",
                )
            )


def _check_totals(r: _Rules, info: dict[str, Any]) -> None:
    (counts,) = r.rows("totals")
    for key, count in zip(("total_frames", "total_episodes", "total_tasks"), counts, strict=True):
        if info[key] != count:
            r.problems.append(Problem(INFO, None, key, f"is {info[key]}, the files hold {count}"))
    if info.get("splits") != lerobot.splits(info["total_episodes"]) and info["total_episodes"]:
        train = (
            info.get("splits", {}).get("train") if isinstance(info.get("splits"), dict) else None
        )
        if train is None:
            r.problems.append(Problem(INFO, None, "splits", "has no train split"))
