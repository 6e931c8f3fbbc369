"""`papo publish`: the Hub layout of a real Meta-World dataset, loaded back with `datasets`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import yaml
from huggingface_hub import DatasetCard

import papo_data
from papo_data import open_dataset, schema
from papo_data.cli import main
from papo_data.data.commit import write_atomic_table
from papo_data.data.validate import validate
from papo_data.sim.collect import CollectConfig, collect

REPO_ID = "someone/papo-reach"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A collected dataset, and a copy taken through every stage (every table non-empty)."""
    base = tmp_path_factory.mktemp("publish")
    collected = base / "collected"
    cfg = CollectConfig(tasks=("reach-v3",), groups=2, group_size=4, max_steps=100, seed=0)
    collect(collected, cfg, workers=1)
    full = Path(shutil.copytree(collected, base / "full"))
    for argv in (
        ["segment", str(full)],
        ["branch", str(full), "--k", "2", "--limit", "2", "--workers", "1"],
        ["estimate", str(full), "--no-dowhy"],
        ["export-weights", str(full)],
    ):
        assert main(argv) == 0, argv
    assert all(row_counts(full).values())  # precondition of the full-pipeline test
    return {"collected": collected, "full": full}


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline Hugging Face libraries with every cache under tmp_path (nothing in ~/.cache)."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # datasets reads these variables once, at import: set its flags for this test too.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    return home / "datasets"


def row_counts(path: Path) -> dict[str, int]:
    with open_dataset(path) as ds:
        return {t: ds.sql(f"select count(*) as n from {t}")["n"][0] for t in schema.TABLES}


def load(out: Path, config: str, cache: Path) -> datasets.Dataset:
    return datasets.load_dataset(str(out), config, split="train", cache_dir=str(cache))


def card(out: Path) -> tuple[dict[str, Any], str]:
    """The parsed YAML header and the body of the published README.md."""
    text = (out / "README.md").read_text()
    empty, header, body = text.split("---\n", 2)
    assert empty == ""
    return yaml.safe_load(header), body


def publish(*argv: str) -> int:
    return main(["publish", *argv])


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_every_table_loads_offline_with_fixed_size_vectors(
    pipeline: dict[str, Path], tmp_path: Path, hf_cache: Path
) -> None:
    full = pipeline["full"]
    out = tmp_path / "hub" / "papo-reach"
    assert publish(str(full), "--out", str(out), "--repo-id", REPO_ID, "--license", "mit") == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["papo-reach"]  # no temp left

    meta, body = card(out)
    assert meta["license"] == "mit"
    assert meta["task_categories"] == ["robotics"]
    assert {"LeRobot", "papo", "robotics", "metaworld", "reach-v3"} <= set(meta["tags"])
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert list(configs) == list(schema.TABLES)
    assert configs["steps"]["default"] is True
    assert not any(c.get("default") for name, c in configs.items() if name != "steps")

    rows = row_counts(full)
    with open_dataset(full) as ds:
        dims = ds.dims
        actions = np.stack(ds.sql("select action from steps order by index")["action"].to_numpy())
        weights = ds.sql("select weight from weights order by run_id, index")["weight"].to_numpy()
    for table, config in configs.items():
        (files,) = config["data_files"]
        assert files["split"] == "train"
        published = {p.relative_to(out) for p in out.glob(files["path"])}
        assert published == {p.relative_to(full) for p in full.glob(files["path"])} != set()
        loaded = load(out, table, hf_cache)
        assert loaded.num_rows == rows[table], table
        assert set(schema.load(table).names) <= set(loaded.column_names), table
        for column in schema.load(table).columns:
            if column.dim:
                feature = loaded.features[column.name]
                assert feature.length == dims[column.dim], (table, column.name)
                assert feature.feature == datasets.Value("float32")
        if table == "steps":
            steps = loaded.with_format("numpy")[:]  # files hold rows in index order
            np.testing.assert_array_equal(steps["index"], np.arange(rows["steps"]))
            assert steps["action"].shape == (rows["steps"], dims["action_dim"])
            np.testing.assert_array_equal(steps["action"], actions)
        if table == "weights":
            np.testing.assert_array_equal(loaded.with_format("numpy")[:]["weight"], weights)

    # Still the same LeRobot v3 dataset with its papo sidecar.
    for rel in ("meta/info.json", "meta/tasks.parquet", "data/chunk-000/file-000.parquet"):
        assert (out / rel).read_bytes() == (full / rel).read_bytes(), rel
    assert validate(out) == []
    assert row_counts(out) == rows

    # The body documents every column and how the data was produced.
    for table in schema.TABLES:
        assert f"### {table}\n" in body
        for column in schema.load(table).columns:
            assert f"| `{column.name}` |" in body, (table, column.name)
    with open_dataset(full) as ds:
        facts = ds.sql(
            "select (select avg(success::int) from episodes) as rate, "
            "(select list(distinct detector) from planning_actions) as detectors, "
            "(select list(distinct intervention) from branches where arm <> 'replay') as ivs, "
            "(select list(distinct method) from causal) as methods, "
            "(select list(distinct run_id) from weights) as runs, "
            "(select list(distinct policy_id) from episodes) as policies"
        ).row(0, named=True)
    assert f"{100 * facts['rate']:.1f} %" in body
    assert f"{rows['episodes']} episodes ({rows['steps']} frames)" in body
    for key in ("detectors", "ivs", "methods", "runs", "policies"):
        for value in facts[key]:
            assert f"`{value}`" in body, (key, value)
    assert f"papo_data {papo_data.__version__}" in body
    assert "papo/snapshots/" in body
    assert f'load_dataset("{REPO_ID}", "steps"' in body

    parsed = DatasetCard.load(out / "README.md")  # a local file: no network
    assert parsed.data.license == "mit"
    assert [c["config_name"] for c in parsed.data.to_dict()["configs"]] == list(schema.TABLES)


