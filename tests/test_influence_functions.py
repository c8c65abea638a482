"""Influence Functions' three solvers against closed forms, against each other and Captum.

``exact`` is checked against a damped inverse written apart from it; ``krylov`` against
``exact`` as its rank grows and against ``lissa`` at the paper's kind of settings; LiSSA's
polynomial against the recursion run by hand.
"""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from test_loss_based import (
    DENOISING,
    DTYPE,
    RECONSTRUCTION,
    corpus_for,
    exact_influence,
    n_encoder_parameters,
    one_thread,  # noqa: F401 (the autouse fixture, shared)
    tiny_model,
    toy_data,
)
from torch import nn

from lfxbench.loss_gradients import EncoderLoss
from lfxbench.methods.influence_functions import EXACT_MAX_PARAMETERS, lanczos, lissa_polynomial
from lfxbench.registry import METHODS

INFLUENCE = METHODS.get("influence_functions")


def scores(corpus, test_inputs, test_labels, seed: int = 0, **params) -> torch.Tensor:
    method = INFLUENCE(**params)
    torch.manual_seed(seed)
    method.fit(corpus)
    return method.attribute(test_inputs, test_labels)


def relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    return ((estimate - reference).norm() / reference.norm()).item()


def min_row_spearman(first: torch.Tensor, second: torch.Tensor) -> float:
    return min(stats.spearmanr(a, b).statistic for a, b in zip(first, second, strict=True))


# An indefinite Hessian (eigenvalues about -0.36 … 0.41) made positive definite by the
# damping: damping × scale = 0.45.
DAMPED = {"damping": 0.45, "scale": 1.0}


@pytest.fixture(scope="module")
def problem():
    model = tiny_model(batchnorm=False)
    corpus = corpus_for(model, RECONSTRUCTION, n_train=16)
    test_inputs, test_labels = toy_data(4, seed=4)
    return model, corpus, test_inputs, test_labels


def test_lissa_polynomial_is_the_recursion_run_by_hand():
    eigenvalues = torch.tensor([-0.5, 0.0, 0.3, 2.0, 9.0], dtype=DTYPE)
    damping, scale, depth = 0.01, 10.0, 37
    h = torch.ones_like(eigenvalues)  # one eigenvector's coefficient, v = 1
    for _ in range(depth):
        h = 1 + (1 - damping) * h - eigenvalues * h / scale
    torch.testing.assert_close(lissa_polynomial(eigenvalues, damping, scale, depth), h / scale)
    # Depth 0 returns v / scale; a deep recursion reaches the damped inverse.
    torch.testing.assert_close(
        lissa_polynomial(eigenvalues, damping, scale, 0), torch.full_like(h, 1 / scale)
    )
    deep = lissa_polynomial(eigenvalues[1:], damping, scale, 20_000)
    torch.testing.assert_close(deep, 1 / (eigenvalues[1:] + damping * scale))


def test_lanczos_finds_the_extreme_eigenvalues_of_a_symmetric_matrix():
    generator = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(60, 60, generator=generator, dtype=DTYPE))
    spectrum = torch.cat(
        [
            torch.tensor([50.0, 20.0, -8.0], dtype=DTYPE),
            torch.rand(57, generator=generator, dtype=DTYPE),
        ]
    )
    matrix = basis @ torch.diag(spectrum) @ basis.T
    start = torch.randn(60, generator=generator, dtype=DTYPE)
    values, vectors = lanczos(lambda q: matrix @ q, start, rank=25)
    assert values.max().item() == pytest.approx(50.0, rel=1e-8)
    assert values.min().item() == pytest.approx(-8.0, rel=1e-6)
    torch.testing.assert_close(vectors.T @ vectors, torch.eye(25, dtype=DTYPE), atol=1e-10, rtol=0)
    # The whole space: an invariant Krylov space stops it early, with the exact spectrum.
    values, _ = lanczos(lambda q: matrix @ q, start, rank=200)
    torch.testing.assert_close(values, spectrum.sort().values, atol=1e-9, rtol=0)


def test_exact_is_the_closed_form_damped_inverse(problem):
    model, corpus, test_inputs, test_labels = problem
    reference, eigenvalues = exact_influence(
        model, RECONSTRUCTION, corpus, test_inputs, test_labels, damping=0.45
    )
    assert eigenvalues.min() > 0
    exact = scores(corpus, test_inputs, test_labels, solver="exact", target="inverse", **DAMPED)
    torch.testing.assert_close(exact, reference, rtol=1e-9, atol=1e-12)


