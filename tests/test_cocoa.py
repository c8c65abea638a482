"""COCOA: the contrastive corpus target, its Captum attributions and its invariances."""

from __future__ import annotations

import math

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


def prepared(encoder, train, labels=None, **params) -> Cocoa:
    method = Cocoa(encoder, **params)
    torch.manual_seed(7)
    method.prepare(train, labels)
    return method


def test_random_corpus_target_is_corpus_minus_foil_similarity(data):
    train, test = data
    encoder = tiny_encoder()
    method = prepared(
        encoder, train, base="saliency", corpus="random", corpus_size=10, foil_size=30
    )
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
    method = prepared(
        encoder, train, base="saliency", corpus="random", corpus_size=10, foil_size=30
    )
    directions = method.base.auxiliary.reference_latents(test)
    inputs = test.clone().requires_grad_()
    target = (F.normalize(encoder(inputs), dim=1) * directions).sum()
    (gradient,) = torch.autograd.grad(target, inputs)
    torch.testing.assert_close(method.attribute(test, torch.zeros_like(test)), gradient.abs())


def test_integrated_gradients_base_is_complete(data):
    train, test = data
    method = prepared(
        tiny_encoder(), train, base="integrated_gradients", corpus="random", n_steps=200
    )
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


def identity_encoder() -> nn.Module:
    """Latents are the 2-d inputs themselves (a module with parameters, as Captum wants)."""
    encoder = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        encoder.weight.copy_(torch.eye(2))
    return encoder


def test_same_class_corpus_holds_only_the_label_and_the_foil_lies_outside_it(data):
    train, _ = data
    labels = torch.arange(len(train)) % 3  # 20 training examples per label
    method = prepared(tiny_encoder(), train, labels, corpus_size=5, foil_size=30)
    assert set(method.draws) == {0, 1, 2}
    for label, (corpus, foil) in method.draws.items():
        assert len(corpus) == 5 and len(set(corpus.tolist())) == 5
        assert (labels[corpus] == label).all()
        assert len(foil) == 30 and len(set(foil.tolist())) == 30
        assert not set(foil.tolist()) & set(corpus.tolist())
    # A foil larger than what is left is everything outside the corpus, other labels and
    # the label's own leftovers alike (the authors' code draws it from the leftovers).
    method = prepared(tiny_encoder(), train, labels, corpus_size=5, foil_size=1000)
    corpus, foil = method.draws[1]
    assert sorted(foil.tolist()) == sorted(set(range(len(train))) - set(corpus.tolist()))


