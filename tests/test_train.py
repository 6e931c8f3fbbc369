"""`papo train` on real Meta-World rollouts: cloning, the online loop and its resume, offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from papo_data.data.dataset import Dataset
from papo_data.errors import BadInput
from papo_data.train.policy import load_checkpoint

PAPO = str(Path(sys.executable).with_name("papo"))
TASK = "reach-v3"


def papo(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PAPO, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def cloned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policy cloned from two noise-free expert demos of reach-v3."""
    root = tmp_path_factory.mktemp("bc")
    demos = root / "demos"
    done = papo("collect", demos, "--tasks", TASK, "--groups", 2, "--group-size", 1,
                "--noise", 0, "--delay-prob", 0, "--max-steps", 60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = root / "bc.pt"
    done = papo("train", "--bc", demos, "--out", out, "--demos-per-task", 2, "--epochs", 40)
    assert done.returncode == 0, done.stderr
    assert "cloned 2 demos" in done.stdout
    return out


def _config(tmp: Path, init: Path, mode: str, iterations: int, **extra: object) -> Path:
    lines = [
        f'init = "{init}"',
        f'mode = "{mode}"',
        f"iterations = {iterations}",
        "groups_per_task = 2",
        "max_steps = 40",
        *(f"{k} = {v!r}".replace("'", '"') for k, v in extra.items()),
        "[grpo]",
        "group_size = 4",
        "mini_batch_episodes = 4",
        "[branch]",
        "k = 2",
        "limit = 3",
        'interventions = ["noise"]',
        "mixed_groups_only = false",  # runs this small often have no mixed group: branch anyway
    ]
    path = tmp / f"{mode}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_clone_then_collect_with_the_policy_and_branch_it(cloned: Path, tmp_path: Path) -> None:
    data = tmp_path / "rollouts"
    done = papo("collect", data, "--tasks", TASK, "--groups", 1, "--group-size", 3,
                "--policy", cloned, "--max-steps", 30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Dataset(data) as ds:
        episodes = ds.sql("SELECT policy_id FROM episodes").to_series().to_list()
        log_probs = ds.sql('SELECT "policy.log_prob" AS lp FROM steps')["lp"].to_list()
    assert all(p.startswith("torch(sha=") and f"task={TASK}" in p for p in episodes)
    assert all(x <= 0 for row in log_probs for x in row)  # log-probs of discrete tokens
    assert len(list((data / "papo" / "policies").glob("*.pt"))) == 1
    for verb in (["segment", data, "--top-m", 1], ["branch", data, "--k", 2, "--limit", 2,
                 "--interventions", "noise"], ["validate", data]):  # fmt: skip
        done = papo(*verb)
        assert done.returncode == 0, done.stderr
    with Dataset(data) as ds:
        exact = ds.sql("SELECT replay_exact FROM branches WHERE arm = 'replay'")
    assert exact.height == 2 and exact["replay_exact"].all()


def test_online_papo_loop_writes_metrics_datasets_and_checkpoints(
    cloned: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    done = papo("train", "--config", _config(tmp_path, cloned, "papo", 2), "--run", run)
    assert done.returncode == 0, done.stderr
    metrics = pq.read_table(run / "metrics.parquet").to_pylist()
    assert [m["iteration"] for m in metrics] == [0, 1]
    for m in metrics:
        assert m["episodes"] == 8 and 0 <= m["success_rate"] <= 1
        assert m["rollout_steps"] > 0 and m["branch_steps"] > 0 and m["time_branch"] > 0
        for key in ("clip_fraction", "approx_kl", "entropy", "zero_variance_share", "mean_weight"):
            assert key in m
    for it in ("0000", "0001"):
        assert papo("validate", run / "iterations" / it).returncode == 0
    _, extra = load_checkpoint(run / "checkpoints" / "last.pt")
    assert extra["iteration"] == 2 and "optimizer" in extra
    again = papo("train", "--config", _config(tmp_path, cloned, "papo", 2), "--run", run)
    assert again.returncode == 2 and "--resume" in again.stderr


def test_an_iteration_without_planning_actions_trains_with_unit_weights(
    cloned: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path, cloned, "papo", 1)
    with config.open("a") as f:
        f.write("[segment]\nthreshold = 1e9\n")  # no step scores this high: nothing to branch
    run = tmp_path / "run"
    done = papo("train", "--config", config, "--run", run)
    assert done.returncode == 0, done.stderr
    (m,) = pq.read_table(run / "metrics.parquet").to_pylist()
    assert m["planning_actions"] == 0 and m["branch_steps"] == 0 and m["mean_weight"] == 1.0


def _deterministic(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Everything but wall times, NaN as None (NaN != NaN)."""
    return [
        {k: None if v != v else v for k, v in r.items() if not k.startswith("time_")} for r in rows
    ]


def test_resume_after_sigkill_continues_from_the_last_checkpoint(
    cloned: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path, cloned, "grpo", 4)
    whole = tmp_path / "whole"
    assert papo("train", "--config", config, "--run", whole).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen([PAPO, "train", "--config", str(config), "--run", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    last = killed / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if last.exists() and load_checkpoint(last)[1]["iteration"] >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = load_checkpoint(last)[1]["iteration"]
    assert done_before < 4, "the run finished before it could be killed"

    resumed = papo("train", "--config", config, "--run", killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = pq.read_table(whole / "metrics.parquet").to_pylist()
    b = pq.read_table(killed / "metrics.parquet").to_pylist()
    assert [r["iteration"] for r in b] == [0, 1, 2, 3]
    assert _deterministic(a) == _deterministic(b)
    pa_, _ = load_checkpoint(whole / "checkpoints" / "last.pt")
    pb, _ = load_checkpoint(last)
    assert all(torch.equal(v, pb.state_dict()[k]) for k, v in pa_.state_dict().items())


def test_offline_training_from_exported_weights(cloned: Path, tmp_path: Path) -> None:
    data = tmp_path / "logged"
    steps = [
        ["collect", data, "--tasks", TASK, "--groups", 2, "--group-size", 4, "--policy", cloned,
         "--max-steps", 40],
        ["segment", data, "--top-m", 1],
        ["branch", data, "--k", 2, "--limit", 4, "--interventions", "noise"],
        ["estimate", data, "--no-dowhy"],
        ["export-weights", data, "--out", tmp_path / "w.parquet"],
    ]  # fmt: skip
    for verb in steps:
        done = papo(*verb)
        assert done.returncode == 0, done.stderr
    out = tmp_path / "offline.pt"
    done = papo("train", "--offline", data, "--weights", tmp_path / "w.parquet", "--init",
                cloned, "--out", out, "--epochs", 2)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "clip_fraction" in done.stdout
    before, _ = load_checkpoint(cloned)
    after, extra = load_checkpoint(out)
    with Dataset(data) as ds:
        outcomes = ds.sql("SELECT group_id, avg(success::INT) AS p FROM episodes GROUP BY 1")
    if ((outcomes["p"] > 0) & (outcomes["p"] < 1)).any():
        assert not torch.equal(before.head.weight, after.head.weight)
    assert extra["offline"]["dataset"] == str(data)

    # Bad weights files: one line, exit 2, nothing written.
    table = pq.read_table(tmp_path / "w.parquet")
    dup = tmp_path / "dup.parquet"
    pq.write_table(pa.concat_tables([table, table.slice(2, 1)]), dup)
    nan = tmp_path / "nan.parquet"
    weights = table["weight"].to_numpy().copy()
    weights[5] = np.nan
    pq.write_table(table.set_column(table.schema.get_field_index("weight"), "weight",
                                    [weights.astype(np.float32)]), nan)  # fmt: skip
    short = tmp_path / "short.parquet"
    pq.write_table(table.slice(1), short)
    for bad, message in ((dup, "duplicate index"), (nan, "row 5: field weight"),
                         (short, "covers")):  # fmt: skip
        target = tmp_path / "never.pt"
        done = papo("train", "--offline", data, "--weights", bad, "--init", cloned, "--out",
                    target)  # fmt: skip
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not target.exists()


def test_offline_refuses_non_token_log_probs(cloned: Path, tmp_path: Path) -> None:
    data = tmp_path / "expert"
    assert papo("collect", data, "--tasks", TASK, "--groups", 1, "--group-size", 2,
                "--max-steps", 20).returncode == 0  # fmt: skip
    done = papo("train", "--offline", data, "--init", cloned, "--out", tmp_path / "x.pt")
    assert done.returncode == 2 and "--behaviour init" in done.stderr
    done = papo("train", "--offline", data, "--init", cloned, "--out", tmp_path / "x.pt",
                "--behaviour", "init")  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_weight_at_or_below_zero_is_refused_wherever_it_comes_from(
    cloned: Path, tmp_path: Path
) -> None:
    """A_i * w keeps the sign of A_i only for w > 0: a weights table (as the online loop reads
    from the dataset) gets the same check as a weights file."""
    from papo_data.train.batch import load_batch

    data = tmp_path / "expert"
    assert papo("collect", data, "--tasks", TASK, "--groups", 1, "--group-size", 2,
                "--max-steps", 20).returncode == 0  # fmt: skip
    policy, _ = load_checkpoint(cloned)
    with Dataset(data) as ds:
        index = ds.arrow('select "index" from steps order by "index"')["index"]
        weight = np.ones(len(index), dtype=np.float32)
        load_batch(ds, policy, pa.table({"index": index, "weight": weight}), behaviour="init")
        weight[3] = -2.0
        with pytest.raises(BadInput, match="row 3: field weight: must be finite and > 0"):
            load_batch(ds, policy, pa.table({"index": index, "weight": weight}), behaviour="init")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("colour = 1", "unknown key 'colour'"),
        ('iterations = "ten"', "key 'iterations'"),
        ('mode = "ppo"', "mode must be one of"),
        ("[grpo]\nloss_type = 'sum'", "grpo.loss_type"),
    ],
)
def test_bad_config_is_one_line_exit_2(
    cloned: Path, tmp_path: Path, line: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(f'init = "{cloned}"\n{line}\n')
    done = papo("train", "--config", config, "--run", tmp_path / "r")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
