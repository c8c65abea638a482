"""The one batching helper: any per-example computation in device-sized slices.

``in_batches`` backs off on running out of device memory; ``encode`` is the latent
vectors of any number of inputs, a batch at a time on the encoder's device.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn


def in_batches(compute: Callable[[slice], torch.Tensor], n: int, batch_size: int) -> torch.Tensor:
    """``compute`` over consecutive slices of ``n`` examples, concatenated. On running out
    of device memory the batch is halved and retried (down to one example) instead of
    failing the run; the smaller size is kept for the remaining batches."""
    outputs, start = [], 0
    while start < n:
        stop = min(start + batch_size, n)
        try:
            outputs.append(compute(slice(start, stop)))
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            warnings.warn(
                f"out of device memory: retrying with batches of {batch_size}", stacklevel=2
            )
            continue
        start = stop
    return torch.cat(outputs) if outputs else compute(slice(0, 0))  # no examples: empty


@torch.no_grad()
def encode(encoder: nn.Module, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Latent vectors ``[N, d]`` of any number of inputs, ``batch_size`` at a time, each
    batch moved to the encoder's device (the inputs may stay on the CPU)."""
    device = next(encoder.parameters(), inputs).device  # a parameterless encoder: in place
    return in_batches(
        lambda batch: encoder(inputs[batch].to(device)).flatten(1), len(inputs), batch_size
    )
