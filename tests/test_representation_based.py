"""Deep-KNN, SimplEx and the random example reference on tiny encoders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lfxbench.methods.base import TrainingCorpus
from lfxbench.models.mnist_autoencoder import MnistAutoencoder
from lfxbench.recipe import Recipe
from lfxbench.registry import METHODS


class Rotated(nn.Module):
    """``Q f``: the same latent space up to an orthogonal map."""

    def __init__(self, encoder: nn.Module, rotation: torch.Tensor):
        super().__init__()
        self.encoder, self.rotation = encoder, rotation

    def forward(self, inputs):
        return self.encoder(inputs) @ self.rotation.T


def corpus_for(encoder: nn.Module, inputs, labels, batch_size: int = 7) -> TrainingCorpus:
    model = MnistAutoencoder(latent_dim=4)
    model.encoder = encoder
    return TrainingCorpus(
        model=model,
        recipe=Recipe(),
        inputs=inputs,
        labels=labels,
        train_inputs=inputs,
        train_labels=labels,
        batch_size=batch_size,
    )


def scores(name: str, encoder, corpus_inputs, test_inputs, **params):
    method = METHODS.get(name)(**params)
    labels = torch.zeros(len(corpus_inputs), dtype=torch.long)
    method.fit(corpus_for(encoder, corpus_inputs, labels))
    torch.manual_seed(0)
    return method.attribute(test_inputs, torch.zeros(len(test_inputs), dtype=torch.long))


@pytest.fixture
def setup():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    corpus, test = torch.randn(20, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    return encoder, corpus, test, rotation


def test_deep_knn_scores_are_inverse_latent_distances(setup):
    encoder, corpus, test, _ = setup
    result = scores("deep_knn", encoder, corpus, test)
    with torch.no_grad():
        distances = torch.cdist(encoder(test), encoder(corpus))
    assert result.shape == (5, 20)
    torch.testing.assert_close(result, 1 / (distances + 1e-8))
    # the corpus copy of a test example is its most important one
    with_copy = torch.cat([corpus, test[:1]])
    assert scores("deep_knn", encoder, with_copy, test[:1]).argmax().item() == 20


def test_deep_knn_squared_kernel_is_the_square_of_the_inverse_distances():
    # Latents are the inputs: from (0, 1) the corpus lies at distances 1, sqrt(18), sqrt(2).
    corpus = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]], dtype=torch.float64)
    test = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    inverse = scores("deep_knn", nn.Identity(), corpus, test, epsilon=0.0)
    squared = scores(
        "deep_knn", nn.Identity(), corpus, test, kernel="inverse_squared_distance", epsilon=0.0
    )
    expected = torch.tensor([[1.0, 1 / 18, 1 / 2]], dtype=torch.float64)
    torch.testing.assert_close(squared, expected)
    torch.testing.assert_close(inverse, expected.sqrt())
    torch.testing.assert_close(squared, inverse.square())


def test_deep_knn_kernels_rank_every_row_alike(setup):
    encoder, corpus, test, _ = setup
    inverse = scores("deep_knn", encoder, corpus, test)
    squared = scores("deep_knn", encoder, corpus, test, kernel="inverse_squared_distance")
    assert torch.equal(inverse.argsort(dim=1), squared.argsort(dim=1))
    assert not torch.allclose(inverse, squared)  # the same order, not the same scores


@pytest.mark.parametrize("name", ["deep_knn", "simplex"])
def test_invariant_under_an_orthogonal_map_of_the_latent_space(setup, name):
    encoder, corpus, test, rotation = setup
    params = {"n_steps": 300} if name == "simplex" else {}
    plain = scores(name, encoder, corpus, test, **params)
    rotated = scores(name, Rotated(encoder, rotation), corpus, test, **params)
    torch.testing.assert_close(rotated, plain, rtol=1e-6, atol=1e-8)


def test_simplex_weights_lie_on_the_simplex_and_reconstruct(setup):
    encoder, corpus, _, _ = setup
    inside = corpus[:3].mean(dim=0, keepdim=True)  # its latent is near the corpus hull
    weights = scores(
        "simplex", encoder, corpus, torch.cat([corpus[:1], inside]), n_steps=3000, lr=0.1
    )
    assert torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, dtype=weights.dtype))
    with torch.no_grad():
        latents = encoder(corpus)
        reconstruction = weights @ latents
    # A corpus example is explained by itself.
    assert weights[0].argmax().item() == 0
    assert (reconstruction[0] - latents[0]).norm() < 0.05 * latents[0].norm()


def test_random_examples_shape_and_seed(setup):
    encoder, corpus, test, _ = setup
    first = scores("random_examples", encoder, corpus, test)
    second = scores("random_examples", encoder, corpus, test)
    assert first.shape == (5, 20)
    assert torch.equal(first, second)
