"""Runs at the same time over one cache or one run directory, and the leftovers of a killed
writer: every run finishes with the same numbers, every file loads, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from lfxbench.storage import read_cell

# Two models (seeds) x two methods: seconds of CPU once the imports are done.
TINIER = """\
name: tinier
device: cpu
seeds: [0, 1]
batch_size: 16
datasets:
  - {name: mnist_5k, params: {n_train: 100, n_test: 12}}
models:
  - id: ae
    name: mnist_autoencoder
    dataset: mnist_5k
    recipe: {epochs: 1, batch_size: 50, patience: 1}
methods: [saliency, random]
metrics:
  - name: latent_shift
    params: {fractions: [0.5, 1.0]}
"""
TIMING = ("seconds", "calibration", "memory", "_version", "device", "threads", "allocator")


def _start(suite: Path, out: Path, cache: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "lfxbench.cli", "run", str(suite), "--quiet"]
    command += ["--out", str(out), "--cache-dir", str(cache)]
    return subprocess.Popen(
        command, cwd=suite.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _quality(run_dir: Path) -> pd.DataFrame:
    results = pd.read_csv(run_dir / "results.csv")
    kept = [column for column in results if not any(part in column for part in TIMING)]
    return results[kept].sort_values("cell_key", ignore_index=True)


@pytest.mark.slow
def test_runs_at_once_over_one_cache_and_one_run_directory_agree(tmp_path):
    suite = tmp_path / "tinier.yaml"
    suite.write_text(TINIER)
    shared_out, other_out = tmp_path / "shared", tmp_path / "other"
    shared_cache, own_cache = tmp_path / "cache", tmp_path / "own_cache"
    # What a writer killed between its first byte and its rename leaves behind.
    planted = [
        shared_out / "tinier" / "cells" / ".0123456789abcdef.json.5eed5eed5eed.tmp",
        shared_cache / "models" / ".0123456789abcdef.pt.5eed5eed5eed.tmp",
        shared_cache / "attributions" / ".0123456789abcdef.pt.5eed5eed5eed.tmp",
    ]
    for path in planted:
        path.parent.mkdir(parents=True)
        path.write_bytes(b'{"value": 0.')

    # Two runs write the same run directory (each with its own cache); two runs share the
    # cache (each with its own run directory); all three at once.
    runs = [
        _start(suite, shared_out, shared_cache),
        _start(suite, shared_out, own_cache),
        _start(suite, other_out, shared_cache),
    ]
    outcomes = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outcomes, strict=True):
        assert run.returncode == 0, err
        assert "Traceback" not in err and "CorruptFileWarning" not in err, err

    shared = _quality(shared_out / "tinier")
    assert len(shared) == 4
    pd.testing.assert_frame_equal(_quality(other_out / "tinier"), shared, check_exact=True)
    for out in (shared_out, other_out):
        cells = sorted((out / "tinier" / "cells").glob("*.json"))
        assert {path.stem for path in cells} == set(shared["cell_key"])
        assert all(read_cell(path, path.stem) is not None for path in cells)
    for cache in (shared_cache, own_cache):
        entries = sorted(cache.rglob("*.pt"))
        assert len(entries) == 2 + 4  # two models, four attributions
        for path in entries:
            assert isinstance(torch.load(path, weights_only=True), dict), path
    # The leftovers confused nothing and are the only temporary files.
    assert sorted(tmp_path.rglob("*.tmp")) == sorted(planted)
