"""Bad input to the pipeline verbs, on a real Meta-World dataset run through the real CLI: exit
2, one line on stderr naming the file, row or field, and no output written or damaged.

The dataset-level rules themselves are tested one by one in test_validate_rules.py; here each
verb is shown to check what it reads before it reads or writes anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from papo_data.branches.run import BranchConfig, branch
from papo_data.causal.estimate import EstimateConfig, estimate
from papo_data.planning.segment import SegmentConfig, segment
from papo_data.sim.collect import CollectConfig, collect
from papo_data.train.bc import BCConfig, behaviour_clone
from papo_data.train.policy import save_checkpoint

PAPO = str(Path(sys.executable).with_name("papo"))
DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"


@pytest.fixture(scope="module")
def estimated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    path = root / "ds"
    collect(
        path,
        CollectConfig(tasks=("pick-place-v3",), groups=2, group_size=4, max_steps=80),
        workers=2,
    )
    segment(path, SegmentConfig())
    branch(path, BranchConfig(k=2, limit=2, interventions=("hold",)), workers=2)
    estimate(path, EstimateConfig(dowhy=False))
    result = behaviour_clone(path, BCConfig(epochs=1))
    save_checkpoint(root / "bc.pt", result.policy)
    return path


@pytest.fixture
def dataset(estimated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(estimated, tmp_path / "ds"))


def papo(*args: str | Path, cwd: Path | None = None) -> str:
    """Run the CLI, which must refuse: the one line it printed."""
    done = subprocess.run(
        [PAPO, *map(str, args)], capture_output=True, text=True, check=False, cwd=cwd
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    return lines[0]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def set_cell(rel: str, column: str, row: int, value: object) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        table = pq.read_table(root / rel)
        cells = table[column].to_pylist()
        cells[row] = value(cells[row]) if callable(value) else value
        i = table.column_names.index(column)
        table = table.set_column(i, column, pa.array(cells, table[column].type))
        pq.write_table(table, root / rel)

    return mutate


def duplicate_row(rel: str, row: int) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        table = pq.read_table(root / rel)
        pq.write_table(pa.concat_tables([table.slice(0, row + 1), table.slice(row)]), root / rel)

    return mutate


def drop_papo_block(root: Path) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    del info["papo"]
    (root / "meta/info.json").write_text(json.dumps(info))


def nan_action(cells: list[float]) -> list[float]:
    return [float("nan"), *cells[1:]]


CORRUPTIONS = {
    "nan_action": (set_cell(DATA, "action", 5, nan_action), f"{DATA}: row 5: field action"),
    "duplicate_step": (duplicate_row(DATA, 2), f"{DATA}: row 3: field index: duplicate"),
    "duplicate_episode": (
        duplicate_row(EPISODES, 1),
        f"{EPISODES}: row 2: field episode_index: duplicate",
    ),
    "no_episodes": (
        lambda root: shutil.rmtree(root / "meta/episodes"),
        "meta/episodes/chunk-*/file-*.parquet: no such files (the episodes table)",
    ),
    "no_papo_block": (drop_papo_block, "meta/info.json: field papo: is missing"),
}
VERBS = {
    "segment": ["segment"],
    "branch": ["branch", "--k", "2", "--limit", "1", "--interventions", "hold"],
    "estimate": ["estimate", "--no-dowhy"],
    "export-weights": ["export-weights"],
    "train --bc": ["train", "--out", "never.pt", "--epochs", "1", "--bc"],
}


@pytest.mark.parametrize(
    ("verb", "corruption"),
    [("segment", c) for c in CORRUPTIONS] + [(v, "nan_action") for v in VERBS if v != "segment"],
)
def test_every_reader_refuses_a_broken_dataset_and_writes_nothing(
    verb: str, corruption: str, dataset: Path, tmp_path: Path
) -> None:
    mutate, expected = CORRUPTIONS[corruption]
    mutate(dataset)
    before = files(dataset)
    line = papo(*VERBS[verb], dataset, cwd=tmp_path)
    assert expected in line, line
    assert files(dataset) == before
    assert not (tmp_path / "never.pt").exists()


@pytest.mark.parametrize(
    ("table", "column", "value", "verb", "expected"),
    [
        ("causal", "importance", float("nan"), "export-weights", "is NaN or infinite"),
        ("causal", "importance", 50.0, "export-weights", "is 50.0, outside [0, 1]"),
        ("causal", "pn", -0.5, "export-weights", "is -0.5, outside [0, 1]"),
        ("branches", "arm", "sideways", "estimate", "is sideways, expected one of factual"),
    ],
)
def test_a_sidecar_value_out_of_its_schema_is_refused(
    table: str, column: str, value: object, verb: str, expected: str, dataset: Path
) -> None:
    """Schemas carry ranges and allowed values; a NaN importance once became the largest
    weight, an unknown arm was silently left out of the counts."""
    part = next((dataset / "papo" / table).glob("*.parquet")).relative_to(dataset)
    set_cell(str(part), column, 0, value)(dataset)
    before = files(dataset)
    line = papo(verb, dataset, *(["--no-dowhy"] if verb == "estimate" else []))
    assert f"{part}: row 0: field {column}: {expected}" in line, line
    assert files(dataset) == before


def test_a_failed_amortize_keeps_the_previous_estimate(dataset: Path) -> None:
    """Two branched actions are too few for the amortised model: the command fails, and the
    causal rows and info.json it would have replaced are untouched."""
    before = files(dataset)
    line = papo("estimate", dataset, "--no-dowhy", "--interval", "exact", "--amortize")
    assert "--amortize: only" in line
    assert files(dataset) == before


@pytest.mark.parametrize(
    "args",
    [
        ["export-weights", "{ds}", "--out", "{file}/w.parquet"],
        ["export-weights", "{ds}", "--out", "{ds}"],
        ["report", "{ds}", "--out", "{file}/r.html"],
        ["publish", "{ds}", "--out", "{file}/hub"],
        ["import-lerobot", "{ds}", "{file}/imported"],
        ["train", "--bc", "{ds}", "--out", "{file}/bc.pt"],
        ["train", "--bc", "{ds}", "--out", "{tmp}"],
    ],
    ids=lambda a: " ".join(a[:1] + a[2:]),
)
def test_an_output_that_cannot_be_written_is_refused_first(
    args: list[str], dataset: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    before = files(dataset)
    line = papo(*(a.format(ds=dataset, file=a_file, tmp=tmp_path) for a in args))
    assert str(a_file) in line or str(dataset) in line or str(tmp_path) in line, line
    assert files(dataset) == before


def test_a_bad_training_config_leaves_no_run_folder(estimated: Path, tmp_path: Path) -> None:
    bc = estimated.parent / "bc.pt"
    for name, body, expected in [
        ("task", f'init = "{bc}"\ntasks = ["reach-v3"]\n', "'reach-v3' is unknown to the policy"),
        ("init", f'init = "{tmp_path / "none.pt"}"\n', "none.pt: no such checkpoint"),
    ]:
        config = tmp_path / f"{name}.toml"
        config.write_text(body)
        line = papo("train", "--config", config, "--run", tmp_path / f"run-{name}")
        assert expected in line, line
        assert not (tmp_path / f"run-{name}").exists()
    line = papo("train", "--config", tmp_path)
    assert str(tmp_path) in line and "directory" in line.lower(), line


def test_branch_without_snapshots_is_refused_before_it_starts(dataset: Path) -> None:
    shutil.rmtree(dataset / "papo/snapshots")
    shutil.rmtree(dataset / "papo/branches")
    line = papo("branch", dataset, "--k", "2", "--limit", "1")
    assert "has no checkpoint at or before frame" in line
    assert not (dataset / "papo/branches").exists()


def test_zero_epochs_is_not_the_default(estimated: Path, tmp_path: Path) -> None:
    line = papo("train", "--bc", estimated, "--out", tmp_path / "bc.pt", "--epochs", "0")
    assert "--epochs must be at least 1" in line


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("COPY (SELECT 1 AS task_index) TO '{ds}/meta/tasks.parquet'", "not COPY"),
        ("ATTACH '{tmp}/x.duckdb' AS x", "not ATTACH"),
        ("SELECT 1; CREATE TABLE t AS SELECT 1", "not CREATE"),
        ("", "the query is empty"),
    ],
)
def test_sql_only_reads(query: str, expected: str, dataset: Path, tmp_path: Path) -> None:
    """A query could otherwise overwrite the dataset's own files or write anywhere."""
    before = files(dataset)
    line = papo("sql", dataset, query.format(ds=dataset, tmp=tmp_path))
    assert expected in line, line
    assert files(dataset) == before
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["report", "{ds}", "--out", "{ds}/meta/info.json"],
        ["sql", "{ds}", "select 1", "--out", "{ds}/meta/tasks.parquet"],
        ["export-weights", "{ds}", "--out", "{ds}/data/chunk-000/file-000.parquet"],
    ],
    ids=lambda a: a[0],
)
def test_an_output_never_lands_in_the_dataset_it_reads(args: list[str], dataset: Path) -> None:
    before = files(dataset)
    line = papo(*(a.format(ds=dataset) for a in args))
    assert "inside the dataset's" in line, line
    assert files(dataset) == before


