"""Runtime of SimplEx's two solvers on the paper's example-importance scale.

Not part of the default run:
    pytest -m benchmark --benchmark-enable tests/benchmarks/test_bench_simplex.py

1,000 test latents explained by 1,000 corpus latents, d = 4, the latents of a randomly
initialised MNIST autoencoder (eval mode) on uniform-noise images, float32, on the CPU.
Only the solve is timed (``attribute`` on precomputed latents through an identity
encoder; ``fit`` happens once, outside). ``extra_info`` records the iterations (Adam: its
steps), the mean objective ``||wᵀC − h||²`` and the mean duality gap, both also relative
to the rows' scale ``mean_j ||C_j − h||²``, and whether the tolerance was met:

* ``projected_gradient``: the default (FISTA with restart and line search, tolerance 1e-6);
* ``adam``: the reference code's protocol the paper suites pin (lr 1e-3, 1,000 steps).
"""

from __future__ import annotations

import pytest
import torch
from test_representation_based import corpus_for
from torch import nn

from lfxbench.models.mnist_autoencoder import MnistAutoencoder
from lfxbench.registry import METHODS

pytestmark = pytest.mark.benchmark

N_CORPUS, N_TEST, LATENT_DIM = 1000, 1000, 4
SOLVERS = {
    "projected_gradient": {"solver": "projected_gradient"},
    "adam": {"solver": "adam", "n_steps": 1000, "lr": 1e-3},
}


@pytest.fixture(scope="module")
def latents() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = MnistAutoencoder(latent_dim=LATENT_DIM).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        corpus = model.encoder(torch.rand(N_CORPUS, 1, 28, 28, generator=generator))
        test = model.encoder(torch.rand(N_TEST, 1, 28, 28, generator=generator))
    return corpus.flatten(1), test.flatten(1)


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_simplex_solver(benchmark, latents, solver):
    corpus_latents, test_latents = latents
    method = METHODS.get("simplex")(**SOLVERS[solver])
    labels = torch.zeros(N_TEST, dtype=torch.long)
    method.fit(corpus_for(nn.Identity(), corpus_latents, labels, batch_size=N_TEST))

    benchmark.group = f"simplex, {N_TEST} test x {N_CORPUS} corpus, d={LATENT_DIM}"
    weights = benchmark.pedantic(
        method.attribute, args=(test_latents, labels), rounds=1, iterations=1
    )
    assert weights.shape == (N_TEST, N_CORPUS)
    solution = method.solution
    scale = solution.scale
    benchmark.extra_info.update(
        iterations_max=int(solution.iterations.max()),
        iterations_mean=float(solution.iterations.double().mean()),
        objective_mean=float(solution.objective.mean()),
        relative_objective_mean=float((solution.objective / scale).mean()),
        gap_mean=float(solution.gap.mean()),
        relative_gap_mean=float((solution.gap / scale).mean()),
        relative_gap_max=float((solution.gap / scale).max()),
        converged=solution.converged,
    )
    assert torch.isfinite(weights).all()
