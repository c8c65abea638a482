"""The timing helpers: what a cell's seconds include and what they must not."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lfxbench import timing
from lfxbench.execution.runner import Runner
from lfxbench.suite import load_suite
from lfxbench.timing import calibration_seconds, stopwatch

DATA = Path(__file__).parent / "data"

# How many bytes of a 64 MiB tensor glibc hands out as a fresh mapping (mallinfo2's hblkhd).
_MAPPED_BYTES = """
import ctypes, sys
import torch
from lfxbench.timing import steady_allocator
if sys.argv[1] == "steady":
    assert steady_allocator()
libc = ctypes.CDLL("libc.so.6")

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc.mallinfo2.restype = MallInfo2
before = libc.mallinfo2().hblkhd
tensor = torch.ones(16 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


def _has_mallinfo2() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "mallinfo2")
    except OSError:
        return False


def _mapped_bytes(allocator: str) -> int:
    # A fresh process: glibc's thresholds depend on everything freed before.
    done = subprocess.run(
        [sys.executable, "-c", _MAPPED_BYTES, allocator],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


@pytest.mark.skipif(not _has_mallinfo2(), reason="not glibc: the allocator is left alone")
def test_steady_allocator_serves_every_tensor_from_the_kept_heap():
    # By default a 64 MiB tensor (above glibc's largest mmap threshold) is a fresh mapping:
    # page faults on every touch, given back when freed. Under the steady allocator it
    # comes from the heap, which keeps what is freed.
    assert _mapped_bytes("default") >= 64 << 20
    assert _mapped_bytes("steady") == 0


def test_stopwatch_and_calibration_read_the_clock_around_the_work(monkeypatch):
    ticks = iter([10.0, 10.5])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(ticks))
    with stopwatch(torch.device("cpu")) as elapsed:
        pass
    assert elapsed.seconds == 0.5
    # Warm-up pass (discarded), then three passes of 3, 1 and 2 s: the median is 2 s.
    ticks = iter([0.0, 9.0, 0.0, 3.0, 0.0, 1.0, 0.0, 2.0])
    assert calibration_seconds(torch.device("cpu"), repeats=3) == 2.0


def test_a_suite_thread_count_is_applied_and_recorded(tmp_path):
    suite = load_suite(Path(__file__).parent / "data" / "tiny.yaml").model_copy(
        update={"threads": 1}
    )
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # so that a runner ignoring the suite would be seen
        runner = Runner(suite, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
        assert torch.get_num_threads() == 1
        assert runner.environment["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)


_FIRST_GRADIENT_IMPORTS = """
import sys
from pathlib import Path
import torch
from lfxbench.loss_gradients import per_example_gradients
from lfxbench.recipe import Recipe
from lfxbench.execution.runner import Runner
from lfxbench.suite import load_suite
from tiny_models import TinyAutoencoder

suite = load_suite(Path(sys.argv[2]))
Runner(suite, Path(sys.argv[1]) / "run", cache_dir=Path(sys.argv[1]) / "cache", progress=False)
before = set(sys.modules)
per_example_gradients(TinyAutoencoder(), Recipe(), torch.randn(3, 6), torch.zeros(3))
print(len(set(sys.modules) - before))
"""


def test_the_first_gradient_transform_imports_nothing_inside_a_timed_cell(tmp_path):
    # torch.func.grad imports torch._dynamo on its first call: a runner imports it before
    # any stopwatch starts, so no cell's time holds a one-off import.
    tests = Path(__file__).parent
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_GRADIENT_IMPORTS, str(tmp_path), str(DATA / "tiny.yaml")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # the installed package, not a source tree's
        env={**os.environ, "PYTHONPATH": str(tests)},
    )
    assert int(done.stdout.strip().splitlines()[-1]) == 0
