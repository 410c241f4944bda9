"""Progress that is never silent: rich's bars on a terminal, plain lines everywhere else.

When output goes to a file, a pipe or CI, rich draws nothing, so a run of many minutes printed
nothing at all. There each stage prints a line when it starts and when it is done, and its
counts every ``interval`` seconds in between (rich has no such mode, hence this subclass).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

LINE_INTERVAL_S = 10.0


class RunProgress(Progress):
    """A rich ``Progress`` whose tasks also print lines when the console is not a terminal."""

    def __init__(self, console: Console, interval: float = LINE_INTERVAL_S) -> None:
        self.lines = not console.is_terminal
        super().__init__(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=self.lines,
        )
        self.interval = interval
        self._printed: dict[TaskID, float] = {}
        self._done: set[TaskID] = set()
        self._names: dict[TaskID, str] = {}

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        # The bar's column renders markup: a name like "ours[gain=1]" must show as written.
        task_id = super().add_task(escape(description), *args, **kwargs)
        self._names[task_id] = description
        if self.lines:
            self._line(task_id, "started")
        return task_id

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe_line(task_id)

    def update(self, task_id: TaskID, *args: Any, **kwargs: Any) -> None:
        super().update(task_id, *args, **kwargs)
        self._maybe_line(task_id)

    def _maybe_line(self, task_id: TaskID) -> None:
        if not self.lines or task_id in self._done:
            return
        task = self._tasks[task_id]
        if task.total is not None and task.completed >= task.total:
            self._done.add(task_id)
            self._line(task_id, "done")
        elif time.monotonic() - self._printed.get(task_id, 0.0) >= self.interval:
            self._line(task_id, "")

    def _line(self, task_id: TaskID, state: str) -> None:
        task = self._tasks[task_id]
        total = "?" if task.total is None else f"{task.total:g}"
        elapsed = task.elapsed or 0.0
        word = f" {state}" if state else ""
        self.console.print(
            f"{self._names[task_id]}:{word} {task.completed:g}/{total} ({elapsed:.0f} s)",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        self._printed[task_id] = time.monotonic()
