"""The `papo` command surface: verbs, help, exit codes, sql output formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from papo_data import open_dataset
from papo_data.cli import main

DESIGN_VERBS = [
    "collect",
    "validate",
    "sql",
    "segment",
    "branch",
    "estimate",
    "export-weights",
    "train",
    "report",
    "publish",
    "import-lerobot",
    "demo",
]
PAPO = str(Path(sys.executable).with_name("papo"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PAPO, *args], capture_output=True, text=True, check=False)


def test_help_lists_every_verb_of_the_design() -> None:
    out = run("--help")
    assert out.returncode == 0
    for verb in DESIGN_VERBS:
        assert f"    {verb}" in out.stdout


@pytest.mark.parametrize("verb", DESIGN_VERBS)
def test_every_verb_explains_itself(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out) > 80


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sql", "/no/such/dataset", "select 1"], "/no/such/dataset: no such file or directory"),
        (["validate", "/no/such/dataset"], "/no/such/dataset: no such file or directory"),
        (["sql"], "the following arguments are required"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], out.stderr


def test_bad_query_is_one_line(small_dataset: Path) -> None:
    out = run("sql", str(small_dataset), "select nope from steps")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "nope" in out.stderr


def test_sql_prints_a_table(small_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", str(small_dataset), "select episode_uid, length from episodes"]) == 0
    out = capsys.readouterr().out
    assert "episode_uid" in out and "ep4" in out


def test_sql_table_shows_the_first_rows_and_counts_all(
    small_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q = "select index, episode_uid from steps order by index"
    with open_dataset(small_dataset) as ds:
        n = len(ds.sql(q))
    assert main(["sql", str(small_dataset), q, "--max-rows", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{n} rows, 2 columns\n")
    assert "│ 2 " in out and "│ 3 " not in out  # the first three, in order
    assert f"showing the first 3 of {n} rows" in out
    # A .txt file gets the same table as the screen, under the same --max-rows.
    txt = tmp_path / "head.txt"
    assert main(["sql", str(small_dataset), q, "--max-rows", "3", "--out", str(txt)]) == 0
    assert txt.read_text() == out
    assert f"wrote 3 rows to {txt}" in capsys.readouterr().out  # the rows the file holds
    assert main(["sql", str(small_dataset), q, "--max-rows", "-1"]) == 0
    out = capsys.readouterr().out
    assert f"│ {n - 1} " in out and "showing" not in out


def test_sql_formats(
    small_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q = "select episode_uid, action from steps where frame_index = 0 order by index"
    assert main(["sql", str(small_dataset), q, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "episode_uid,action" and len(lines) == 6
    assert main(["sql", str(small_dataset), q, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["episode_uid"] for r in rows] == [f"ep{i}" for i in range(5)]
    assert all(len(r["action"]) == 4 for r in rows)
    out = tmp_path / "result.parquet"
    assert main(["sql", str(small_dataset), q, "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.schema.field("action").type == pa.list_(pa.float32(), 4)
    assert table.num_rows == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "result.parquet"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the user writes


def test_sql_out_makes_missing_folders_and_refuses_what_it_cannot_write(
    small_dataset: Path, tmp_path: Path
) -> None:
    out = run("sql", str(small_dataset), "select 1 as one", "--out", str(tmp_path / "new/x.csv"))
    assert out.returncode == 0 and (tmp_path / "new/x.csv").read_text() == "one\n1\n"
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder.csv").mkdir()
    for bad, message in [
        (tmp_path / "a-file/x.csv", "is a file, not a folder"),
        (tmp_path / "x.xlsx", "unknown extension"),
        (tmp_path / "a-folder.csv", "exists and is not a file"),
    ]:
        out = run("sql", str(small_dataset), "select 1", "--out", str(bad))
        assert out.returncode == 2, out.stderr
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_sql_parquet_is_written_in_pieces_that_make_the_whole_result(
    small_dataset: Path, tmp_path: Path
) -> None:
    q = "select s.*, e.success from steps s join episodes e using (episode_index) order by index"
    with open_dataset(small_dataset) as ds:
        whole = ds.arrow(q)
        pieces = list(ds.arrow_batches(q, rows=3))
    assert len(pieces) > 1 and pa.concat_tables(pieces).equals(whole)
    assert main(["sql", str(small_dataset), q, "--out", str(tmp_path / "all.parquet")]) == 0
    assert pq.read_table(tmp_path / "all.parquet").equals(whole)
    empty = tmp_path / "none.parquet"
    q = "select s.*, e.success from steps s join episodes e using (episode_index) where false"
    assert main(["sql", str(small_dataset), q, "--out", str(empty)]) == 0
    assert pq.read_table(empty).schema.equals(whole.schema)


def test_sql_refuses_a_result_with_two_columns_of_one_name(
    small_dataset: Path, tmp_path: Path
) -> None:
    q = "select * from steps join episodes using (episode_index)"
    for out in ([], ["--out", str(tmp_path / "x.parquet")]):
        done = run("sql", str(small_dataset), q, *out)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "column 'task_index' appears more than once" in done.stderr
    assert not (tmp_path / "x.parquet").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_parquet_needs_out(small_dataset: Path) -> None:
    out = run("sql", str(small_dataset), "select 1", "--format", "parquet")
    assert out.returncode == 2 and "--out" in out.stderr


def test_demo_runs_the_whole_pipeline_and_says_where_everything_is(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    small = ["--groups", "2", "--group-size", "3", "--branch-k", "2", "--branch-limit", "2"]
    done = run("demo", "--out", str(out), *small, "--train-iterations", "1",
               "--train-max-steps", "40")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout and "success_rate" in done.stdout
    assert "causal rows (paired)" in done.stdout and "weights (" in done.stdout
    with open_dataset(out / "dataset") as ds:
        counts = ds.sql("select (select count(*) from weights) w, (select count(*) from steps) s")
    assert counts["w"][0] == counts["s"][0] > 0
    assert pl.read_parquet(out / "weights.parquet").height == counts["s"][0]
    assert pl.read_parquet(out / "run" / "metrics.parquet").height == 1
    report = (out / "report.html").read_text()
    assert "learning-curves" in report
    for name in ("dataset", "weights.parquet", "bc.pt", "run", "report.html"):
        assert str(out / name) in done.stdout  # the closing list says where each piece is
    again = run("demo", "--out", str(out))
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    refused = run("demo", "--out", str(tmp_path / "mine"), "--overwrite")
    assert refused.returncode == 2 and "earlier demo" in refused.stderr
    assert (tmp_path / "mine" / "notes.txt").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--branch-k", "0"], "--branch-k must be at least 1"),
        (["--branch-limit", "0"], "--branch-limit must be at least 1"),
        (["--train-max-steps", "0"], "--train-max-steps must be in [1, 500]"),
        (["--tasks", "bogus-v3"], "unknown task 'bogus-v3'"),
    ],
)
def test_demo_checks_every_option_before_it_starts(
    option: list[str], message: str, tmp_path: Path
) -> None:
    """A typo fails at once and leaves nothing behind, not even --overwrite's deletion."""
    earlier = tmp_path / "demo"
    (earlier / "dataset" / "meta").mkdir(parents=True)
    (earlier / "dataset" / "meta" / "info.json").write_text("{}")  # looks like an earlier demo
    out = run("demo", "--out", str(earlier), "--overwrite", *option)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and message in lines[0], out.stderr
    assert (earlier / "dataset" / "meta" / "info.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_sql_out_names_a_query_that_fails_midway(small_dataset: Path, tmp_path: Path) -> None:
    """The error comes after the first streamed piece (122,880 rows): still the query's own
    message, and no file."""
    q = "select case when i > 200000 then error('boom') else i end as x from range(300000) t(i)"
    for name in ("x.csv", "x.json", "x.txt", "x.parquet"):
        done = run("sql", str(small_dataset), q, "--out", str(tmp_path / name))
        assert done.returncode == 2 and "query failed: Invalid Input Error: boom" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
