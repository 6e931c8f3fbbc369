"""Table schemas, read from the JSON files under `schemas/` (the only copy of the contract)."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
TABLES = (
    "steps",
    "episodes",
    "tasks",
    "snapshots",
    "planning_actions",
    "branches",
    "causal",
    "weights",
)
SIDECAR_TABLES = TABLES[3:]

_SCALARS: dict[str, tuple[pa.DataType, str]] = {
    "int64": (pa.int64(), "BIGINT"),
    "int32": (pa.int32(), "INTEGER"),
    "float32": (pa.float32(), "FLOAT"),
    "bool": (pa.bool_(), "BOOLEAN"),
    "string": (pa.string(), "VARCHAR"),
    "binary": (pa.binary(), "BLOB"),
}
_LIST = re.compile(r"list<(\w+)>")
_VECTOR = re.compile(r"fixed_size_list<(\w+)>\[(\w+)\]")

Dims = dict[str, int]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    meaning: str
    range: tuple[float, float] | None = None
    """Closed interval every non-null value lies in, e.g. (0, 1) for probabilities."""
    values: tuple[str, ...] | None = None
    """The only values the column may hold, e.g. the arms of a branch."""
    optional: bool = False
    """A steps column a dataset may leave out, with its info.json feature (then it reads as
    null)."""

    @property
    def dim(self) -> str | None:
        """Name of the vector length (`state_dim`, `action_dim`) or None for non-vectors."""
        m = _VECTOR.fullmatch(self.type)
        return m.group(2) if m else None

    @property
    def is_float(self) -> bool:
        return self.type == "float32" or self.dim is not None

    def arrow_type(self, dims: Dims) -> pa.DataType:
        if self.type in _SCALARS:
            return _SCALARS[self.type][0]
        if m := _LIST.fullmatch(self.type):
            return pa.list_(_SCALARS[m.group(1)][0])
        if m := _VECTOR.fullmatch(self.type):
            return pa.list_(_SCALARS[m.group(1)][0], dims[m.group(2)])
        raise ValueError(f"unknown type {self.type!r} in schema of column {self.name}")

    def duckdb_type(self, dims: Dims) -> str:
        if self.type in _SCALARS:
            return _SCALARS[self.type][1]
        if m := _LIST.fullmatch(self.type):
            return _SCALARS[m.group(1)][1] + "[]"
        if m := _VECTOR.fullmatch(self.type):
            return f"{_SCALARS[m.group(1)][1]}[{dims[m.group(2)]}]"
        raise ValueError(f"unknown type {self.type!r} in schema of column {self.name}")


@dataclass(frozen=True)
class TableSchema:
    table: str
    schema_version: str
    description: str
    file_template: str
    file_glob: str
    order_by: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...]
    refers_to: str | None
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def held(self, features: dict[str, Any]) -> TableSchema:
        """The columns a dataset's files hold: optional ones only where info.json declares them."""
        kept = tuple(c for c in self.columns if not c.optional or c.name in features)
        return dataclasses.replace(self, columns=kept)

    def arrow_schema(self, dims: Dims) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.arrow_type(dims), nullable=c.nullable) for c in self.columns]
        )

    def empty(self, dims: Dims) -> pa.Table:
        return self.arrow_schema(dims).empty_table()


@cache
def load(table: str) -> TableSchema:
    """The schema of `table`, parsed from `schemas/<table>.json`."""
    raw = json.loads((SCHEMA_DIR / f"{table}.json").read_text())
    return TableSchema(
        table=raw["table"],
        schema_version=raw["schema_version"],
        description=raw["description"],
        file_template=raw["files"]["template"],
        file_glob=raw["files"]["glob"],
        order_by=tuple(raw["order_by"]),
        unique=tuple(tuple(k) for k in raw["unique"]),
        refers_to=raw.get("refers_to"),
        columns=tuple(
            Column(
                c["name"],
                c["type"],
                bool(c["nullable"]),
                c["meaning"],
                tuple(c["range"]) if "range" in c else None,
                tuple(c["values"]) if "values" in c else None,
                bool(c.get("optional", False)),
            )
            for c in raw["columns"]
        ),
    )


def reads_version(version: object) -> bool:
    """Whether this papo_data reads datasets of schema `version`: the same major version and
    no newer minor one (1.1.0, optional `policy.log_prob` and LeRobot statistics, still reads
    1.0.0 datasets; a 1.0 reader cannot read every 1.1 dataset)."""
    try:
        major, minor = (int(x) for x in str(version).split(".")[:2])
    except ValueError:
        return False
    ours = [int(x) for x in schema_version().split(".")[:2]]
    return major == ours[0] and minor <= ours[1]


def schema_version() -> str:
    """The dataset schema version; all tables share one version."""
    versions = {load(t).schema_version for t in TABLES}
    if len(versions) != 1:
        raise ValueError(f"schemas disagree on schema_version: {sorted(versions)}")
    return versions.pop()