def test_offline_training_refuses_weights_of_another_step(estimated: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.parquet"
    papo_ok = subprocess.run(
        [PAPO, "export-weights", str(Path(shutil.copytree(estimated, tmp_path / "ds"))),
         "--out", str(weights)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert papo_ok.returncode == 0
    table = pq.read_table(weights)
    frames = table["frame_index"].to_pylist()
    frames[0] += 1  # as if exported from another dataset
    pq.write_table(table.set_column(2, "frame_index", pa.array(frames, pa.int64())), weights)
    bc = estimated.parent / "bc.pt"
    line = papo("train", "--offline", estimated, "--weights", weights, "--init", bc,
                "--behaviour", "init", "--out", tmp_path / "o.pt")  # fmt: skip
    assert "index 0: names" in line and "another dataset" in line, line
    assert not (tmp_path / "o.pt").exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("grpo = 3\n", "has no [grpo] table"),
        ("[grpoo]\nbeta = 1\n", "has no [grpo] table"),
        ("[grpo]\nlearning_rate = inf\n", "must be finite and > 0"),
    ],
)
def test_offline_grpo_config_is_checked(
    body: str, expected: str, estimated: Path, tmp_path: Path
) -> None:
    config = tmp_path / "g.toml"
    config.write_text(body)
    bc, out = estimated.parent / "bc.pt", tmp_path / "o.pt"
    line = papo("train", "--offline", estimated, "--init", bc, "--behaviour", "init",
                "--grpo-config", config, "--out", out)  # fmt: skip
    assert expected in line, line
    assert not (tmp_path / "o.pt").exists()


def test_an_online_run_folder_is_checked_before_it_is_made(estimated: Path, tmp_path: Path) -> None:
    bc = estimated.parent / "bc.pt"
    config = tmp_path / "c.toml"
    config.write_text(f'init = "{bc}"\niterations = 1\nmax_steps = -5\n')
    line = papo("train", "--config", config, "--run", tmp_path / "run")
    assert "max_steps must be at least 1" in line and not (tmp_path / "run").exists()
    config.write_text(f'init = "{bc}"\niterations = 1\n')
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    line = papo("train", "--config", config, "--run", tmp_path / "mine")
    assert "not empty and not a training run" in line
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_a_sidecar_folder_that_is_a_file_is_refused(dataset: Path) -> None:
    shutil.rmtree(dataset / "papo")
    (dataset / "papo").write_text("not a folder")
    assert "papo: is a file" in papo("validate", dataset)


def test_collect_refuses_a_bad_policy_before_creating_the_dataset(
    estimated: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    target = tmp_path / "new"
    line = papo("collect", target, "--tasks", "pick-place-v3", "--groups", "1",
                "--group-size", "1", "--max-steps", "20", "--policy", junk)  # fmt: skip
    assert f"{junk}: not a readable policy checkpoint" in line, line
    assert not target.exists()
    bc = Path(shutil.copy(estimated.parent / "bc.pt", tmp_path / "bc.pt"))  # pick-place only
    line = papo("collect", target, "--tasks", "reach-v3", "--groups", "1",
                "--group-size", "1", "--max-steps", "20", "--policy", bc)  # fmt: skip
    assert "task 'reach-v3' is unknown to the policy" in line, line
    assert not target.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bc", "{ds}", "--out", "{tmp}/x.pt", "--resume"], "--resume does not apply to --bc"),
        (["--bc", "{ds}", "--out", "{tmp}/x.pt", "--weights", "w.parquet"], "--weights does not"),
        (["--config", "c.toml", "--out", "{tmp}/x.pt"], "--out does not apply to --config"),
        (["--offline", "{ds}", "--bins", "64"], "--bins does not apply to --offline"),
    ],
)
def test_train_refuses_options_of_another_mode(
    args: list[str], expected: str, estimated: Path, tmp_path: Path
) -> None:
    line = papo("train", *(a.format(ds=estimated, tmp=tmp_path) for a in args))
    assert expected in line, line
    assert list(tmp_path.iterdir()) == []