def test_exact_on_a_linear_encoder_is_the_least_squares_closed_form():
    """Linear encoder, fixed linear decoder, MSE: H = 2/n Σ (D ⊗ x)ᵀ(D ⊗ x) in closed form."""

    class LinearAutoencoder(type(tiny_model())):
        def __init__(self):
            nn.Module.__init__(self)
            self.encoder = nn.Linear(6, 2, bias=False)
            self.decoder = nn.Linear(2, 6, bias=False)

        def loss(self, inputs, labels, recipe):
            return (self.decoder(self.encoder(inputs)) - inputs).pow(2).sum(dim=1)

    torch.manual_seed(0)
    model = LinearAutoencoder().to(DTYPE).eval()
    corpus = corpus_for(model, RECONSTRUCTION, n_train=30)
    test_inputs, test_labels = toy_data(3, seed=5)
    decoder = model.decoder.weight.detach()  # [6, 2]
    # loss(W) = |D W x − x|²: gradient 2 Dᵀ(D W x − x) xᵀ, Hessian (2 DᵀD) ⊗ (x xᵀ), row-major W.
    x = corpus.train_inputs
    hessian = torch.kron(2 * decoder.T @ decoder, x.T @ x / len(x))

    def gradient(inputs):
        residual = inputs @ model.encoder.weight.detach().T @ decoder.T - inputs
        return torch.einsum("ni,nj->nij", 2 * residual @ decoder, inputs).flatten(1)

    damping = 0.1
    expected = gradient(test_inputs) @ torch.linalg.solve(
        hessian + damping * torch.eye(12, dtype=DTYPE), gradient(corpus.inputs).T
    )
    exact = scores(
        corpus,
        test_inputs,
        test_labels,
        solver="exact",
        target="inverse",
        damping=damping,
        scale=1.0,
    )
    torch.testing.assert_close(exact, expected, rtol=1e-9, atol=1e-12)


def test_krylov_inverse_converges_to_exact_as_the_rank_grows(problem):
    _, corpus, test_inputs, test_labels = problem
    exact = scores(corpus, test_inputs, test_labels, solver="exact", target="inverse", **DAMPED)
    n_parameters = n_encoder_parameters(corpus.model)
    errors = [
        relative_error(
            scores(
                corpus,
                test_inputs,
                test_labels,
                solver="krylov",
                target="inverse",
                rank=rank,
                **DAMPED,
            ),
            exact,
        )
        for rank in (2, 10, 20, n_parameters)
    ]
    assert errors[0] > 0.1  # low rank leaves out curvature that matters here
    assert errors == sorted(errors, reverse=True), errors
    assert errors[-1] < 1e-10, errors


def test_krylov_with_lissa_target_matches_lissa(problem):
    _, corpus, test_inputs, test_labels = problem
    settings = {"damping": 1e-3, "scale": 10.0, "recursion_depth": 20}
    # LiSSA's minibatches are independent, so its expectation is p(H) of the full
    # training Hessian; 2,000 examples drawn per step from 16 come close to it.
    lissa = scores(
        corpus, test_inputs, test_labels, solver="lissa", hessian_batch_size=2000, **settings
    )
    exact = scores(corpus, test_inputs, test_labels, solver="exact", target="lissa", **settings)
    krylov = scores(
        corpus, test_inputs, test_labels, solver="krylov", target="lissa", rank=20, **settings
    )
    assert relative_error(lissa, exact) < 0.01
    assert relative_error(krylov, exact) < 0.02
    assert min_row_spearman(krylov, lissa) >= 0.99
    # At a shallow depth the polynomial is nearly flat: a low rank is enough.
    shallow = {**settings, "recursion_depth": 5}
    lissa = scores(
        corpus, test_inputs, test_labels, solver="lissa", hessian_batch_size=2000, **shallow
    )
    krylov = scores(corpus, test_inputs, test_labels, solver="krylov", rank=5, **shallow)
    assert min_row_spearman(krylov, lissa) >= 0.99


def test_lissa_memory_budget_sets_the_blocks_not_the_result():
    model = tiny_model()
    corpus = corpus_for(model, DENOISING)
    test_inputs, test_labels = toy_data(3, seed=4)
    params = {"solver": "lissa", "recursion_depth": 6, "hessian_batch_size": 6}
    roomy = scores(corpus, test_inputs, test_labels, **params)
    # A budget below one vector's pairs: one vector per block.
    tight = scores(corpus, test_inputs, test_labels, memory_budget_mb=1e-5, **params)
    pairs = INFLUENCE(**params, memory_budget_mb=1e-5).pairs_per_pass(
        EncoderLoss(model, DENOISING), corpus
    )
    assert pairs < params["hessian_batch_size"]  # every block holds a single vector
    torch.testing.assert_close(tight, roomy, rtol=1e-9, atol=1e-14)


