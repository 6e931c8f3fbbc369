"""`papo report` on real Meta-World data and a real training run, rendered by headless Chromium."""

from __future__ import annotations

import importlib.util
import io
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread
from selenium import webdriver

from papo_data import open_dataset
from papo_data.causal import proportion_interval
from papo_data.cli import main
from papo_data.sim.collect import CollectConfig, collect

# The browser set-up and the full-page capture are analyses/report_screenshot.py's own, so the
# script that made analyses/figures/report.png is the one tested here.
_spec = importlib.util.spec_from_file_location(
    "report_screenshot", Path(__file__).resolve().parents[1] / "analyses" / "report_screenshot.py"
)
assert _spec is not None and _spec.loader is not None
SCREENSHOT = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(SCREENSHOT)
WIDTH = SCREENSHOT.WIDTH  # browser window, CSS px
EVERY_FIGURE = {
    "action-trace",
    "group-contrast",
    "pn-ps",
    "importance-by-task",
    "branch-budget",
    "learning-curves",
}


def papo(*args: object) -> int:
    """Exit code of the `papo` command line, run in this process."""
    try:
        return main([str(a) for a in args])
    except SystemExit as e:  # argparse rejects bad arguments by exiting
        return int(e.code or 0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pick-place groups hold both outcomes (so PN and PS get defined), reach only successes."""
    path = tmp_path_factory.mktemp("report") / "ds"
    rollouts = CollectConfig(
        tasks=("pick-place-v3", "reach-v3"), groups=2, group_size=4, max_steps=100, seed=0
    )
    collect(path, rollouts, workers=1)
    for verb in (
        ["segment", path],
        ["branch", path, "--k", 2, "--limit", 4, "--workers", 1],
        ["estimate", path, "--no-dowhy"],
        ["export-weights", path],
    ):
        assert papo(*verb) == 0
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-iteration PAPO run from a policy cloned from two reach-v3 demos (as test_train)."""
    tmp = tmp_path_factory.mktemp("run")
    demos, init, run = tmp / "demos", tmp / "bc.pt", tmp / "run"
    assert papo("collect", demos, "--tasks", "reach-v3", "--groups", 2, "--group-size", 1,
                "--noise", 0, "--delay-prob", 0, "--max-steps", 60) == 0  # fmt: skip
    assert papo("train", "--bc", demos, "--out", init, "--demos-per-task", 2, "--epochs", 40) == 0
    config = tmp / "run.toml"
    config.write_text(
        f'init = "{init}"\nmode = "papo"\niterations = 2\ngroups_per_task = 2\nmax_steps = 40\n'
        "[grpo]\ngroup_size = 4\nmini_batch_episodes = 4\n"
        '[branch]\nk = 2\nlimit = 3\ninterventions = ["noise"]\n'
    )
    assert papo("train", "--config", config, "--run", run) == 0
    return run


@pytest.fixture(scope="module")
def report(dataset: Path, run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    assert papo("report", dataset, "--run", run_dir, "--out", out) == 0
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """The system Chromium through the system chromedriver: selenium-manager never runs."""
    with tempfile.TemporaryDirectory() as profile:
        driver = SCREENSHOT.chromium(Path(profile))
        try:
            yield driver
        finally:
            driver.quit()


def load(browser: webdriver.Chrome, page: Path) -> dict[str, object]:
    """Open the page; what the browser made of it."""
    browser.get(page.resolve().as_uri())
    return browser.execute_script(  # type: ignore[no-any-return]
        """
        const images = [...document.images];
        return {
          images: images.map(i => ({complete: i.complete, natural: i.naturalWidth,
                                    shown: i.getBoundingClientRect().width,
                                    figure: i.closest('figure').dataset.figure})),
          figures: [...document.querySelectorAll('figure[data-figure]')]
                     .map(f => f.dataset.figure),
          empty: Object.fromEntries([...document.querySelectorAll('[data-empty]')]
                     .map(p => [p.dataset.empty, p.textContent])),
          text: document.body.innerText,
          height: document.documentElement.scrollHeight,
        };
        """
    )


def test_report_renders_every_figure_in_chromium(
    report: Path, dataset: Path, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    page = load(browser, report)
    images = page["images"]
    assert isinstance(images, list) and images
    for img in images:
        assert img["complete"] and img["natural"] > 0, img
        assert 300 <= img["shown"] <= 1040, img  # readable, and fits the page's column
    assert set(page["figures"]) == EVERY_FIGURE  # type: ignore[arg-type]
    assert page["empty"] == {}

    with open_dataset(dataset) as ds:
        planned = ds.sql("SELECT count(DISTINCT episode_uid) AS n FROM planning_actions")["n"][0]
        totals = ds.sql("SELECT count(*) AS n, sum(success::INT) AS k FROM episodes").row(0)
        replays = ds.sql(
            "SELECT count(*) AS n, count(*) FILTER (WHERE replay_exact) AS exact "
            "FROM branches WHERE arm = 'replay'"
        ).row(0)
        both = ds.sql("SELECT count(*) AS n FROM causal WHERE pn IS NOT NULL AND ps IS NOT NULL")
    assert both["n"][0] > 0  # the data behind the PN/PS figure
    assert page["figures"].count("action-trace") == min(3, planned)  # type: ignore[union-attr]
    text = str(page["text"])
    lo, hi = proportion_interval(totals[1], totals[0])
    assert f"{totals[1] / totals[0]:.2f} [{lo:.2f}, {hi:.2f}] (Wilson 95%)" in text
    assert f"Replay exactness: {replays[1]} of {replays[0]} replay arms exact" in text

    # Self-contained: nothing to fetch, no script.
    html = report.read_text()
    assert not re.search(r"<(script|link)\b|\bsrc=\"(?!data:)|url\(", html)

    png = SCREENSHOT.full_page_png(browser, int(page["height"]))  # type: ignore[call-overload]
    shot = tmp_path / "report.png"
    shot.write_bytes(png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 100_000
    pixels = imread(io.BytesIO(png))
    assert pixels.shape[1] == WIDTH and pixels.shape[0] == page["height"] > 3000
    assert float(np.std(pixels[..., :3])) > 0.05  # drawn, not a blank page


def test_same_inputs_give_the_same_bytes(report: Path, dataset: Path, run_dir: Path) -> None:
    again = report.with_name("again.html")
    assert papo("report", dataset, "--run", run_dir, "--out", again) == 0
    assert again.read_bytes() == report.read_bytes()
    assert sorted(p.name for p in report.parent.iterdir()) == ["again.html", "report.html"]


def test_just_collected_dataset_says_what_fills_each_section(
    tmp_path: Path, browser: webdriver.Chrome, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fresh"
    rollouts = CollectConfig(tasks=("reach-v3",), groups=1, group_size=2, max_steps=40)
    collect(path, rollouts, workers=1)
    out = tmp_path / "fresh.html"
    assert papo("report", path, "--out", out) == 0
    assert str(out) in capsys.readouterr().out

    page = load(browser, out)
    assert page["figures"] == ["group-contrast"]  # the group's siblings need no sidecar table
    assert all(img["complete"] and img["natural"] > 0 for img in page["images"])  # type: ignore[attr-defined]
    empty = page["empty"]
    assert isinstance(empty, dict)
    for name, command in (
        ("action-trace", f"papo segment {path}"),
        ("pn-ps", f"papo branch {path}"),
        ("importance-by-task", f"papo estimate {path}"),
        ("weights", f"papo export-weights {path}"),
        ("branch-budget", f"papo branch {path}"),
        ("learning-curves", "--run RUN_DIR"),
    ):
        assert command in empty[name], (name, empty[name])

    # Segmented but not branched: traces appear, the causal sections point at `papo branch`.
    assert papo("segment", path) == 0
    assert papo("report", path, "--out", out) == 0
    page = load(browser, out)
    assert set(page["figures"]) == {"action-trace", "group-contrast"}  # type: ignore[arg-type]
    assert f"papo branch {path}" in page["empty"]["pn-ps"]  # type: ignore[index]


def _metrics_without(run: Path, tmp: Path, column: str) -> Path:
    table = pq.read_table(run / "metrics.parquet")
    bad = tmp / f"no-{column}"
    bad.mkdir()
    pq.write_table(table.drop_columns([column]), bad / "metrics.parquet")
    return bad


def _metrics_with(run: Path, tmp: Path, column: str, row: int, value: float) -> Path:
    table = pq.read_table(run / "metrics.parquet")
    values = table[column].to_pylist()
    values[row] = value
    bad = tmp / f"bad-{column}"
    bad.mkdir()
    index = table.schema.get_field_index(column)
    pq.write_table(table.set_column(index, column, pa.array(values)), bad / "metrics.parquet")
    return bad


def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    dataset: Path, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "metrics.parquet").write_bytes(b"not parquet at all")
    cases = [
        ([plain], "not a papo dataset"),
        ([tmp_path / "missing"], "no such file or directory"),
        ([dataset, "--run", tmp_path / "no-run"], "no such run directory"),
        ([dataset, "--run", dataset], "metrics.parquet: no such file"),
        ([dataset, "--run", garbage], "not a readable Parquet file"),
        ([dataset, "--run", _metrics_without(run_dir, tmp_path, "mean_weight")],
         "field mean_weight: missing"),
        ([dataset, "--run", _metrics_with(run_dir, tmp_path, "success_rate", 1, 1.5)],
         "row 1: field success_rate"),
        ([dataset, "--detector", "nonsense"], "invalid choice"),
    ]  # fmt: skip
    out = tmp_path / "never.html"
    for args, message in cases:
        assert papo("report", *args, "--out", out) == 2, message
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()
    assert papo("report", dataset, "--out", tmp_path) == 2
    assert "exists and is not a file" in capsys.readouterr().err
