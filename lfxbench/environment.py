"""Where a result was measured: device, hardware and library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from lfxbench.errors import LfxbenchError


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an unavailable device is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LfxbenchError(
            f"device {spec!r} requested but CUDA is not available; use 'auto' or 'cpu'"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise LfxbenchError(f"device {spec!r} requested but MPS is not available")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} CPUs)"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("lfxbench", "torch", "captum", "numpy", "pandas"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random: third-party code (Captum, Quantus) draws from all three."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block as after ``seed_everything(seed)``, then give torch, numpy and random
    back the states they had: a metric that calls the engine mid-way keeps its own draws."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda_devices):
        seed_everything(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
