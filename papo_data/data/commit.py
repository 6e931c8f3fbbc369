"""Atomic, journaled commits of several files at once.

A writer stages every new file under a hidden temporary name, then writes a journal listing the
renames and deletions (the commit point), then carries them out. A reader that finds a journal
reads the staged files in place of the old ones without touching anything, so a command killed
at any moment leaves a dataset that reads as of its last completed commit; the next writer rolls
the journal forward.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from papo_data.errors import BadInput

JOURNAL = "meta/.papo-journal.json"
LOCK = "meta/.papo-lock"
TMP_MARK = ".tmp-"
T = TypeVar("T")


def temp_name(final: Path) -> Path:
    """A hidden sibling of `final` that no reader's glob matches."""
    return final.with_name(f".{final.name}{TMP_MARK}{uuid.uuid4().hex[:12]}")


def remove_stale_siblings(final: Path) -> None:
    """Delete what earlier writes of `final`, killed midway, left beside it: their hidden temp
    files or folders. (Two commands writing the same output at once is not supported.)"""
    for p in final.parent.glob(f".{glob.escape(final.name)}{TMP_MARK}*"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def replace_folder(staging: Path, out: Path) -> None:
    """Put the finished folder `staging` at `out`. Where the system can swap two paths in one
    step (Linux renameat2 RENAME_EXCHANGE) a kill leaves the old folder or the new one, never
    neither; elsewhere the old one is renamed aside first. The old folder is deleted after."""
    if out.exists() and _exchange(staging, out):
        shutil.rmtree(staging)  # now the old folder
        return
    old = None
    if out.exists():
        old = temp_name(out)
        os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the C library or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def check_writable(out: Path, *, folder: bool = False, dataset: Path | None = None) -> None:
    """BadInput unless `out` (a file, or a folder if `folder`) can be created or replaced: checked
    before any work, so that a typo in an output path costs nothing and leaves nothing behind.
    Missing parent folders are fine (they are created); the nearest existing one must be a
    writable folder. Never inside the folders of the `dataset` being read (its own files)."""
    if dataset is not None:
        target = out.resolve()
        for own in ("meta", "data", "papo", "videos"):
            if target.is_relative_to((dataset / own).resolve()):
                raise BadInput(f"{out}: inside the dataset's {own}/ folder; write it elsewhere")
    if out.exists() and out.is_dir() != folder:
        raise BadInput(f"{out}: exists and is not a {'folder' if folder else 'file'}")
    ancestor = out.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise BadInput(f"{out}: {ancestor} is a file, not a folder")
    try:  # a real file, not os.access: root passes access() on read-only and virtual folders
        # named like a temp file of `out`, so a probe a kill leaves is cleared by its next write
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}{TMP_MARK}probe-", dir=ancestor)
    except OSError as e:
        raise BadInput(f"{out}: cannot write in {ancestor} ({e.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_parquet(table: pa.Table, path: Path) -> None:
    """The one way tables are written: pyarrow, zstd (DuckDB COPY would lose fixed sizes)."""
    pq.write_table(table, path, compression="zstd")


def write_atomic(final: Path, write: Callable[[Path], T]) -> T:
    """Write one standalone file (not part of a dataset) atomically: `write(tmp)` fills a hidden
    sibling, which is synced and renamed onto `final`; what `write` returns is returned."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(final)
    tmp = temp_name(final)
    try:
        result = write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def write_atomic_table(table: pa.Table, final: Path) -> None:
    write_atomic(final, lambda tmp: write_parquet(table, tmp))


def write_atomic_bytes(data: bytes, final: Path) -> None:
    write_atomic(final, lambda tmp: tmp.write_bytes(data))


@dataclass
class Transaction:
    """Files staged for one commit: `stage_*` now, `commit()` makes them visible together."""

    root: Path
    renames: list[tuple[Path, Path]] = field(default_factory=list)
    deletes: list[Path] = field(default_factory=list)

    def _staged(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(final)
        self.renames.append((tmp, final))
        return tmp

    def stage_table(self, table: pa.Table, final: Path) -> None:
        write_parquet(table, self._staged(final))

    def stage_text(self, text: str, final: Path) -> None:
        self._staged(final).write_text(text)

    def delete(self, final: Path) -> None:
        self.deletes.append(final)

    def abort(self) -> None:
        for tmp, _ in self.renames:
            tmp.unlink(missing_ok=True)
        self.renames.clear()
        self.deletes.clear()

    def commit(self) -> None:
        """Make every staged change visible: write the journal, then carry it out."""
        if self.prepare():
            roll_forward(self.root)

    def prepare(self) -> bool:
        """Durably stage everything and write the journal (the commit point)."""
        if not self.renames and not self.deletes:
            return False
        for tmp, _ in self.renames:
            _fsync_file(tmp)
        for d in {tmp.parent for tmp, _ in self.renames}:
            _fsync_dir(d)
        rel = lambda p: str(p.relative_to(self.root))  # noqa: E731
        journal = {
            "replace": [[rel(t), rel(f)] for t, f in self.renames],
            "delete": [rel(p) for p in self.deletes],
        }
        write_atomic_bytes(json.dumps(journal).encode(), self.root / JOURNAL)
        _fsync_dir((self.root / JOURNAL).parent)
        self.renames.clear()
        self.deletes.clear()
        return True


def read_journal(root: Path) -> dict[str, list] | None:
    try:
        return json.loads((root / JOURNAL).read_text())
    except FileNotFoundError:
        return None


def roll_forward(root: Path) -> None:
    """Finish a committed journal (idempotent); writers call this before anything else."""
    journal = read_journal(root)
    if journal is None:
        return
    for tmp, final in journal["replace"]:
        if (root / tmp).exists():
            os.replace(root / tmp, root / final)
    for path in journal["delete"]:
        (root / path).unlink(missing_ok=True)
    for d in {(root / f).parent for _, f in journal["replace"]}:
        _fsync_dir(d)
    (root / JOURNAL).unlink()


@dataclass(frozen=True)
class Overlay:
    """A reader's view of a committed but unfinished journal, read once so that every file a
    reader opens comes from the same commit."""

    pending: dict[Path, Path] = field(default_factory=dict)
    """final path -> staged file still to be renamed onto it"""
    deleted: frozenset[Path] = frozenset()
    """final paths the journal deletes"""

    def readable(self, final: Path) -> Path:
        """Where the current content of `final` is."""
        return self.pending.get(final, final)


def overlay(root: Path) -> Overlay:
    """The journal pending in `root`, if any, as seen by a reader (which changes nothing)."""
    journal = read_journal(root)
    if journal is None:
        return Overlay()
    pending = {
        root / final: root / tmp for tmp, final in journal["replace"] if (root / tmp).exists()
    }
    return Overlay(pending, frozenset(root / p for p in journal["delete"]))


def remove_stale_temps(root: Path) -> None:
    """Delete staged files of commits that never happened (writers only, after roll_forward)."""
    for p in root.rglob(f".*{TMP_MARK}*"):
        p.unlink(missing_ok=True)


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """One writer at a time per dataset (an advisory lock released when the process dies)."""
    import fcntl

    path = root / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from papo_data.errors import BadInput

            raise BadInput(
                f"{root}: another papo command, or a DatasetWriter still open in this process, "
                "is writing this dataset"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
