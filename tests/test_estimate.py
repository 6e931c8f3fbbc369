"""`papo estimate` and `papo export-weights` on a collected, segmented, branched dataset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from papo_data import open_dataset
from papo_data.branches.run import BranchConfig, branch
from papo_data.causal import pn_ps_from_counts
from papo_data.cli import main
from papo_data.data.validate import validate
from papo_data.planning.segment import SegmentConfig, segment
from papo_data.sim.collect import CollectConfig, collect

PAPO = str(Path(sys.executable).with_name("papo"))


@pytest.fixture(scope="module")
def branched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("estimate") / "ds"
    collect(
        path,
        CollectConfig(tasks=("pick-place-v3",), groups=2, group_size=4, max_steps=150),
        workers=2,
    )
    segment(path, SegmentConfig(top_m=2))
    branch(path, BranchConfig(k=4, limit=6), workers=2)
    return path


@pytest.fixture
def dataset(branched: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(branched, tmp_path / "ds"))


def causal(path: Path, method: str = "paired") -> pl.DataFrame:
    with open_dataset(path) as ds:
        return ds.sql("select * from causal where method = $m order by all", {"m": method})


def test_paired_estimates_match_the_branch_counts(dataset: Path) -> None:
    assert main(["estimate", str(dataset), "--no-dowhy"]) == 0
    assert validate(dataset) == []
    rows = causal(dataset)
    with open_dataset(dataset) as ds:
        arms = ds.sql(
            "select episode_uid, frame_index, intervention, seed, arm, success from branches "
            "where arm <> 'replay'"
        )
        pairs = ds.sql(
            "select count(distinct (episode_uid, frame_index, intervention)) n from branches "
            "where arm = 'alternative'"
        )
    assert len(rows) == pairs["n"][0]  # one per planning action and intervention branched
    wide = arms.pivot(on="arm", index=["episode_uid", "frame_index", "intervention", "seed"])
    for row in rows.iter_rows(named=True):
        mine = wide.filter(
            (pl.col("episode_uid") == row["episode_uid"])
            & (pl.col("frame_index") == row["frame_index"])
            & (pl.col("intervention") == row["intervention"])
        )
        y, y_alt = mine["factual"].to_numpy(), mine["alternative"].to_numpy()
        expected = pn_ps_from_counts(
            int(np.sum(y & ~y_alt)),
            int(np.sum(y & y_alt)),
            int(np.sum(~y & y_alt)),
            int(np.sum(~y & ~y_alt)),
        )
        assert row["n_pairs"] == len(mine) == 4
        for name in ("pn", "ps", "pns", "harm"):
            if np.isnan(expected[name]):
                assert row[name] is None, name  # undefined is null, not 0
            else:
                assert row[name] == pytest.approx(expected[name], abs=1e-6), name
        for name in ("pn", "ps", "pns"):
            if row[name] is not None:
                assert row[f"{name}_lo"] <= row[name] + 1e-6 <= row[f"{name}_hi"] + 2e-6
        defined = [v for v in (row["pn"], row["ps"]) if v is not None]
        if defined:
            assert row["importance"] == pytest.approx(np.mean(defined), abs=1e-6)
        else:
            assert row["importance"] is None


def test_rerun_replaces_its_method_only(dataset: Path) -> None:
    assert main(["estimate", str(dataset), "--no-dowhy"]) == 0
    assert main(["estimate", str(dataset), "--method", "bounds", "--no-dowhy"]) == 0
    first = causal(dataset)
    assert main(["estimate", str(dataset), "--importance", "pns", "--no-dowhy"]) == 0
    again = causal(dataset)
    assert len(again) == len(first)
    assert again.drop("importance").equals(first.drop("importance"))
    assert len(causal(dataset, "bounds")) == len(first)
    bounds = causal(dataset, "bounds").drop_nulls("pns")
    assert ((bounds["pns_lo"] <= bounds["pns_hi"]) & (bounds["pns_lo"] >= 0)).all()
    assert validate(dataset) == []


def test_weights_one_row_per_step_and_exactly_one_off_planning(dataset: Path) -> None:
    assert main(["estimate", str(dataset), "--no-dowhy"]) == 0
    out = dataset.parent / "weights.parquet"
    assert main(["export-weights", str(dataset), "--lambda", "2", "--out", str(out)]) == 0
    assert validate(dataset) == []
    with open_dataset(dataset) as ds:
        joined = ds.sql(
            "select s.index, s.episode_uid, s.frame_index, w.weight, w.importance, "
            "w.is_planning from steps s left join weights w using (index) order by s.index"
        )
        windows = ds.sql(
            "select c.episode_uid, c.frame_index, avg(c.importance) i, max(p.window) win "
            "from causal c join planning_actions p using (episode_uid, frame_index) "
            "group by all"
        )
        n_weights = ds.sql("select count(*) n from weights")["n"][0]
    assert n_weights == len(joined) and joined["weight"].null_count() == 0
    off = joined.filter(~pl.col("is_planning"))
    assert (off["weight"] == 1.0).all() and (off["importance"] == 0).all()
    # Each planning step carries clip(1 + lambda I) of the window covering it.
    expected = {}
    for row in windows.iter_rows(named=True):
        for f in range(row["frame_index"], row["frame_index"] + row["win"]):
            key = (row["episode_uid"], f)
            expected[key] = max(expected.get(key, 0.0), row["i"] or 0.0)
    on = joined.filter(pl.col("is_planning"))
    assert len(on) == len(expected)
    for row in on.iter_rows(named=True):
        i = expected[(row["episode_uid"], row["frame_index"])]
        assert row["weight"] == pytest.approx(min(max(1 + 2 * i, 0.5), 3.0), abs=1e-6)
    assert (on["weight"] > 1).any(), "some planning action should matter"
    # The file holds the same rows as the table.
    with open_dataset(dataset) as ds:
        table = ds.arrow("select * from weights order by index")
    assert pq.read_table(out).to_pylist() == table.to_pylist()


def test_episode_normalisation_gives_mean_one(dataset: Path) -> None:
    assert main(["estimate", str(dataset), "--no-dowhy"]) == 0
    args = ["export-weights", str(dataset), "--normalize", "episode", "--run-id", "norm"]
    assert main(args) == 0
    assert main([*args[:-1], "norm"]) == 0  # a rerun replaces, never duplicates
    with open_dataset(dataset) as ds:
        means = ds.sql("select episode_uid, avg(weight) m, count(*) n from weights group by all")
        steps = ds.sql("select count(*) n from steps")["n"][0]
    assert means["n"].sum() == steps
    assert np.allclose(means["m"].to_numpy(), 1.0, atol=1e-5)
    assert validate(dataset) == []


@pytest.mark.parametrize(
    ("verb", "args", "message"),
    [
        ("export-weights", [], "no causal rows of method 'paired'"),
        ("export-weights", ["--clip", "2,3"], "--clip must satisfy 0 <= min <= 1 <= max"),
        ("export-weights", ["--clip", "a"], "--clip must be MIN,MAX"),
        ("export-weights", ["--lambda", "-1"], "--lambda must be a number >= 0"),
        ("export-weights", ["--out", "w.csv"], "give a .parquet file"),
        ("estimate", ["--confidence", "1.5"], "--confidence must be in (0, 1)"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    dataset: Path, verb: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([verb, str(dataset), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(dataset.glob("papo/weights/*")) and not list(dataset.glob("papo/causal/*"))


def test_estimate_without_branches_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ds"
    collect(path, CollectConfig(tasks=("reach-v3",), groups=1, group_size=2, max_steps=30))
    assert main(["estimate", str(path)]) == 2
    assert "run 'papo branch' first" in capsys.readouterr().err


def test_amortized_model_predicts_the_unaudited_and_dowhy_reports(
    branched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from papo_data.causal.amortized import audited

    path = Path(shutil.copytree(branched, tmp_path / "ds"))
    # 3 per episode (24): the audit hash keeps ~70% of them, at least the 10 the model needs.
    segment(path, SegmentConfig(top_m=3))
    branch(path, BranchConfig(k=2, interventions=("hold",)))  # all of them
    assert main(["estimate", str(path), "--amortize", "--audit-fraction", "0.7"]) == 0
    out = capsys.readouterr().out
    assert "cross-validated MAE" in out and "dowhy metaworld/pick-place-v3" in out
    with open_dataset(path) as ds:
        predicted = ds.sql("select * from causal where method = 'amortized'")
        actions = ds.sql("select episode_uid, frame_index from planning_actions")
    outside = {(u, f) for u, f in actions.iter_rows() if not audited(u, f, 0.7)}
    assert outside, "the hash should leave some planning actions out of the audit set"
    assert set(predicted.select("episode_uid", "frame_index").iter_rows()) == outside
    assert predicted["importance"].is_between(0, 1).all()
    assert predicted["pn"].null_count() == len(predicted)
    report = json.loads((path / "papo" / "reports" / "dowhy.json").read_text())
    assert [e["task"] for e in report] == ["metaworld/pick-place-v3"]
    assert set(report[0]["refuters"]) == {
        "placebo_treatment_refuter",
        "random_common_cause",
        "data_subset_refuter",
    }
    assert report[0]["gap"] == pytest.approx(
        report[0]["observational_effect"] - report[0]["branch_effect"]
    )
    assert main(["export-weights", str(path)]) == 0
    assert validate(path) == []


def test_amortize_needs_enough_branched_actions(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["estimate", str(dataset), "--amortize", "--audit-fraction", "0.5"]) == 2
    assert "need at least 10" in capsys.readouterr().err


def test_the_dowhy_report_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """DoWhy orders adjustment sets by Python's per-process string hash; the report must not.
    On this dataset three hash seeds once gave three different last digits."""
    base = tmp_path / "base"
    collect(base, CollectConfig(tasks=("pick-place-v3",), groups=2, group_size=4, max_steps=80))
    segment(base, SegmentConfig())
    branch(base, BranchConfig(k=4, audit_fraction=0.5, interventions=("noise", "hold")))
    reports = []
    for hash_seed in ("1", "2", "3"):
        path = Path(shutil.copytree(base, tmp_path / f"ds{hash_seed}"))
        done = subprocess.run(
            [PAPO, "estimate", str(path)], capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        reports.append((path / "papo" / "reports" / "dowhy.json").read_bytes())
    assert "observational_effect" in json.loads(reports[0])[0]
    assert reports[1:] == reports[:1] * 2


def test_an_inexact_replay_is_left_out_of_the_dowhy_branch_effect(dataset: Path) -> None:
    """DESIGN §3: a replay mismatch excludes the planning action from every estimate."""
    from papo_data import DatasetWriter

    with open_dataset(dataset) as ds:
        hold = ds.sql(
            "select episode_uid, frame_index, arm, avg(success::int) y from branches "
            "where intervention = 'hold' and arm <> 'replay' group by all"
        )
        wide = hold.pivot(on="arm", index=["episode_uid", "frame_index"], values="y")
        wide = wide.with_columns(effect=pl.col("factual") - pl.col("alternative"))
        # the action whose effect is furthest from the mean: leaving it out moves the mean
        far = wide.sort((pl.col("effect") - pl.col("effect").mean()).abs()).row(-1, named=True)
        left_out = (far["episode_uid"], far["frame_index"])
        bad = ds.arrow(
            "select * from branches where arm = 'replay' and episode_uid = $u and frame_index = $f",
            {"u": left_out[0], "f": left_out[1]},
        )
    kept = wide.filter(
        ~((pl.col("episode_uid") == left_out[0]) & (pl.col("frame_index") == left_out[1]))
    )
    expected = kept["effect"].mean()
    assert expected != pytest.approx(wide["effect"].mean())
    exact = bad.schema.get_field_index("replay_exact")
    bad = bad.set_column(exact, "replay_exact", pa.array([False] * len(bad)))
    with DatasetWriter.open(dataset) as w:
        w.write_sidecar("branches", bad, replace={"branch_uid": bad["branch_uid"].to_pylist()})
    assert main(["estimate", str(dataset)]) == 0
    report = json.loads((dataset / "papo" / "reports" / "dowhy.json").read_text())
    assert report[0]["branch_effect"] == pytest.approx(expected, abs=1e-9)
    assert left_out not in set(causal(dataset).select("episode_uid", "frame_index").iter_rows())


def test_export_weights_warns_of_estimates_a_new_segmentation_dropped(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["estimate", str(dataset), "--no-dowhy"]) == 0
    assert main(["export-weights", str(dataset)]) == 0
    assert "warning" not in capsys.readouterr().err
    segment(dataset, SegmentConfig(top_m=1))  # fewer planning actions than were estimated
    with open_dataset(dataset) as ds:
        gone = ds.sql(
            "select count(*) from (select distinct episode_uid, frame_index from causal) "
            "anti join planning_actions using (episode_uid, frame_index)"
        ).item()
    assert gone > 0
    assert main(["export-weights", str(dataset)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {gone} estimated actions are not planning actions" in err
    # As the warning advises: estimate again leaves the dropped actions' branches out.
    assert main(["estimate", str(dataset), "--no-dowhy"]) == 0
    assert f"left out {gone} branched actions" in capsys.readouterr().err
    assert main(["export-weights", str(dataset)]) == 0
    assert "warning" not in capsys.readouterr().err
    with open_dataset(dataset) as ds:
        assert (
            ds.sql(
                "select count(*) from causal anti join planning_actions "
                "using (episode_uid, frame_index)"
            ).item()
            == 0
        )
