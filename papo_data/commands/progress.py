"""The progress bar of long commands, in the shape the library functions take."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

Progress = Callable[[int], Callable[[int], Any]]


@contextmanager
def tqdm_bars() -> Iterator[Callable[..., tqdm]]:
    """Yields `open_bar(**tqdm_kwargs) -> tqdm`; every bar opened closes whatever the command
    raises, and on an error none stays on screen, so the error line stands alone."""
    bars: list[tqdm] = []

    def open_bar(**kwargs: Any) -> tqdm:
        bars.append(tqdm(**kwargs))
        return bars[-1]

    try:
        yield open_bar
    except BaseException:
        for bar in bars:
            bar.leave = False
        raise
    finally:
        for bar in bars:
            bar.close()


@contextmanager
def progress_bar(desc: str, unit: str) -> Iterator[Progress]:
    """Yields `start(total) -> advance(n)`, the shape the library functions take: the bar opens
    once the work is known."""
    with tqdm_bars() as open_bar:
        yield lambda total: open_bar(total=total, unit=unit, desc=desc).update
