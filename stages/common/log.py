"""Logging and progress on stderr; stdout is reserved for results (docs/design.md §4)."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# Messages carry user text (paths, timesteps like "100:800"): no emoji codes, and markup only in our
# own prefixes, the message itself escaped, so "a[b].tif" or ":100:" print as written.
stderr = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
_verbosity = 0  # -1 quiet, 0 normal, 1+ verbose


def set_verbosity(level: int) -> None:
    global _verbosity
    _verbosity = level


def verbosity() -> int:
    return _verbosity


def info(message: str) -> None:
    if _verbosity >= 0:
        stderr.print(message, markup=False)


def debug(message: str) -> None:
    if _verbosity >= 1:
        stderr.print(f"[dim]{escape(message)}[/dim]")


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/yellow] {escape(message)}")


@contextlib.contextmanager
def progress(description: str, total: int) -> Iterator[ProgressHandle]:
    """A rich bar on stderr when it is a terminal; plain periodic lines otherwise."""
    show_bar = _verbosity >= 0 and sys.stderr.isatty()
    if show_bar:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=stderr,
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=total, status="")
            yield ProgressHandle(bar, task, description, total)
    else:
        yield ProgressHandle(None, None, description, total)


class ProgressHandle:
    def __init__(self, bar, task, description: str, total: int):
        self._bar, self._task = bar, task
        self._description, self._total = description, max(total, 1)
        self._done = 0
        self._next_line = 0.0

    def advance(self, n: int = 1, status: str = "") -> None:
        self._done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n, status=status)
            return
        # Without a terminal, print roughly every 10 % so logs of batch jobs stay short.
        fraction = self._done / self._total
        if _verbosity >= 0 and (fraction >= self._next_line or self._done == self._total):
            stderr.print(f"{self._description}: {self._done}/{self._total} {status}".rstrip(), markup=False)
            self._next_line = fraction + 0.1
