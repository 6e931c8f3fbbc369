"""SIGKILL at every rename of the commands that replace a whole folder or create a dataset: the
target is always the old result or the new one (never missing, never half-made), and a rerun
gives the uninterrupted result and leaves nothing hidden behind.

The kill is exact: the CLI runs under a small launcher that kills its own process just before
its N-th rename, deletion or new folder (the moments between the steps of a commit or a swap;
the swap itself is one system call).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from papo_data import open_dataset
from papo_data.commands.demo import MARK, _prepare
from papo_data.data.validate import validate
from papo_data.errors import BadInput
from papo_data.sim.collect import CollectConfig, collect

LAUNCHER = """
import os, signal, sys
n, seen = int(sys.argv[1]), [0]
def killing(original):
    def call(*args, **kwargs):
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    return call
for name in ("rename", "replace", "unlink", "rmdir", "mkdir"):
    setattr(os, name, killing(getattr(os, name)))
from papo_data.cli import main
code = main(sys.argv[2:])
print(f"renames {seen[0]}", file=sys.stderr)
sys.exit(code)
"""


def papo_killed_at(n: int, *args: str | Path, cwd: Path) -> int:
    """Run `papo ARGS`, killed just before its n-th file-system change (n = 0: never); the exit
    code, or when it ran to the end, minus the number of changes it made."""
    launcher = cwd / "launch.py"
    launcher.write_text(LAUNCHER)
    done = subprocess.run(
        [sys.executable, str(launcher), str(n), *map(str, args)],
        capture_output=True, text=True, check=False, cwd=cwd,
    )  # fmt: skip
    if done.returncode == 0:
        return -int(done.stderr.strip().splitlines()[-1].split()[-1])
    return done.returncode


def tables(path: Path) -> dict[str, object]:
    with open_dataset(path) as ds:
        return {t: ds.arrow(f"select * from {t} order by all") for t in ("steps", "episodes")}


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "src"
    collect(path, CollectConfig(tasks=("reach-v3",), groups=1, group_size=2, max_steps=20))
    return path


@pytest.mark.parametrize("verb", ["import-lerobot", "publish"])
def test_a_folder_replaced_by_overwrite_is_never_missing(
    verb: str, small: Path, tmp_path: Path
) -> None:
    def command(out: Path) -> list[str | Path]:
        if verb == "import-lerobot":
            return ["import-lerobot", small, out, "--overwrite"]
        return ["publish", small, "--out", out, "--overwrite"]

    def content(out: Path) -> object:
        if verb == "import-lerobot":
            assert validate(out) == []
            return tables(out)
        return {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    earlier = tmp_path / "first" / "out"  # the card is named after the folder
    assert papo_killed_at(0, *command(earlier), cwd=tmp_path) < 0
    renames = -papo_killed_at(0, *command(earlier), cwd=tmp_path)  # when it replaces a folder
    expected = content(earlier)
    (earlier / "earlier.txt").write_text("from the earlier run")
    out = tmp_path / "out"
    # The first rename, one amid staging, and the last few: where the new folder takes the
    # place of the old one.
    for n in sorted({1, renames // 2, *range(renames - 4, renames + 1)} & {*range(1, renames + 1)}):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(earlier, out)
        assert papo_killed_at(n, *command(out), cwd=tmp_path) == -9
        assert out.is_dir(), f"killed before rename {n}: {out} is missing"
        now = content(out)  # an import is validated
        assert (out / "earlier.txt").exists() or now == expected, n
        assert papo_killed_at(0, *command(out), cwd=tmp_path) < 0
        assert content(out) == expected and hidden(tmp_path) == [], n


def test_collect_killed_before_its_first_commit_reruns(small: Path, tmp_path: Path) -> None:
    args = ["collect", "new", "--tasks", "reach-v3", "--groups", "1", "--group-size", "2",
            "--max-steps", "20"]  # fmt: skip
    renames = -papo_killed_at(0, *args, cwd=tmp_path)
    # The first commit creates the dataset: every point up to it, then one amid and the last.
    for n in sorted({*range(1, 9), renames // 2, renames}):
        shutil.rmtree(tmp_path / "new")
        assert papo_killed_at(n, *args, cwd=tmp_path) == -9
        assert papo_killed_at(0, *args, cwd=tmp_path) < 0, f"rerun refused after kill {n}"
        assert validate(tmp_path / "new") == []
        assert tables(tmp_path / "new") == tables(small)


def test_demo_overwrite_accepts_its_own_half_made_folder(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    _prepare(out, overwrite=False)
    assert (out / MARK).exists()  # what a demo killed right after starting leaves
    (out / "dataset").mkdir()  # no info.json yet
    with pytest.raises(BadInput, match="use --overwrite"):
        _prepare(out, overwrite=False)
    _prepare(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [MARK] and hidden(tmp_path) == []
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(BadInput, match="only replaces an earlier demo"):
        _prepare(mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep"


def test_estimate_writes_rows_report_and_record_in_one_commit(small: Path, tmp_path: Path) -> None:
    """Killed at any step, the causal rows, the DoWhy report and info.json's record all belong
    to the earlier run or all to the new one."""
    from papo_data.branches.run import BranchConfig, branch
    from papo_data.planning.segment import SegmentConfig, segment

    earlier = tmp_path / "earlier"
    collect(earlier, CollectConfig(tasks=("pick-place-v3",), groups=2, group_size=4,
                                   max_steps=100))  # fmt: skip
    segment(earlier, SegmentConfig())
    branch(earlier, BranchConfig(k=2, limit=4, interventions=("hold",)))
    assert papo_killed_at(0, "estimate", earlier, "--importance", "pn", "--no-dowhy",
                          cwd=tmp_path) < 0  # fmt: skip
    new = ["estimate", "--importance", "ps"]  # with the DoWhy report

    def state(path: Path) -> tuple[object, bool, str]:
        with open_dataset(path) as ds:
            rows = ds.arrow("select * from causal order by all")
            record = ds.info["papo"]["estimate"]["paired"]["importance"]
            report = ds.view.readable(path / "papo" / "reports" / "dowhy.json")  # as readers see
        return rows, report.exists(), record

    reference = Path(shutil.copytree(earlier, tmp_path / "reference"))
    changes = -papo_killed_at(0, new[0], reference, *new[1:], cwd=tmp_path)
    before, after = state(earlier), state(reference)
    assert before[1:] == (False, "pn") and after[1:] == (True, "ps")
    assert not before[0].equals(after[0])  # importance pn, then ps
    for n in range(1, changes + 1):
        out = tmp_path / "killed"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(earlier, out)
        assert papo_killed_at(n, new[0], out, *new[1:], cwd=tmp_path) == -9
        assert state(out) in (before, after), f"a mix after a kill at step {n}"
