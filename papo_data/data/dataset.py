"""Reading a papo dataset: DuckDB views over its Parquet files, results as polars frames."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from papo_data import schema
from papo_data.data import commit, files, lerobot
from papo_data.data.sqlfiles import ident, literal, sql_text
from papo_data.errors import BadInput


def has_info(root: Path) -> bool:
    """Whether `root` has a meta/info.json, committed or in a journal still to be rolled forward
    (a first commit killed before its renames)."""
    info = root / lerobot.INFO_PATH
    return commit.overlay(root).readable(info).exists()


def check_root(root: Path) -> None:
    if not root.exists():
        raise BadInput(f"{root}: no such file or directory")
    if not root.is_dir():
        raise BadInput(f"{root}: not a directory (a dataset is a folder)")
    if not has_info(root):
        raise BadInput(f"{root}: not a papo dataset (no {lerobot.INFO_PATH})")
    for folder in ("data", "meta", "papo"):  # a file there would hide a table as empty
        if (root / folder).exists() and not (root / folder).is_dir():
            raise BadInput(f"{root / folder}: is a file; the dataset's {folder}/ is a folder")


class Dataset:
    """A papo dataset opened read-only. `sql()` sees the views named after the tables."""

    def __init__(self, root: str | Path, *, raw: bool = False):
        self.root = Path(root)
        check_root(self.root)
        self._raw = raw
        self._con: duckdb.DuckDBPyConnection | None = None
        self._load()

    def _load(self) -> None:
        self.view = commit.overlay(self.root)
        info_path = self.view.readable(self.root / lerobot.INFO_PATH)
        self.info: dict[str, Any] = lerobot.read_info(self.root, info_path)
        self.dims = lerobot.dims(self.info)
        self.files = {t: files.table_files(self.root, t, self.view) for t in schema.TABLES}

    def refresh(self) -> None:
        """See the dataset's latest commit (`sql` and `arrow` call this before each query, so a
        handle opened in one notebook cell sees what later cells' commands wrote)."""
        view = commit.overlay(self.root)
        now = {t: files.table_files(self.root, t, view) for t in schema.TABLES}
        if view == self.view and now == self.files:
            return
        self._load()
        if self._con is not None:
            for table in schema.TABLES:
                self._create_view(table)

    def held(self, table: str) -> schema.TableSchema:
        """The table's schema as this dataset's files hold it (optional columns it declares)."""
        return schema.load(table).held(self.info["features"])

    def check_files(self) -> None:
        """Raise BadInput on the first unreadable or non-conforming file (footers only: fast)."""
        for table in schema.TABLES:
            held = self.held(table)
            # an optional column info.json does not declare would read as null
            undeclared = set(schema.load(table).names) - set(held.names)
            for path in self.files[table]:
                actual, problems = files.read_footer(self.root, path, self.view)
                if actual is not None:
                    problems = files.check_columns(self.root, path, held, actual, self.dims)
                    problems += [
                        files.Problem(str(path.relative_to(self.root)), None, name,
                                      "column is not declared in meta/info.json features")
                        for name in sorted(undeclared & set(actual.names))
                    ]  # fmt: skip
                if problems:
                    raise BadInput(str(problems[0]))

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            # No DuckDB progress bar: stderr is for our own bar and the one-line error.
            self._con = duckdb.connect()
            # (In Jupyter without ipywidgets DuckDB refuses to change the setting: let it be.)
            with contextlib.suppress(duckdb.Error):
                self._con.execute("SET enable_progress_bar = false")
            for table in schema.TABLES:
                self._create_view(table)
        return self._con

    def _create_view(self, table: str) -> None:
        assert self._con is not None
        ts = schema.load(table)
        paths = [self.view.readable(p) for p in self.files[table]]
        if not paths:
            # An absent table is an empty view with the right schema.
            empty = ts.empty(self.dims)
            if self._raw:
                empty = empty.append_column("file_row_number", pa.array([], pa.int64()))
                empty = empty.append_column("filename", pa.array([], pa.string()))
            self._con.register(f"_empty_{table}", empty)
            self._con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM _empty_{table}")
            return
        held = self.held(table).names  # an optional column the files leave out reads as null
        columns = [
            f"CAST({ident(c.name) if c.name in held else 'NULL'} AS {c.duckdb_type(self.dims)}) "
            f"AS {ident(c.name)}"
            for c in ts.columns
        ]
        if self._raw:
            columns += ["filename", "file_row_number"]
        self._con.execute(
            sql_text(__file__, "view.sql").format(
                view=table,
                columns=", ".join(columns),
                files="[" + ", ".join(literal(str(p)) for p in paths) + "]",
                raw_options=", filename = true, file_row_number = true" if self._raw else "",
            )
        )

    def sql(self, query: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a query over the views; the result as a polars DataFrame. `params` fill
        `$name` placeholders."""
        return pl.from_arrow(self.arrow(query, params))  # type: ignore[return-value]

    def arrow(self, query: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run a query over the views; the result as a pyarrow Table (vectors stay fixed-size)."""
        self.refresh()
        try:
            rel = self.con.sql(query, params=params)
            if rel is None:
                return pa.table({})
            return _canonical(rel.to_arrow_table())
        except duckdb.Error as e:
            raise BadInput(f"query failed: {str(e).splitlines()[0]}") from None

    def arrow_batches(
        self, query: str, params: dict[str, Any] | None = None, rows: int = 122_880
    ) -> Iterator[pa.Table]:
        """Run a query over the views; the result in pieces of about `rows` rows, so a large
        result never sits in memory whole (vectors stay fixed-size)."""
        self.refresh()
        try:
            rel = self.con.sql(query, params=params)
            if rel is None:
                return
            reader = rel.to_arrow_reader(rows)
        except duckdb.Error as e:
            raise BadInput(f"query failed: {str(e).splitlines()[0]}") from None
        while True:
            try:  # a query can fail midway: the reader then raises DuckDB's error as OSError
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (duckdb.Error, OSError) as e:
                raise BadInput(f"query failed: {str(e).splitlines()[0]}") from None
            yield _canonical(pa.Table.from_batches([batch]))  # the consumer's errors are its own

    def table(self, name: str) -> pl.DataFrame:
        """A whole table in its schema order, e.g. `ds.table("episodes")`."""
        if name not in schema.TABLES:
            raise BadInput(f"unknown table {name!r}; tables: {', '.join(schema.TABLES)}")
        order = ", ".join(ident(c) for c in schema.load(name).order_by)
        return self.sql(f"SELECT * FROM {name} ORDER BY {order}")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Dataset({str(self.root)!r}, episodes={self.info['total_episodes']}, "
            f"frames={self.info['total_frames']}, tasks={self.info['total_tasks']})"
        )


def _canonical(table: pa.Table) -> pa.Table:
    """DuckDB names a vector's child field ""; pyarrow and LeRobot name it "item". A name twice
    (e.g. `episode_uid` of `steps JOIN episodes USING (episode_index)`) is refused: polars,
    Parquet readers and the Hub cannot tell the columns apart."""
    names = table.schema.names
    twice = [n for n in names if names.count(n) > 1]
    if twice:
        raise BadInput(
            f"query result: column {twice[0]!r} appears more than once; name the columns apart "
            "(AS) or join on it too (USING (..., " + twice[0] + "))"
        )
    fields = [
        f.with_type(pa.list_(f.type.value_type, f.type.list_size))
        if pa.types.is_fixed_size_list(f.type)
        else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def open_dataset(path: str | Path) -> Dataset:
    """Open a papo dataset for reading; `.sql(query)` returns a polars DataFrame."""
    ds = Dataset(path)
    ds.check_files()
    return ds
