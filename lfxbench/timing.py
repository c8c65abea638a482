"""Wall-clock timing that waits for the device, so GPU work is counted where it happens."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# mallopt parameters of glibc's <malloc.h>.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_TRIM_THRESHOLD_BYTES = 1 << 30


@functools.cache
def steady_allocator() -> bool:
    """Let this process keep and reuse the memory it frees, whatever the tensor's size.

    By default glibc maps every allocation above a threshold (at most 32 MiB) afresh and
    unmaps it when freed, and gives the top of the heap back to the system once more than
    twice a threshold is free; the thresholds move with what the process freed before. A
    tensor then costs a page fault per 4 KiB page it touches, or does not, depending on
    what ran earlier, and on a virtual machine that hands freed pages back to its host a
    fault costs several microseconds. Here every allocation comes from the heap
    (``M_MMAP_MAX`` 0) and only more than 1 GiB free at its top goes back, so a repeated
    workload reuses its pages: a cell's time is the time of its own work, and stacked
    training or a 1,000 × 1,000 gradient product is not slowed by faults. The price: the
    process keeps its peak memory until it exits. Returns whether the setting took (glibc
    only; elsewhere nothing changes).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))


@functools.cache
def import_lazy_torch_modules() -> None:
    """Import what torch loads on the first use of its function transforms.

    ``torch.func.grad`` imports ``torch._dynamo`` on its first call (seconds on a small
    CPU): once per process, inside the stopwatch of whichever cell came first. Imported
    before any cell is timed, it is charged to none.
    """
    import torch._dynamo  # noqa: F401


@dataclass
class Elapsed:
    seconds: float = 0.0


@contextmanager
def stopwatch(device: torch.device) -> Iterator[Elapsed]:
    elapsed = Elapsed()
    synchronize(device)
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        synchronize(device)
        elapsed.seconds = time.perf_counter() - start


def calibration_seconds(device: torch.device, repeats: int = 5) -> float:
    """Time of a fixed small workload on ``device``: the unit runtimes are compared in.

    A conv net's forward and backward on a batch of MNIST-sized inputs, the shape of the
    work attributions do. Dividing a runtime by this number makes timings of two machines
    (or of one machine under different load) comparable; the median of a few repeats
    resists a single hiccup.
    """
    generator = torch.Generator().manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 7 * 7, 64),
    ).to(device)
    inputs = torch.rand(64, 1, 28, 28, generator=generator).to(device).requires_grad_()
    times = []
    for _ in range(repeats + 1):  # the first pass warms up allocators and kernels
        with stopwatch(device) as elapsed:
            for _ in range(2):
                network(inputs).square().sum().backward()
        times.append(elapsed.seconds)
    return sorted(times[1:])[len(times[1:]) // 2]
