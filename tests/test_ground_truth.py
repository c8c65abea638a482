"""Ground truth for example importance by retraining: LDS and the removal check, on a toy
whose true influence is known, the engine's stacked subset training, the cache shared by
every method, and the suites it refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from scipy import stats
from suite_runs import run
from tiny_models import TinyAutoencoder

import lfxbench.execution.subset_models as subset_models
from lfxbench.errors import SuiteError
from lfxbench.execution.ensemble import train_side_by_side
from lfxbench.execution.runner import Runner
from lfxbench.execution.subset_models import RetrainingTime
from lfxbench.execution.training import train_model
from lfxbench.metrics.base import EvaluationContext
from lfxbench.metrics.lds import LinearDatamodelingScore
from lfxbench.metrics.retrain_without_top import without_top
from lfxbench.recipe import Recipe
from lfxbench.registry import MODELS
from lfxbench.subsets import (
    SubsetOutputs,
    SubsetSpec,
    draw_subsets,
    spearman_rows,
    subset_outputs_problem,
)
from lfxbench.suite import load_suite, validate_suite

DATA = Path(__file__).parent / "data"
CPU = torch.device("cpu")


def test_subsets_have_their_size_and_depend_on_the_seeds_only():
    keep = draw_subsets(50, SubsetSpec(n_subsets=6, size=20, seed=3), model_seed=1)
    assert keep.shape == (6, 50) and keep.dtype == torch.bool
    assert keep.sum(dim=1).tolist() == [20] * 6
    assert len({tuple(row.tolist()) for row in keep}) == 6  # distinct draws
    assert torch.equal(keep, draw_subsets(50, SubsetSpec(6, 20, 3), 1))
    assert not torch.equal(keep, draw_subsets(50, SubsetSpec(6, 20, 3), 2))
    with pytest.raises(ValueError, match="subsets of 60"):
        draw_subsets(50, SubsetSpec(2, 60), 0)


def test_spearman_rows_is_scipys_spearman_with_ties_and_nan_when_constant():
    generator = torch.Generator().manual_seed(0)
    first = torch.randint(0, 4, (5, 12), generator=generator).double()  # many ties
    second = torch.randn(5, 12, generator=generator, dtype=torch.float64)
    expected = [stats.spearmanr(a, b).statistic for a, b in zip(first, second, strict=True)]
    assert spearman_rows(first, second).tolist() == pytest.approx(expected, abs=1e-12)
    assert spearman_rows(torch.ones(1, 12), second[:1]).isnan().all()


def test_without_top_removes_each_rows_highest_scores():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.0], [3.0, 2.0, 2.0, 0.0]])
    assert without_top(scores, 2).tolist() == [
        [True, False, False, True],
        [False, False, True, True],  # a tie goes by position
    ]


def synthetic_context(scores: torch.Tensor, effect: torch.Tensor, noise: float):
    """An example-method context whose retrained loss is ``-keep @ effect.T`` + noise."""

    def outputs(spec: SubsetSpec) -> SubsetOutputs:
        keep = draw_subsets(effect.shape[1], spec, 0)
        generator = torch.Generator().manual_seed(1)
        loss = -(keep.double() @ effect.T) + noise * torch.randn(
            spec.n_subsets, len(effect), generator=generator, dtype=torch.float64
        )
        return SubsetOutputs(keep, loss, -loss, torch.zeros(len(effect)))

    return EvaluationContext(
        encoder=torch.nn.Identity(),
        inputs=torch.zeros(len(scores), 1),
        labels=torch.zeros(len(scores), dtype=torch.long),
        attributions=scores,
        baseline=None,
        batch_size=64,
        device=CPU,
        seed=0,
        method_kind="example",
        corpus_labels=torch.zeros(scores.shape[1], dtype=torch.long),
        subset_outputs=outputs,
    )


def test_lds_is_one_for_the_true_effects_zero_for_noise_and_minus_one_reversed():
    generator = torch.Generator().manual_seed(0)
    effect = torch.rand(20, 100, generator=generator, dtype=torch.float64)  # helpful > 0
    metric = LinearDatamodelingScore(n_subsets=64)
    oracle = metric(synthetic_context(effect, effect, noise=0.0))
    assert oracle.value == pytest.approx(1.0)
    # the samples are the per-example values: their mean is the value
    assert sum(oracle.samples["LDS per test example"]) / 20 == pytest.approx(oracle.value)
    noise = torch.randn(20, 100, generator=generator, dtype=torch.float64)
    assert abs(metric(synthetic_context(noise, effect, noise=0.0)).value) < 0.1
    # a lower loss for subsets of helpful examples is what "higher = better" rewards
    assert metric(synthetic_context(-effect, effect, noise=0.0)).value == pytest.approx(-1.0)
    noisy = metric(synthetic_context(effect, effect, noise=1.0))
    assert 0.3 < noisy.value < 1.0
    # another draw of subsets moves a noisy LDS, not the oracle's exact one
    details = noisy.details
    assert details["subset_draw_ci_low"] < noisy.value < details["subset_draw_ci_high"]
    assert 0 < details["subset_draw_standard_error"] < 0.2
    assert oracle.details["subset_draw_standard_error"] == pytest.approx(0.0, abs=1e-12)
    latent = LinearDatamodelingScore(n_subsets=64, output="latent_cosine")
    assert latent(synthetic_context(effect, effect, noise=0.0)).value == pytest.approx(1.0)


def test_cached_outputs_of_other_subsets_are_refused():
    keep = draw_subsets(10, SubsetSpec(3, 5), 0)
    payload = SubsetOutputs(keep, torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(4)).payload()
    assert subset_outputs_problem(payload, keep, 4) is None
    assert "other subsets" in subset_outputs_problem(payload, ~keep, 4)
    assert "'loss'" in subset_outputs_problem(payload, keep, 5)


class DenoisingTinyAutoencoder(TinyAutoencoder):
    """A stochastic objective: its noise is drawn inside the (vmapped) loss."""

    def loss(self, inputs, labels, recipe):
        noisy = inputs + 0.5 * torch.randn_like(inputs)
        return ((self.decoder(self.encoder(noisy)) - inputs) ** 2).mean(dim=1)


@pytest.mark.parametrize("model", [TinyAutoencoder, DenoisingTinyAutoencoder])
def test_stacked_subset_training_equals_training_each_subset_alone(model):
    inputs = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(40, dtype=torch.long)
    test = torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    recipe = Recipe(epochs=5, batch_size=8, lr=0.05, patience=2, checkpoint_every=1)
    keep = draw_subsets(40, SubsetSpec(4, 30), 0)
    rows = torch.stack([row.nonzero().squeeze(1) for row in keep])

    def fresh():
        torch.manual_seed(7)
        return model()

    def test_loss(member):
        with torch.no_grad():
            torch.manual_seed(3)  # the same noise for every model compared
            return member.loss(test, None, recipe)

    stacked = [fresh() for _ in rows]
    logs = train_side_by_side(stacked, inputs, labels, recipe, [7] * 4, CPU, examples=rows)
    # what a member learns does not depend on the rest of its stack
    last_alone = [fresh()]
    train_side_by_side(last_alone, inputs, labels, recipe, [7], CPU, examples=rows[-1:])
    torch.testing.assert_close(test_loss(last_alone[0]), test_loss(stacked[-1]))
    for row, member, log in zip(rows, stacked, logs, strict=True):
        alone = fresh()
        expected = train_model(alone, inputs[row], labels[row], recipe, 7, CPU)
        assert (log.epochs_run, log.best_epoch) == (expected.epochs_run, expected.best_epoch)
        torch.testing.assert_close(test_loss(member), test_loss(alone), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="one row of indices per member"):
        train_side_by_side([fresh()], inputs, labels, recipe, [0], CPU, examples=rows)


def toy_suite(tmp_path: Path) -> Path:
    for name in ("ground_truth_toy.yaml", "ground_truth_toy.py"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path / "ground_truth_toy.yaml"


@pytest.mark.slow
@pytest.mark.parametrize("stackable", [True, False], ids=["stacked", "one-by-one"])
def test_the_engine_trains_subset_models_as_train_model_would(tmp_path, monkeypatch, stackable):
    mlp = [
        "models.0.name=toy_mlp_autoencoder",
        "models.0.recipe={epochs: 4, batch_size: 8, lr: 0.01, patience: 4}",
    ]
    suite = load_suite(toy_suite(tmp_path), tuple(mlp))
    monkeypatch.setattr(MODELS.get("toy_mlp_autoencoder"), "stackable", stackable)
    runner = Runner(suite, tmp_path / "run", tmp_path / "cache", progress=False)
    cell = suite.cells()[0]
    explained = runner.explainers.explain(cell)
    outputs = runner.subsets.outputs(cell, explained, SubsetSpec(3, 40), RetrainingTime())
    data = runner.dataset(cell.model.dataset)
    for keep, losses in zip(outputs.keep, outputs.loss, strict=True):
        model = runner.models.new_model(cell)  # the cell's seed: the full model's start
        rows = keep.nonzero().squeeze(1)
        recipe = cell.model.recipe
        train_model(model, data.train_inputs[rows], data.train_labels[rows], recipe, 0, CPU)
        with torch.no_grad():
            alone = model.loss(explained.inputs, explained.labels, recipe)
        torch.testing.assert_close(losses, alone, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_known_influence_is_recovered_and_retraining_is_shared_by_methods(tmp_path, monkeypatch):
    trained = []
    original = subset_models.train_side_by_side
    monkeypatch.setattr(
        subset_models,
        "train_side_by_side",
        lambda models, *args, **kwargs: (
            trained.append(len(models)) or original(models, *args, **kwargs)
        ),
    )
    suite = toy_suite(tmp_path)
    assert run(suite, tmp_path) == 0
    results = pd.read_csv(tmp_path / "runs" / "ground_truth_toy" / "results.csv")
    value = results.set_index(["method", "metric"])["value"]
    assert value["toy_example_oracle", "lds"] > 0.9  # below 1: each subset's validation example
    assert value["toy_example_oracle", "lds_latent"] > 0.7
    assert abs(value["random_examples", "lds"]) < 0.25
    assert abs(value["random_examples", "lds_latent"]) < 0.25
    assert value["toy_example_oracle", "retrain_without_top"] > 0.02
    assert abs(value["random_examples", "retrain_without_top"]) < 0.01
    # 16 halves for both LDS outputs; the 4 top removals of each method beside the 4 random
    # removals (all of one size) in one stack
    assert sorted(trained) == [12, 16]
    by_cell = results.set_index(["metric", "method"])
    shared = by_cell["shared_retraining_seconds"]
    # every method reports the shared retraining it used
    assert shared["lds", "random_examples"] == shared["lds", "toy_example_oracle"] > 0
    # the models retrained for a cell are its own cost, though trained ahead of it
    own = by_cell.loc["retrain_without_top"]
    assert (own["detail_retraining_seconds"] > 0).all()
    assert (own["metric_seconds"] >= own["detail_retraining_seconds"]).all()
    samples = pd.read_csv(tmp_path / "runs" / "ground_truth_toy" / "samples.csv")
    lds = samples[samples["metric"] == "lds"].groupby("method")["value"].mean()
    assert lds["toy_example_oracle"] == pytest.approx(value["toy_example_oracle", "lds"])

    trained.clear()  # another run directory, the same cache: nothing is retrained
    shutil.rmtree(tmp_path / "runs")
    assert run(suite, tmp_path) == 0
    assert trained == []


VALID = {
    "name": "gt",
    "datasets": [{"name": "mnist_5k", "params": {"n_train": 1000, "n_test": 100}}],
    "models": [{"id": "ae", "name": "mnist_autoencoder", "dataset": "mnist_5k"}],
    "methods": ["deep_knn"],
    "metrics": ["similarity_rate", "lds", "retrain_without_top"],
    "examples": {"n_corpus": None, "n_test": 100},
}


def test_validation_refuses_a_corpus_that_is_not_the_training_set():
    validate_suite(VALID)
    with pytest.raises(SuiteError) as error:
        validate_suite({**VALID, "examples": {"n_corpus": 500, "n_test": 100}})
    assert [field for field, _ in error.value.problems] == ["examples.n_corpus"] * 2
    assert "'lds'" in str(error.value) and "whole training set" in str(error.value)
    own = {**VALID["models"][0], "examples": {"n_corpus": 200}}
    with pytest.raises(SuiteError, match=r"models\[0\]\.examples\.n_corpus"):
        validate_suite({**VALID, "models": [own]})
    # a metric restricted to other models does not judge this one's corpus
    other = {**own, "id": "other", "params": {"latent_dim": 3}}
    restricted = [{"name": "lds", "models": ["ae"]}]
    validate_suite({**VALID, "models": [VALID["models"][0], other], "metrics": restricted})


def test_validation_refuses_models_without_a_per_example_loss():
    simclr = {
        "datasets": [{"name": "natural_images_standin"}],
        "models": [{"id": "s", "name": "simclr_resnet18", "dataset": "natural_images_standin"}],
    }
    with pytest.raises(SuiteError, match="compares the examples of a batch"):
        validate_suite({**VALID, **simclr, "metrics": ["lds"]})
    # the latent output needs no loss of one example
    validate_suite(
        {**VALID, **simclr, "metrics": [{"name": "lds", "params": {"output": "latent_cosine"}}]}
    )
