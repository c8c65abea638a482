"""Runtime of example importance on the paper's MNIST autoencoder (eval mode).

Not part of the default run:
    pytest -m benchmark --benchmark-enable tests/benchmarks/test_bench_loss_based.py

* ``per-sample gradients``: gradients of 256 examples' own losses w.r.t. the encoder's
  parameters, ``torch.func`` (``lfxbench.loss_gradients``) beside a plain per-example
  autograd loop: the speed-up is their ratio.
* ``example methods``: ``fit`` on a 256-example corpus then ``attribute`` for 64 test
  examples (one 64 × 256 block; ``extra_info["pairs"]`` turns the mean into a time per
  (test, train) pair), for every registered example method. TracIn with one checkpoint
  (its cost grows linearly with the checkpoints); Influence Functions with its default
  (Krylov) solver.
* ``influence solvers``: the same block for each solver of Influence Functions: LiSSA
  at a depth of ``LISSA_DEPTH`` (linear in the depth and in the corpus: the paper's 100
  is ``100 / LISSA_DEPTH`` times the recursion part), Krylov with ``KRYLOV_RANK``
  Lanczos steps on a fixed Hessian batch of ``N_TRAIN`` for each target (almost
  independent of the depth and of the corpus size).
"""

from __future__ import annotations

import pytest
import torch

from lfxbench.loss_gradients import per_example_gradients
from lfxbench.methods.base import TrainingCorpus
from lfxbench.models.mnist_autoencoder import MnistAutoencoder
from lfxbench.recipe import Recipe
from lfxbench.registry import METHODS

pytestmark = pytest.mark.benchmark

N_CORPUS, N_TEST, N_TRAIN, LISSA_DEPTH, KRYLOV_RANK = 256, 64, 1000, 5, 30
RECIPE = Recipe()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MnistAutoencoder(latent_dim=4).eval()


def images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=generator), torch.zeros(n, dtype=torch.long)


@pytest.fixture(scope="module")
def corpus(model):
    inputs, labels = images(N_CORPUS, seed=0)
    train_inputs, train_labels = images(N_TRAIN, seed=1)
    return TrainingCorpus(
        model=model,
        recipe=RECIPE,
        inputs=inputs,
        labels=labels,
        train_inputs=train_inputs,
        train_labels=train_labels,
        batch_size=256,
    )


def loop_gradients(model, inputs, labels) -> torch.Tensor:
    parameters = list(model.encoder_parameters())
    rows = []
    for i in range(len(inputs)):
        loss = model.loss(inputs[i : i + 1], labels[i : i + 1], RECIPE).sum()
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, parameters)]))
    return torch.stack(rows)


def test_per_sample_gradients_torch_func(benchmark, model, corpus):
    benchmark.group = "per-sample gradients, 256 MNIST images"
    gradients = benchmark(per_example_gradients, model, RECIPE, corpus.inputs, corpus.labels, 256)
    assert gradients.shape == (N_CORPUS, sum(p.numel() for p in model.encoder.parameters()))


def test_per_sample_gradients_autograd_loop(benchmark, model, corpus):
    benchmark.group = "per-sample gradients, 256 MNIST images"
    gradients = benchmark(loop_gradients, model, corpus.inputs, corpus.labels)
    torch.testing.assert_close(
        gradients, per_example_gradients(model, RECIPE, corpus.inputs, corpus.labels)
    )


EXAMPLE_METHODS = [name for name in METHODS.names() if METHODS.get(name).explains == "example"]
INFLUENCE_SOLVERS = {
    "lissa": {"solver": "lissa", "recursion_depth": LISSA_DEPTH, "hessian_batch_size": 200},
    "krylov, target lissa": {"solver": "krylov", "target": "lissa", "rank": KRYLOV_RANK},
    "krylov, target inverse": {"solver": "krylov", "target": "inverse", "rank": KRYLOV_RANK},
}


@pytest.mark.parametrize("name", EXAMPLE_METHODS)
def test_example_method_block(benchmark, corpus, name):
    benchmark.group = f"example methods, {N_TEST} test x {N_CORPUS} corpus"
    fit_and_score_a_block(benchmark, corpus, name, {})


@pytest.mark.parametrize("solver", INFLUENCE_SOLVERS)
def test_influence_solver_block(benchmark, corpus, solver):
    benchmark.group = f"influence solvers, {N_TEST} test x {N_CORPUS} corpus"
    fit_and_score_a_block(benchmark, corpus, "influence_functions", INFLUENCE_SOLVERS[solver])


def fit_and_score_a_block(benchmark, corpus, name: str, params: dict) -> None:
    test_inputs, test_labels = images(N_TEST, seed=2)

    def fit_and_attribute() -> torch.Tensor:
        method = METHODS.get(name)(**params)
        torch.manual_seed(0)
        method.fit(corpus)
        return method.attribute(test_inputs, test_labels)

    benchmark.extra_info["pairs"] = N_TEST * N_CORPUS
    scores = benchmark.pedantic(fit_and_attribute, rounds=3, iterations=1, warmup_rounds=1)
    assert scores.shape == (N_TEST, N_CORPUS)
    assert torch.isfinite(scores).all()
