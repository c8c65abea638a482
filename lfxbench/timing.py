"""Wall-clock timing that waits for the device, so GPU work is counted where it happens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
