"""Throughput of RELAX on the paper's MNIST autoencoder (untrained encoder, eval mode).

Not part of the default run:
    pytest -m benchmark --benchmark-enable tests/benchmarks/test_bench_relax.py

``extra_info["masks_per_second"]`` is the number of mask evaluations (masked forward
passes, ``N_MASKS × N_EXAMPLES``) per second of the mean round: RELAX's cost is linear in
both, so it converts to any mask count and batch (e.g. the paper's 3,000 masks).
``test_forward_batch`` sweeps the masked inputs per encoder pass (``None``: the default)
for 200 MNIST images and 20 dSprites images, 200 masks each.
"""

from __future__ import annotations

import pytest
import torch

from lfxbench.registry import METHODS, MODELS

pytestmark = pytest.mark.benchmark

N_EXAMPLES, N_MASKS = 16, 500


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return MODELS.get("mnist_autoencoder")().encoder.eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(N_EXAMPLES, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", ["relax", "u_relax"])
def test_relax_masks_per_second(benchmark, encoder, images, name):
    method = METHODS.get(name)(encoder, n_masks=N_MASKS)
    baselines = torch.zeros_like(images)
    benchmark.group = f"RELAX, {N_EXAMPLES} MNIST images x {N_MASKS} masks"
    torch.manual_seed(0)
    attributions = benchmark.pedantic(
        method.attribute, args=(images, baselines), rounds=5, warmup_rounds=1
    )
    assert attributions.shape == images.shape
    evaluations = N_MASKS * N_EXAMPLES
    benchmark.extra_info["mask_evaluations"] = evaluations
    if benchmark.stats is not None:  # None under --benchmark-disable: one plain call
        benchmark.extra_info["masks_per_second"] = evaluations / benchmark.stats.stats.mean


SWEEP_SHAPES = {"mnist_autoencoder": (200, 1, 28, 28), "dsprites_vae": (20, 1, 64, 64)}


@pytest.mark.parametrize("model", sorted(SWEEP_SHAPES))
@pytest.mark.parametrize("forward_batch", [None, 256, 1024, 4096])
def test_forward_batch(benchmark, model, forward_batch):
    torch.manual_seed(0)
    encoder = MODELS.get(model)().encoder.eval()
    shape = SWEEP_SHAPES[model]
    images = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    method = METHODS.get("relax")(encoder, n_masks=200, forward_batch=forward_batch)
    benchmark.group = f"RELAX, {shape[0]} {model} inputs x 200 masks, by forward_batch"
    benchmark.pedantic(
        method.attribute, args=(images, torch.zeros_like(images)), rounds=5, warmup_rounds=1
    )
    if benchmark.stats is not None:
        benchmark.extra_info["masks_per_second"] = shape[0] * 200 / benchmark.stats.stats.mean
