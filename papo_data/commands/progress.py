"""The progress bar of long commands, in the shape the library functions take."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

Progress = Callable[[int], Callable[[int], Any]]


@contextmanager
def progress_bar(desc: str, unit: str) -> Iterator[Progress]:
    """Yields `start(total) -> advance(n)`; the bar opens once the work is known and always
    closes, whatever the command raises."""
    bars: list[tqdm] = []

    def start(total: int) -> Callable[[int], Any]:
        bars.append(tqdm(total=total, unit=unit, desc=desc))
        return bars[-1].update

    try:
        yield start
    except BaseException:
        for bar in bars:
            bar.leave = False  # on a terminal the error line then stands alone
        raise
    finally:
        for bar in bars:
            bar.close()