def test_same_class_directions_and_saliency_known_answer():
    # Unit embeddings: label 0 -> (1, 0), label 1 -> (0, 1), label 2 -> (-1, 0).
    train = torch.tensor([[1.0, 0], [2, 0], [3, 0], [0, 1], [0, 2], [-1, 0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    method = prepared(
        identity_encoder(), train, labels, base="saliency", corpus_size=2, foil_size=100
    )
    # Label 0: corpus two of (1, 0); foil the other four: (1, 0), (0, 1) twice, (-1, 0),
    # mean (0, 1/2). Label 1: corpus (0, 1); foil (1, 0) thrice and (-1, 0): (1/2, 0).
    # Label 2: corpus (-1, 0); foil (1, 0) thrice and (0, 1) twice: (3/5, 2/5).
    expected = torch.tensor([[1.0, -0.5], [-0.5, 1.0], [-1.6, -0.4]])
    explicands = torch.tensor([[2.0, 1.0]]).repeat(3, 1)  # one input under three labels
    explicand_labels = torch.tensor([0, 1, 2])
    directions = method.base.auxiliary.reference_latents(explicands, explicand_labels)
    torch.testing.assert_close(directions, expected)
    # Saliency: |d/dx <x / |x|, u>| with u picked by each explicand's label.
    inputs = explicands.clone().requires_grad_()
    target = (F.normalize(inputs, dim=1) * expected).sum()
    (gradient,) = torch.autograd.grad(target, inputs)
    attributions = method.attribute(explicands, torch.zeros_like(explicands), explicand_labels)
    torch.testing.assert_close(attributions, gradient.abs())
    # The same explicand under another label is explained against another corpus.
    assert not torch.allclose(attributions[0], attributions[1])


def test_same_class_without_labels_or_with_an_unknown_label_is_a_clear_error():
    train = torch.tensor([[1.0, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"same_class.*training labels"):
        Cocoa(identity_encoder()).prepare(train)
    method = prepared(identity_encoder(), train, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"same_class.*labels"):
        method.attribute(train, torch.zeros_like(train))
    with pytest.raises(ValueError, match="no training example has label 7"):
        method.attribute(train, torch.zeros_like(train), torch.tensor([0, 7]))
    # The label-free corpora need none.
    free = prepared(identity_encoder(), train, corpus="random", corpus_size=1, foil_size=1)
    assert free.attribute(train, torch.zeros_like(train)).shape == train.shape


def test_re_explaining_metrics_pass_the_labels_of_the_examples_they_stand_for():
    from lfxbench.baselines import Baseline
    from lfxbench.metrics.base import EvaluationContext
    from lfxbench.registry import METRICS

    inputs = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    seen = []

    def explain(batch, batch_labels):
        seen.append(batch_labels)
        return batch.clone()

    def explain_with(encoder, batch, batch_labels):
        seen.append(batch_labels)
        return torch.rand(batch.shape, generator=torch.Generator().manual_seed(len(seen)))

    def context(**hooks) -> EvaluationContext:
        return EvaluationContext(
            encoder=tiny_encoder().eval(),
            inputs=inputs,
            labels=labels,
            attributions=inputs.clone(),
            baseline=Baseline(),
            train_inputs=inputs,
            train_labels=torch.zeros(len(inputs)),
            batch_size=4,  # two chunks for Quantus: 4 examples, then 2
            device=torch.device("cpu"),
            seed=0,
            **hooks,
        )

    METRICS.get("noise_score")()(context(explain=explain))
    # Real-vs-noise and noise-vs-noise: two noise inputs stand in for each real one.
    torch.testing.assert_close(seen.pop(), torch.cat([labels, labels]))
    METRICS.get("model_parameter_randomisation")(n_examples=6)(context(explain_with=explain_with))
    assert seen  # once per chunk and randomisation step, each chunk with its own labels
    assert all(torch.equal(chunk, labels[:4]) or torch.equal(chunk, labels[4:]) for chunk in seen)
    assert any(torch.equal(chunk, labels[4:]) for chunk in seen)


def tiny_runner_suite(name: str, methods: list, metrics: list):
    """A one-model suite (1 epoch, 100 MNIST images) for the runner-level tests."""
    from lfxbench.suite import validate_suite

    return validate_suite(
        {
            "name": name,
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
            "methods": methods,
            "metrics": metrics,
        }
    )


def test_same_class_cocoa_runs_end_to_end_through_the_runner(tmp_path):
    from lfxbench.execution.executors import run_locally
    from lfxbench.execution.runner import Runner

    suite = tiny_runner_suite(
        "same_class",
        [
            {
                "name": "cocoa",
                "params": {"corpus": "same_class", "corpus_size": 5, "foil_size": 20, "n_steps": 4},
            }
        ],
        ["noise_score", {"name": "model_parameter_randomisation", "params": {"n_examples": 4}}],
    )
    runner = Runner(suite, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    records = runner.run(run_locally)
    assert {record["metric"] for record in records} == {
        "noise_score",
        "model_parameter_randomisation",
    }
    assert all(math.isfinite(record["value"]) for record in records)
    cell = suite.cells()[0]
    explained = runner.explainers.explain(cell)
    assert explained.attributions.shape == explained.inputs.shape
    # Re-explaining without the explained examples' labels cannot pick their corpora.
    with pytest.raises(ValueError, match=r"same_class.*labels"):
        runner.explainers.explain_inputs(cell, explained.trained, explained.inputs)


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
    from lfxbench.execution.runner import Runner

    suite = tiny_runner_suite(
        "redraw",
        [
            {"name": "cocoa", "params": {"corpus_size": 5, "foil_size": 20, "n_steps": 4}},
            {"name": "relax", "params": {"n_masks": 20, "mask_batch": 10}},
        ],
        ["sparseness"],
    )
    runner = Runner(suite, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    for cell in suite.cells():
        explained = runner.explainers.explain(cell)
        again = runner.explainers.explain_inputs(
            cell, explained.trained, explained.inputs, labels=explained.labels
        )
        torch.testing.assert_close(again, explained.attributions)