def test_missing_or_empty_sidecar_tables_get_no_config(
    pipeline: dict[str, Path], tmp_path: Path, hf_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = Path(shutil.copytree(pipeline["collected"], tmp_path / "ds"))
    with open_dataset(src) as ds:
        dims = ds.dims
    # A zero-row file (which datasets cannot read) beside the absent tables.
    empty = schema.load("branches")
    write_atomic_table(empty.empty(dims), src / empty.file_template.format(part=0))
    assert validate(src) == []
    out = tmp_path / "out"
    assert publish(str(src), "--out", str(out)) == 0

    meta, body = card(out)
    rows = row_counts(src)
    declared = [c["config_name"] for c in meta["configs"]]
    assert declared == [t for t in schema.TABLES if rows[t]]
    assert set(schema.SIDECAR_TABLES) - set(declared) == {
        "planning_actions",
        "branches",
        "causal",
        "weights",
    }
    for table in declared:
        assert load(out, table, hf_cache).num_rows == rows[table], table
    for table in set(schema.TABLES) - set(declared):
        assert f"- `{table}`: empty (run `papo " in body
        assert f"### {table}\n" in body  # its columns are still documented
        with pytest.raises(ValueError, match=table):
            load(out, table, hf_cache)
    assert not (out / "papo" / "branches").exists()
    assert row_counts(out) == rows
    printed = capsys.readouterr().out
    assert "no configuration for weights" in printed


def run_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process, so Hugging Face settings read at import take `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    return subprocess.run(
        [sys.executable, "-m", "papo_data.cli", *argv],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_push_without_a_token_fails_before_building(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": "", "HF_HUB_OFFLINE": "1"}
    argv = ["publish", str(pipeline["full"]), "--out", str(out), "--push", "--repo-id", REPO_ID]
    r = run_cli(argv, env)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert "token" in line and "hf auth login" in line
    assert not out.exists()


def test_push_without_network_fails_with_one_line(
    pipeline: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    env = {
        "HF_HOME": str(tmp_path / "hf"),
        "HF_TOKEN": "hf_not_a_real_token",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # closed port: fails at once
    }
    argv = [
        "publish",
        str(pipeline["collected"]),
        "--out",
        str(out),
        "--push",
        "--repo-id",
        REPO_ID,
    ]
    r = run_cli(argv, env)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert REPO_ID in line and "failed" in line
    assert (out / "README.md").is_file()  # the folder was built before the push


def test_out_is_replaced_only_when_it_is_an_earlier_publish(
    pipeline: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collected, full = str(pipeline["collected"]), str(pipeline["full"])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert publish(collected, "--out", str(mine)) == 2
    assert "--overwrite" in one_line(capsys.readouterr().err)
    assert publish(collected, "--out", str(mine), "--overwrite") == 2
    assert "not an earlier papo publish" in one_line(capsys.readouterr().err)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]

    out = tmp_path / "out"
    out.mkdir()  # an empty folder is fine
    assert publish(collected, "--out", str(out)) == 0
    assert "weights" not in [c["config_name"] for c in card(out)[0]["configs"]]
    assert publish(full, "--out", str(out)) == 2
    one_line(capsys.readouterr().err)
    assert publish(full, "--out", str(out), "--overwrite") == 0
    assert [c["config_name"] for c in card(out)[0]["configs"]] == list(schema.TABLES)
    assert row_counts(out) == row_counts(pipeline["full"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]  # nothing left over


def test_bad_input_exits_2_with_one_line(
    pipeline: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    assert publish(str(nothing), "--out", str(out)) == 2
    assert "not a papo dataset" in one_line(capsys.readouterr().err)

    broken = Path(shutil.copytree(pipeline["collected"], tmp_path / "broken"))
    data = broken / "data" / "chunk-000" / "file-000.parquet"
    data.write_bytes(data.read_bytes()[:100])
    assert publish(str(broken), "--out", str(out)) == 2
    assert "data/chunk-000/file-000.parquet" in one_line(capsys.readouterr().err)

    collected = str(pipeline["collected"])
    for flags, expected in (
        (["--push"], "--repo-id"),
        (["--repo-id", "not a repo id!"], "--repo-id"),
        (["--license", "Free For All"], "--license"),
    ):
        assert publish(collected, "--out", str(out), *flags) == 2
        assert expected in one_line(capsys.readouterr().err)
    assert publish(collected, "--out", str(Path(collected) / "hub")) == 2
    assert "outside the dataset" in one_line(capsys.readouterr().err)
    assert not out.exists()
    assert not (Path(collected) / "hub").exists()
