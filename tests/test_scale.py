"""Executors and device-memory back-off."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from suite_runs import run

from lfxbench.batching import in_batches

DATA = Path(__file__).parent / "data"


def test_out_of_memory_halves_the_batch_and_gives_the_same_result():
    inputs = torch.arange(20.0).reshape(10, 2)
    seen = []

    def compute(batch: slice) -> torch.Tensor:
        size = batch.stop - batch.start
        seen.append(size)
        if size > 3:  # a device that holds at most 3 examples at once
            raise torch.OutOfMemoryError("simulated")
        return inputs[batch] * 2

    with pytest.warns(UserWarning, match="out of device memory"):
        result = in_batches(compute, len(inputs), batch_size=8)
    torch.testing.assert_close(result, inputs * 2)
    assert seen[:3] == [8, 4, 2] and set(seen[3:]) == {2}


def test_out_of_memory_at_one_example_is_raised():
    def compute(batch: slice) -> torch.Tensor:
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(torch.OutOfMemoryError), pytest.warns(UserWarning):
        in_batches(compute, 4, batch_size=2)


@pytest.mark.slow
# the tiny suite, and one whose subset models are retrained ahead of the cells
@pytest.mark.parametrize("name", ["tiny", "ground_truth_toy"])
def test_ray_executor_gives_the_local_results_table(name, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'lfxbench[ray]'")
    import ray

    plugin = {"tiny": "user_plugin.py", "ground_truth_toy": "ground_truth_toy.py"}[name]
    for file in (f"{name}.yaml", plugin):
        shutil.copy(DATA / file, tmp_path / file)
    monkeypatch.chdir(tmp_path)  # workers import from the driver's folder: not a source tree

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        tables = {}
        for executor in ("local", "ray"):
            out = tmp_path / executor
            assert run(tmp_path / f"{name}.yaml", out, "--executor", executor) == 0
            tables[executor] = pd.read_csv(out / "runs" / name / "results.csv")
    finally:
        ray.shutdown()
    local, distributed = tables["local"], tables["ray"]
    identity = ["model", "method", "metric", "seed", "cell_key"]
    pd.testing.assert_frame_equal(local[identity], distributed[identity])
    # Workers use the driver's thread count: the same numbers, bit for bit.
    pd.testing.assert_series_equal(local["value"], distributed["value"], check_exact=True)
