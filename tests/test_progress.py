"""What a run shows while it runs: the stage beneath the run's bar on a terminal, one line
per finished cell elsewhere, nothing under --quiet."""

from __future__ import annotations

import functools
import io
import re
import sys
from pathlib import Path

import pandas as pd

from lfxbench.cli import main
from lfxbench.execution import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(tiny_suite: Path, tmp_path: Path, *flags: str) -> int:
    return main(
        [
            "run",
            str(tiny_suite),
            "--set",
            "seeds=[0]",
            "--out",
            str(tmp_path / "runs"),
            "--cache-dir",
            str(tmp_path / "cache"),
            *flags,
        ]
    )


def test_off_a_terminal_each_finished_cell_is_one_line(tiny_suite, tmp_path, caplog):
    with caplog.at_level("INFO", logger="lfxbench"):
        assert run(tiny_suite, tmp_path) == 0
    lines = [m for m in caplog.messages if re.match(r"\[\d+/\d+\] ", m)]
    results = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert len(lines) == len(results)
    assert lines[-1].startswith(f"[{len(results)}/{len(results)}] ")
    saliency = results[(results.method == "saliency") & (results.metric == "latent_shift")]
    assert f"ae seed 0 saliency latent_shift = {saliency['value'].iloc[0]:.4g}" in lines[0]


def test_quiet_shows_no_progress(tiny_suite, tmp_path, caplog):
    with caplog.at_level("INFO", logger="lfxbench"):
        assert run(tiny_suite, tmp_path, "--quiet") == 0
    assert not [m for m in caplog.messages if re.match(r"\[\d+/\d+\] ", m)]


def test_on_a_terminal_the_stage_running_shows_beneath_the_run(tiny_suite, tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    # Every step drawn, however fast.
    monkeypatch.setattr(progress, "tqdm", functools.partial(progress.tqdm, mininterval=0))
    assert run(tiny_suite, tmp_path) == 0
    shown = terminal.getvalue()
    # The model's training, epoch by epoch with its loss and the time left ...
    assert re.search(r"training ae seed 0 2/2 epochs \[[\d:]+<[\d:]+, loss [\d.]+, valid", shown)
    # ... the batches of an explanation (24 test inputs, batches of 16), and a metric.
    assert re.search(r"explaining, integrated_gradients: ae seed 0 2/2 batches", shown)
    assert "latent_shift: ae seed 0 saliency" in shown
    assert re.search(r"tiny: 100%.*\| (\d+)/\1 ", shown)
