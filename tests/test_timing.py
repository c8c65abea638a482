"""The timing helpers: what a cell's seconds include and what they must not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lfxbench.runner import Runner
from lfxbench.suite import load_suite
from lfxbench.timing import calibration_seconds, steady_allocator, stopwatch

_ROUNDS_OF_TENSORS = """
import resource
import torch
from lfxbench.timing import steady_allocator
assert steady_allocator()

def faults_of_a_round():
    # 96 MiB freed at once, in tensors below glibc's largest threshold (32 MiB): more
    # than twice any threshold, so by default glibc may give it back to the system and
    # the next round fault on its pages again.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.ones(6 << 20) for _ in range(4)]
    del tensors
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

for _ in range(2):  # the heap grows to hold a round
    faults_of_a_round()
print(sorted(faults_of_a_round() for _ in range(7))[3])
"""


@pytest.mark.skipif(not steady_allocator(), reason="not glibc: the allocator is left alone")
def test_steady_allocator_reuses_freed_tensor_memory():
    # A fresh process: glibc's thresholds depend on everything freed before. Without the
    # setting, 5 of 8 such processes faulted on every page of every round here.
    done = subprocess.run(
        [sys.executable, "-c", _ROUNDS_OF_TENSORS],
        capture_output=True,
        text=True,
        check=True,
    )
    pages_per_round = 4 * (24 << 20) // 4096
    assert int(done.stdout) < 0.1 * pages_per_round


def test_stopwatch_and_calibration_measure_elapsed_time():
    with stopwatch(torch.device("cpu")) as elapsed:
        torch.ones(100).sum()
    assert elapsed.seconds > 0
    assert calibration_seconds(torch.device("cpu"), repeats=1) > 0


def test_a_suite_thread_count_is_applied_and_recorded(tmp_path):
    suite = load_suite(Path(__file__).parent / "data" / "tiny.yaml").model_copy(
        update={"threads": 1}
    )
    before = torch.get_num_threads()
    try:
        runner = Runner(suite, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
        assert torch.get_num_threads() == 1
        assert runner.environment["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)
