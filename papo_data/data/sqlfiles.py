"""Load the `.sql` files kept next to the code that runs them."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def sql_text(module_file: str, name: str) -> str:
    """Text of `name` in the `sql/` folder beside `module_file`."""
    return (Path(module_file).resolve().parent / "sql" / name).read_text()


def ident(name: str) -> str:
    """A DuckDB identifier, quoted (column names like `observation.state` hold dots)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"
