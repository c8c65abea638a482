"""What a run shows while it runs. On a terminal: one bar for the run's cells and, beneath
it, the stage really running (a model's training with its epoch, loss and time left; the
batches of an explanation; a metric). Elsewhere (a log file, CI): one log line per finished
cell. Without progress (``--quiet``, the Python API's default): nothing.

Training, explaining and scoring report through ``stage`` and ``step``, which do nothing
unless a run's display is open: none of them takes a display argument.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Literal

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

logger = logging.getLogger(__name__)
Mode = Literal["bars", "lines", "off"]
_STAGE_FORMAT = "  {desc} {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"
_COUNT_FORMAT = "  {desc} {n_fmt} {unit} [{elapsed}{postfix}]"
_OPEN_FORMAT = "  {desc} [{elapsed}{postfix}]"


class Display:
    """The display of one run: ``cells`` in all; ``mode`` as ``mode_for`` chooses it."""

    def __init__(self, cells: int, title: str, mode: Mode):
        self.cells, self.title, self.mode, self.done = cells, title, mode, 0
        self._run: tqdm | None = None
        self._stage: tqdm | None = None

    def __enter__(self) -> Display:
        if self.mode == "bars":
            self._run = tqdm(
                total=self.cells, desc=self.title, unit="cell", position=0, file=sys.stderr
            )
            self._stage = tqdm(
                total=None, position=1, leave=False, file=sys.stderr, bar_format="  {desc}"
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        for bar in (self._stage, self._run):
            if bar is not None:
                bar.close()

    def stage(self, text: str, total: int | None, unit: str) -> None:
        if self._stage is None:
            return
        bar = self._stage
        bar.unit, bar.total = unit, total
        bar.bar_format = _STAGE_FORMAT if total else _COUNT_FORMAT if unit else _OPEN_FORMAT
        bar.set_postfix_str("", refresh=False)
        bar.set_description_str(text, refresh=False)
        bar.reset()  # and shown

    def step(self, postfix: str | None) -> None:
        if self._stage is None:
            return
        if postfix is not None:
            self._stage.set_postfix_str(postfix, refresh=False)
        self._stage.update()

    def finished(self, cells: int, text: str) -> None:
        self.done += cells
        if self._run is not None:
            self._run.update(cells)
        elif self.mode == "lines":
            logger.info("[%d/%d] %s", self.done, self.cells, text)


_open: ContextVar[Display | None] = ContextVar("lfxbench_display", default=None)


def mode_for(progress: bool) -> Mode:
    """Bars on a terminal, lines elsewhere, nothing without progress."""
    if not progress:
        return "off"
    return "bars" if sys.stderr.isatty() else "lines"


@contextlib.contextmanager
def showing(cells: int, title: str, progress: bool) -> Iterator[Display]:
    """The run's display, open while the cells run; log lines go above its bars."""
    display = Display(cells, title, mode_for(progress))
    above = logging_redirect_tqdm() if display.mode == "bars" else contextlib.nullcontext()
    token = _open.set(display)
    try:
        with above, display:
            yield display
    finally:
        _open.reset(token)


def stage(text: str, total: int | None = None, unit: str = "") -> None:
    """The stage running now, of ``total`` steps (or of an open number)."""
    display = _open.get()
    if display is not None:
        display.stage(text, total, unit)


def step(postfix: str | None = None) -> None:
    """One step of the stage done; ``postfix``: what it reached (a loss)."""
    display = _open.get()
    if display is not None:
        display.step(postfix)


def finished(cells: int, text: str) -> None:
    """``cells`` of the run finished (``text`` names them, in a log line off a terminal)."""
    display = _open.get()
    if display is not None:
        display.finished(cells, text)
