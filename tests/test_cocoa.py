"""COCOA: the contrastive corpus target, its Captum attributions and its invariances."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lfxbench.methods.cocoa import Cocoa
from lfxbench.params import validate_params


def tiny_encoder(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 5))


class Rotated(nn.Module):
    def __init__(self, encoder: nn.Module, rotation: torch.Tensor):
        super().__init__()
        self.encoder, self.rotation = encoder, rotation

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encoder(inputs) @ self.rotation.T


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(60, 1, 4, 4, generator=generator), torch.randn(
        3, 1, 4, 4, generator=generator
    )


def prepared(encoder, train, **params) -> Cocoa:
    method = Cocoa(encoder, **params)
    torch.manual_seed(7)
    method.prepare(train)
    return method


def test_random_corpus_target_is_corpus_minus_foil_similarity(data):
    train, test = data
    encoder = tiny_encoder()
    method = prepared(encoder, train, base="saliency", corpus_size=10, foil_size=30)
    torch.manual_seed(7)
    order = torch.randperm(len(train))
    corpus, foil = train[order[:10]], train[order[10:40]]
    with torch.no_grad():
        explicand = F.normalize(encoder(test), dim=1)
        expected = (explicand @ F.normalize(encoder(corpus), dim=1).T).mean(1) - (
            explicand @ F.normalize(encoder(foil), dim=1).T
        ).mean(1)
        auxiliary = method.base.auxiliary
        target = auxiliary(test, auxiliary.reference_latents(test))
    torch.testing.assert_close(target, expected)


def test_saliency_base_is_the_gradient_of_the_target(data):
    train, test = data
    encoder = tiny_encoder()
    method = prepared(encoder, train, base="saliency", corpus_size=10, foil_size=30)
    directions = method.base.auxiliary.reference_latents(test)
    inputs = test.clone().requires_grad_()
    target = (F.normalize(encoder(inputs), dim=1) * directions).sum()
    (gradient,) = torch.autograd.grad(target, inputs)
    torch.testing.assert_close(method.attribute(test, torch.zeros_like(test)), gradient.abs())


def test_integrated_gradients_base_is_complete(data):
    train, test = data
    method = prepared(tiny_encoder(), train, base="integrated_gradients", n_steps=200)
    baselines = torch.zeros_like(test)
    attributions = method.attribute(test, baselines)
    auxiliary = method.base.auxiliary
    directions = auxiliary.reference_latents(test)
    with torch.no_grad():
        gap = auxiliary(test, directions) - auxiliary(baselines, directions)
    torch.testing.assert_close(attributions.flatten(1).sum(1), gap, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("corpus", ["random", "neighbours"])
def test_invariant_to_an_orthogonal_map_of_the_representation(data, corpus):
    train, test = data
    encoder = tiny_encoder()
    rotation, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(3)))
    params = {"corpus": corpus, "corpus_size": 5, "foil_size": 20}
    plain = prepared(encoder, train, **params)
    rotated = prepared(Rotated(encoder, rotation), train, **params)
    baselines = torch.zeros_like(test)
    torch.testing.assert_close(
        plain.attribute(test, baselines), rotated.attribute(test, baselines), atol=1e-5, rtol=1e-4
    )


def test_neighbour_corpus_is_each_explicands_nearest_training_examples(data):
    train, _ = data
    encoder = tiny_encoder()
    method = prepared(encoder, train, corpus="neighbours", corpus_size=1, foil_size=20)
    auxiliary = method.base.auxiliary
    # A training example is its own nearest neighbour: its corpus direction is itself.
    with torch.no_grad():
        own = F.normalize(encoder(train[:4]), dim=1)
    torch.testing.assert_close(auxiliary.corpus_directions(train[:4]), own)


def test_attribute_before_prepare_is_refused(data):
    _, test = data
    with pytest.raises(RuntimeError, match="prepare"):
        Cocoa(tiny_encoder()).attribute(test, torch.zeros_like(test))


def test_suite_params_are_validated():
    _, problems = validate_params(Cocoa, {"base": "random", "corpus_size": 0}, skip=("encoder",))
    assert {field for field, _ in problems} == {"base", "corpus_size"}


def test_the_engine_re_explains_with_the_draws_of_the_judged_explanation(tmp_path):
    """Metrics that re-explain (noise score, parameter randomisation, ROAR) must see the
    same corpus, foil and masks as the cached explanation they judge."""
    from lfxbench.runner import Runner
    from lfxbench.suite import validate_suite

    suite = validate_suite(
        {
            "name": "redraw",
            "device": "cpu",
            "datasets": [{"name": "mnist_5k", "params": {"n_train": 100, "n_test": 10}}],
            "models": [
                {
                    "id": "ae",
                    "name": "mnist_autoencoder",
                    "dataset": "mnist_5k",
                    "recipe": {"epochs": 1},
                }
            ],
            "methods": [
                {"name": "cocoa", "params": {"corpus_size": 5, "foil_size": 20, "n_steps": 4}},
                {"name": "relax", "params": {"n_masks": 20, "mask_batch": 10}},
            ],
            "metrics": ["sparseness"],
        }
    )
    runner = Runner(suite, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    for cell in suite.cells():
        explained = runner.explain(cell)
        again = runner.explain_inputs(cell, explained.trained, explained.inputs)
        torch.testing.assert_close(again, explained.attributions)
