"""`papo sql DATASET QUERY`: run DuckDB SQL over the dataset's views."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from papo_data import open_dataset
from papo_data.data.commit import check_writable, write_atomic
from papo_data.data.dataset import Dataset
from papo_data.errors import BadInput
from papo_data.schema import TABLES

FORMATS = ("table", "csv", "json", "parquet")
READ_ONLY = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "sql",
        help="run a DuckDB SQL query over the dataset's tables",
        description=f"Run a DuckDB SQL query over the views {', '.join(TABLES)} and print the "
        "result as a table, or write it as csv, json or parquet. Example: papo sql DATASET "
        '"select task_index, avg(success::int) from episodes group by all"',
    )
    p.add_argument("dataset", help="dataset folder")
    p.add_argument("query", help="SQL query (DuckDB dialect)")
    p.add_argument(
        "--format", choices=FORMATS, help="output format (default: table, or the --out extension)"
    )
    p.add_argument(
        "--out", type=Path, help="write the result to this file (atomically) instead of stdout"
    )
    p.add_argument(
        "--max-rows",
        type=int,
        default=100,
        help="rows shown in table format, under a count of all (default 100; -1 shows all)",
    )
    p.set_defaults(handler=run)


def _flat(df: pl.DataFrame, *, nested: bool = False) -> pl.DataFrame:
    """Binary columns as hex text and, unless `nested`, list columns as JSON text (for csv)."""
    out = []
    for name, dtype in df.schema.items():
        col = df[name]
        if _is_vector(dtype) and not nested:  # vectorised: millions of rows
            number = pl.element().cast(pl.String).replace({"inf": "Infinity", "-inf": "-Infinity"})
            text = col.cast(pl.List(pl.Float64)).list.eval(number.fill_null("null"))
            col = pl.select(pl.format("[{}]", text.list.join(", ")).alias(name)).to_series()
        elif dtype.is_nested() and not nested:
            col = pl.Series(name, [None if v is None else json.dumps(v) for v in col.to_list()])
        elif dtype == pl.Binary:
            col = pl.Series(name, [None if v is None else v.hex() for v in col.to_list()])
        out.append(col)
    return pl.DataFrame(out)


def _is_vector(dtype: pl.DataType) -> bool:
    """A list or array of floats: JSON text is the numbers, so polars can write it."""
    return isinstance(dtype, (pl.Array, pl.List)) and dtype.inner.is_float()


def run(args: argparse.Namespace) -> int:
    if args.max_rows < 1 and args.max_rows != -1:
        raise BadInput(f"--max-rows must be at least 1 (or -1 for all), got {args.max_rows}")
    fmt = args.format
    if fmt is None:
        suffix = args.out.suffix.lstrip(".") if args.out else "table"
        fmt = "table" if suffix == "txt" else suffix
        if fmt not in FORMATS:
            raise BadInput(
                f"--out {args.out}: unknown extension; use .csv, .json, .parquet or .txt, "
                "or give --format"
            )
    if fmt == "parquet" and args.out is None:
        raise BadInput("--format parquet needs --out FILE")
    if args.out is not None:
        check_writable(args.out, dataset=Path(args.dataset))
    with open_dataset(args.dataset) as ds:
        _check_read_only(ds.con, args.query)
        # Streamed piece by piece (json aside): a result of millions of steps never sits in
        # memory whole, and a table shows its first rows while counting the rest.
        pieces = _pieces(ds, args.query)
        text = {"table": _table, "csv": _csv, "json": _json}.get(fmt)
        if args.out is None:
            assert text is not None
            text(pieces, sys.stdout, args.max_rows)
            return 0

        def write_file(tmp: Path) -> int:
            if text is None:
                return _parquet(pieces, tmp)
            with open(tmp, "w", newline="") as f:
                return text(pieces, f, args.max_rows)

        n = _write_atomic(args.out, write_file)
    print(f"wrote {n} rows to {args.out}")
    return 0


def _pieces(ds: Dataset, query: str) -> Iterator[pa.Table]:
    """The result in pieces; at least one, so an empty result still has its columns."""
    empty = True
    for piece in ds.arrow_batches(query):
        empty = False
        yield piece
    if empty:
        yield ds.arrow(query)


def _table(pieces: Iterator[pa.Table], out: TextIO, max_rows: int) -> int:
    head, n = [], 0
    for piece in pieces:
        if max_rows == -1 or n < max_rows:
            head.append(piece if max_rows == -1 else piece.slice(0, max_rows - n))
        n += piece.num_rows
    df = pl.from_arrow(pa.concat_tables(head))
    assert isinstance(df, pl.DataFrame)
    with pl.Config(
        tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=160,
        tbl_hide_dataframe_shape=True,
    ):  # fmt: skip
        out.write(f"{_count(n, 'row')}, {_count(df.width, 'column')}\n{df}\n")
    if n > len(df):
        out.write(
            f"showing the first {len(df)} of {n} rows (--max-rows -1 shows all; --out FILE "
            "writes them)\n"
        )
    return len(df)  # the rows written


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _csv(pieces: Iterator[pa.Table], out: TextIO, max_rows: int) -> int:
    n = 0
    for i, piece in enumerate(pieces):
        df = pl.from_arrow(piece)
        assert isinstance(df, pl.DataFrame)
        out.write(_flat(df).write_csv(include_header=i == 0))
        n += len(df)
    return n


def _json(pieces: Iterator[pa.Table], out: TextIO, max_rows: int) -> int:
    df = pl.from_arrow(pa.concat_tables(list(pieces)))  # one JSON array: written whole
    assert isinstance(df, pl.DataFrame)
    out.write(_flat(df, nested=True).write_json() + "\n")
    return len(df)


def _parquet(pieces: Iterator[pa.Table], tmp: Path) -> int:
    n, writer = 0, None
    try:
        for piece in pieces:
            if writer is None:
                writer = pq.ParquetWriter(tmp, piece.schema, compression="zstd")
            writer.write_table(piece)
            n += piece.num_rows
    finally:
        if writer is not None:
            writer.close()
    return n


def _check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """`papo sql` reads: a COPY, CREATE, ATTACH, INSTALL or SET could overwrite the dataset's
    own files, or reach the network. Parsed, not run, so nothing happens before the refusal."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as e:
        raise BadInput(f"query failed: {str(e).splitlines()[0]}") from None
    if not statements:
        raise BadInput("the query is empty")
    for statement in statements:
        if statement.type not in READ_ONLY:
            raise BadInput(
                f"papo sql runs read-only queries (SELECT, WITH, FROM, DESCRIBE, SUMMARIZE, "
                f"EXPLAIN), not {statement.type.name}; to save a result use --out FILE"
            )


def _write_atomic(out: Path, write: Callable[[Path], int]) -> int:
    try:
        return write_atomic(out, write)  # the file gets the umask's mode, as other outputs do
    except OSError as e:
        raise BadInput(f"{out}: cannot write ({e.strerror})") from None
