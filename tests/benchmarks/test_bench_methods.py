"""Runtime of every registered feature method on a fixed encoder and batch.

Not part of the default run:  pytest -m benchmark --benchmark-enable tests/benchmarks
The `overhead` group times label-free Integrated Gradients beside a bare Captum call
on the same encoder (one latent unit as target): the wrapper's cost is their ratio.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients

from lfxbench.models.mnist_autoencoder import mnist_encoder
from lfxbench.registry import METHODS

pytestmark = pytest.mark.benchmark

BATCH, N_STEPS = 256, 50


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return mnist_encoder(latent_dim=4).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0))


FEATURE_METHODS = [name for name in METHODS.names() if METHODS.get(name).explains == "feature"]
# Defaults sized for a GPU would make one round take minutes on the CPU.
# COCOA's random corpus: the benchmark's inputs carry no labels for a same-class one.
SCALED_DOWN = {
    "relax": {"n_masks": 500},
    "u_relax": {"n_masks": 500},
    "cocoa": {"corpus": "random"},
}


@pytest.mark.parametrize("name", FEATURE_METHODS)  # example methods: test_bench_loss_based.py
def test_feature_method(benchmark, encoder, images, name):
    method = METHODS.get(name)(encoder, **SCALED_DOWN.get(name, {}))
    method.prepare(torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    benchmark.group = "feature methods, 256 MNIST images (RELAX: 500 masks)"
    attributions = benchmark(method.attribute, images, torch.zeros_like(images))
    assert attributions.shape == images.shape


def test_overhead_label_free_integrated_gradients(benchmark, encoder, images):
    method = METHODS.get("integrated_gradients")(encoder, n_steps=N_STEPS)
    benchmark.group = "overhead: IG, 256 images x 50 steps"
    benchmark(method.attribute, images, torch.zeros_like(images))


def test_overhead_bare_captum_integrated_gradients(benchmark, encoder, images):
    captum_ig = IntegratedGradients(encoder)
    benchmark.group = "overhead: IG, 256 images x 50 steps"
    benchmark(
        captum_ig.attribute,
        images.clone().requires_grad_(),
        torch.zeros_like(images),
        target=0,
        n_steps=N_STEPS,
    )