def test_krylov_is_repeatable_under_a_seed_and_uses_a_fixed_noise_draw():
    model = tiny_model()
    corpus = corpus_for(model, DENOISING)
    test_inputs, test_labels = toy_data(3, seed=4)
    first = scores(corpus, test_inputs, test_labels, solver="krylov", rank=8)
    torch.testing.assert_close(
        scores(corpus, test_inputs, test_labels, solver="krylov", rank=8), first, rtol=0, atol=0
    )
    assert not torch.equal(
        scores(corpus, test_inputs, test_labels, seed=1, solver="krylov", rank=8), first
    )


def test_exact_refuses_a_large_encoder_and_lissa_a_target_it_cannot_reach():
    big = nn.Sequential(nn.Linear(N := 70, N), nn.Tanh(), nn.Linear(N, 2))
    assert sum(p.numel() for p in big.parameters()) > EXACT_MAX_PARAMETERS
    model = tiny_model()
    model.encoder = big.to(DTYPE)
    model.decoder = nn.Linear(2, N).to(DTYPE)
    corpus = corpus_for(model, RECONSTRUCTION)
    corpus.inputs = torch.randn(4, N, dtype=DTYPE)
    corpus.train_inputs = torch.randn(8, N, dtype=DTYPE)
    with pytest.raises(ValueError, match="at most 4,096 encoder parameters: use 'krylov'"):
        INFLUENCE(solver="exact").fit(corpus)
    with pytest.raises(ValueError, match="target must be 'lissa'"):
        INFLUENCE(solver="lissa", target="inverse")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_krylov_inverse_agrees_with_captums_arnoldi_influence(problem, tmp_path):
    """Captum's ArnoldiInfluenceFunction on the model's own (label-free) loss.

    Captum takes the Hessian of the *summed* loss and adds ``hessian_reg`` to it; at full
    rank with ``hessian_reg = n · damping`` its scores are ours divided by ``n``. Captum
    drops the last Arnoldi vector, so it needs ``P + 1`` steps and no early stop
    (``arnoldi_tol=0``) to keep all ``P`` directions.
    """
    arnoldi = pytest.importorskip("captum.influence._core.arnoldi_influence_function")
    model, corpus, test_inputs, test_labels = problem

    class Reconstruction(nn.Module):  # Captum's model(*features) -> output, loss(output, target)
        def __init__(self):
            super().__init__()
            self.autoencoder = model

        def forward(self, inputs):
            return model.decoder(model.encoder(inputs))

    wrapper = Reconstruction()
    checkpoint = tmp_path / "model.pt"
    torch.save(wrapper.state_dict(), checkpoint)
    n_train = len(corpus.train_inputs)
    n_parameters = n_encoder_parameters(model)
    captum = arnoldi.ArnoldiInfluenceFunction(
        wrapper,
        torch.utils.data.TensorDataset(corpus.inputs, corpus.inputs),
        str(checkpoint),
        layers=["autoencoder.encoder.0", "autoencoder.encoder.2"],
        loss_fn=lambda output, target: (output - target).pow(2).mean(dim=1),
        batch_size=n_train,
        hessian_dataset=torch.utils.data.TensorDataset(corpus.train_inputs, corpus.train_inputs),
        projection_dim=n_parameters,
        arnoldi_dim=n_parameters + 1,
        arnoldi_tol=0.0,
        hessian_reg=n_train * 0.45,
        hessian_inverse_tol=1e-12,
    )
    theirs = captum.influence((test_inputs, test_inputs))
    ours = scores(
        corpus,
        test_inputs,
        test_labels,
        solver="krylov",
        target="inverse",
        rank=n_parameters,
        **DAMPED,
    )
    assert relative_error(theirs * n_train, ours) < 1e-6


def test_a_suite_asking_lissa_for_the_inverse_is_refused_at_validation():
    from lfxbench.params import validate_params

    values, problems = validate_params(INFLUENCE, {"solver": "lissa", "target": "inverse"})
    assert values == {}
    assert problems == [
        (
            "target",
            "solver 'lissa' computes LiSSA's own estimate: target must be 'lissa' "
            "(use solver 'krylov' or 'exact' for 'inverse')",
        )
    ]
    values, problems = validate_params(INFLUENCE, {"solver": "krylov", "target": "inverse"})
    assert problems == [] and values["target"] == "inverse"