def test_collect_never_skips_episodes_of_another_policy(estimated: Path, tmp_path: Path) -> None:
    """The episode uid names task, seed, group and member; an existing episode is only skipped
    when the same policy collected it."""
    dataset = Path(shutil.copytree(estimated, tmp_path / "ds"))
    before = files(dataset)
    line = papo("collect", dataset, "--tasks", "pick-place-v3", "--groups", "3",
                "--group-size", "4", "--max-steps", "80", "--noise", "0.05")  # fmt: skip
    assert "episode 'pick-place-v3/s0/g0/m0' was collected by policy expert-noisy(sigma=0.3" in line
    assert "not expert-noisy(sigma=0.05" in line, line
    assert files(dataset) == before


def test_offline_training_on_all_equal_outcomes_says_there_was_no_update(
    estimated: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "ds"  # 5 steps: every rollout fails
    collect(dataset, CollectConfig(tasks=("pick-place-v3",), groups=2, group_size=2, max_steps=5))
    done = subprocess.run(
        [PAPO, "train", "--offline", str(dataset), "--init", str(estimated.parent / "bc.pt"),
         "--behaviour", "init", "--out", str(tmp_path / "o.pt")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no update: every group's outcomes are equal" in done.stdout, done.stdout
    assert "nan" not in done.stdout
    assert done.stderr.strip().startswith("papo train: warning: 2 of 2 groups"), done.stderr


def test_the_python_api_takes_str_paths_and_names_a_wrong_argument(
    estimated: Path, dataset: Path, tmp_path: Path
) -> None:
    from papo_data.planning.figures import action_trace
    from papo_data.report import write_report
    from papo_data.train.policy import load_checkpoint
    from papo_data.weights.export import WeightsConfig, export_weights

    table = export_weights(str(dataset), WeightsConfig(), out=str(tmp_path / "w.parquet"))
    assert table.num_rows == pq.read_table(tmp_path / "w.parquet").num_rows > 0
    write_report(str(dataset), str(tmp_path / "r.html"))
    assert (tmp_path / "r.html").stat().st_size > 0
    assert load_checkpoint(str(estimated.parent / "bc.pt"))[1] == {}  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give an open dataset"):
        action_trace(str(dataset), "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"give a tuple of task names, e.g. \('pick-place-v3',\)"):
        collect(tmp_path / "new", CollectConfig(tasks="pick-place-v3"))  # type: ignore[arg-type]
    assert not (tmp_path / "new").exists()
