"""Finding a table's committed files and checking their Parquet footers against the schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from papo_data import schema
from papo_data.data import commit
from papo_data.errors import BadInput

POLICY_DIR = "papo/policies"
"""Checkpoints of the trained policies that collected a dataset's episodes, `<sha>.pt`."""


@dataclass(frozen=True, order=True)
class Problem:
    """One validation finding; `str()` is the one line a user sees."""

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field {self.field}")
        return f"{': '.join(where)}: {self.message}"


def table_files(root: Path, table: str, view: commit.Overlay) -> list[Path]:
    """Committed files of `table`, sorted; staged files of a committed journal count too."""
    pattern = schema.load(table).file_glob
    finals = set(root.glob(pattern))
    finals |= {f for f in view.pending if f.match(str(root / pattern))}
    return sorted(finals - view.deleted)


def _same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Equal up to string/binary/list width, which other writers (polars) choose freely."""
    if actual == expected:
        return True
    if pa.types.is_string(expected):
        return pa.types.is_large_string(actual) or pa.types.is_string_view(actual)
    if pa.types.is_binary(expected):
        return pa.types.is_large_binary(actual) or pa.types.is_binary_view(actual)
    if pa.types.is_list(expected):
        return (pa.types.is_large_list(actual) or pa.types.is_list_view(actual)) and _same_type(
            actual.value_type, expected.value_type
        )
    return False


def describe(t: pa.DataType) -> str:
    if pa.types.is_fixed_size_list(t):
        return f"fixed_size_list<{t.value_type}>[{t.list_size}]"
    return str(t)


def first_line(e: Exception) -> str:
    """An exception's first line (Arrow's messages run on), or its type when it has none."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


@contextmanager
def readable_parquet(path: Path | str) -> Iterator[None]:
    """Reading `path` inside this block: a truncated or non-Parquet file is BadInput naming it.
    A missing file is left to the caller, which knows what the file should have been."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as e:
        raise BadInput(f"{path}: not a readable Parquet file ({first_line(e)})") from None


def read_footer(
    root: Path, path: Path, view: commit.Overlay
) -> tuple[pa.Schema | None, list[Problem]]:
    """The Arrow schema of a Parquet file, or a problem if it is truncated or not Parquet."""
    rel = str(path.relative_to(root))
    try:
        return pq.read_schema(view.readable(path)), []
    except (pa.ArrowInvalid, OSError) as e:
        return None, [Problem(rel, None, None, f"not a readable Parquet file ({first_line(e)})")]


def check_columns(
    root: Path, path: Path, table: schema.TableSchema, actual: pa.Schema, dims: schema.Dims
) -> list[Problem]:
    """Missing columns and mistyped columns (including wrong vector lengths)."""
    rel = str(path.relative_to(root))
    problems = []
    for col in table.columns:
        expected = col.arrow_type(dims)
        if col.name not in actual.names:
            problems.append(Problem(rel, None, col.name, "column is missing"))
        elif not _same_type(actual.field(col.name).type, expected):
            got = describe(actual.field(col.name).type)
            problems.append(
                Problem(rel, None, col.name, f"type is {got}, expected {describe(expected)}")
            )
    return problems
