"""Every notebook under notebooks/ runs top to bottom, and the outputs stored in it are the ones
its code makes.

The notebooks are stored with the outputs of a real run, so that they read well on GitHub. The
test executes a copy in a scratch folder and compares it with the stored file, cell by cell: the
printed text and the text of every result must be equal (integers exactly, decimals to a
relative 1e-3, so that another CPU's last float bits do not fail it), and a cell that stored a
figure must draw one. stderr is neither stored nor compared (progress bars and their timings
go there), nor are the pixels of figures. Every notebook collects its own small dataset (a few
seconds), so each one also runs on its own on a fresh machine.

After changing a notebook or the library, refresh the stored outputs with
`.venv/bin/python tests/test_notebooks.py [notebooks/NAME.ipynb ...]` (default: all of them).
"""

from __future__ import annotations

import copy
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; the slowest cell (branching) takes about 15 s


def execute(nb: nbformat.NotebookNode, scratch: Path) -> nbformat.NotebookNode:
    """Run a copy of `nb` in a fresh kernel whose working and temporary folders are `scratch`
    (the notebooks make their datasets under the temporary folder)."""
    ran = copy.deepcopy(nb)
    for cell in ran.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(scratch)  # inherited by the kernel process
    try:
        NotebookClient(
            ran,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            record_timing=False,
            coalesce_streams=True,  # one stdout block per cell, however the kernel flushed it
            resources={"metadata": {"path": str(scratch)}},
        ).execute()
    finally:
        if saved is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved
    return ran


def comparable(cell: nbformat.NotebookNode) -> tuple[str, list[tuple[str, Any]]]:
    """What a reader sees of a code cell, minus what legitimately changes between runs: all it
    printed to stdout, and the text of each result (and whether it is a figure)."""
    stdout = "".join(
        o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )
    shown: list[tuple[str, Any]] = []
    for out in cell.outputs:
        if out.output_type in ("execute_result", "display_data"):
            shown.append((out.data.get("text/plain"), "image/png" in out.data))
        elif out.output_type == "error":
            shown.append((f"{out.ename}: {out.evalue}", False))
    return stdout, shown


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
PADDING = re.compile(r"[ ─═]+")  # table padding widens and narrows with the digits


def same_text(a: str, b: str) -> bool:
    """Equal up to the last digits of decimals (integers, words and layout must match)."""
    if PADDING.sub(" ", NUMBER.sub("#", a)) != PADDING.sub(" ", NUMBER.sub("#", b)):
        return False
    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b), strict=True):
        decimal = any(c in x + y for c in ".eE")
        if x != y and not (decimal and math.isclose(float(x), float(y), rel_tol=1e-3)):
            return False
    return True


def same_outputs(
    old: tuple[str, list[tuple[str, Any]]], new: tuple[str, list[tuple[str, Any]]]
) -> bool:
    (old_out, old_shown), (new_out, new_shown) = old, new
    return (
        same_text(old_out, new_out)
        and len(old_shown) == len(new_shown)
        and all(
            figure == figure2 and same_text(text or "", text2 or "")
            for (text, figure), (text2, figure2) in zip(old_shown, new_shown, strict=True)
        )
    )


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_matches_its_stored_outputs(path: Path, tmp_path: Path) -> None:
    stored = nbformat.read(path, as_version=4)
    nbformat.validate(stored)
    cells = code_cells(stored)
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), (
        f"{path.name}: stored outputs are not from one top-to-bottom run; refresh them"
    )

    ran = execute(stored, tmp_path)

    errors = [o for c in code_cells(ran) for o in c.outputs if o.output_type == "error"]
    assert not errors
    for number, (old, new) in enumerate(zip(cells, code_cells(ran), strict=True), start=1):
        assert same_outputs(comparable(old), comparable(new)), (
            f"{path.name}: code cell {number} printed something else than what is stored; "
            f"refresh with: python tests/test_notebooks.py {path.relative_to(path.parents[1])}"
        )


def refresh(paths: list[Path]) -> None:
    """Execute each notebook and store it with its fresh outputs, minus stderr (progress bars,
    timings, local paths in warnings): a refresh without a change rewrites the same bytes."""
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as scratch:
            ran = execute(nb, Path(scratch))
        for cell in code_cells(ran):
            cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
        ran.metadata.pop("widgets", None)
        ran.metadata["language_info"] = {"name": "python"}  # no local version numbers
        nbformat.validate(ran)
        nbformat.write(ran, path)
        print(f"{path}: outputs refreshed")


if __name__ == "__main__":
    refresh([Path(p) for p in sys.argv[1:]] or NOTEBOOKS)
