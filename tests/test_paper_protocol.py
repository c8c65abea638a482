"""The paper's data protocols: re-drawn splits, balanced subsets that never fall back
silently, per-model example protocols, and each model's own baseline in latent shift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError
from suite_runs import run

from lfxbench.datasets.base import DatasetSplits, Resplit, balanced_subset
from lfxbench.datasets.ecg_procedural import ecg_procedural
from lfxbench.execution.runner import Runner
from lfxbench.suite import load_suite

DATA = Path(__file__).parent / "data"


def labelled(train_labels: list[int], test_labels: list[int]) -> DatasetSplits:
    """Inputs that remember where they came from: train i is i, test j is 100 + j."""
    n_train = len(train_labels)
    return DatasetSplits(
        torch.arange(n_train, dtype=torch.float32).view(-1, 1),
        torch.tensor(train_labels),
        100 + torch.arange(len(test_labels), dtype=torch.float32).view(-1, 1),
        torch.tensor(test_labels),
    )


def test_pooled_split_by_label_trains_on_one_label_and_tests_on_the_rest():
    data = labelled([1, 2, 1, 3], [1, 1, 4, 2, 5])
    split = Resplit(pool=True, train_labels=[1]).apply(data)
    assert split.train_labels.tolist() == [1, 1, 1, 1]
    assert sorted(split.test_labels.tolist()) == [2, 2, 3, 4, 5]
    # Every example of the pool lands in exactly one set.
    both = torch.cat([split.train_inputs, split.test_inputs]).flatten().sort().values
    assert both.tolist() == [0.0, 1.0, 2.0, 3.0, 100.0, 101.0, 102.0, 103.0, 104.0]


def test_pooled_random_split_is_disjoint_sized_and_seeded():
    data = ecg_procedural(n_train=50, n_test=30, binary=True)
    split = Resplit(pool=True, n_train=60, n_test=20, seed=3).apply(data)
    again = Resplit(pool=True, n_train=60, n_test=20, seed=3).apply(data)
    other = Resplit(pool=True, n_train=60, n_test=20, seed=4).apply(data)
    assert (len(split.train_inputs), len(split.test_inputs)) == (60, 20)
    assert torch.equal(split.train_inputs, again.train_inputs)
    assert not torch.equal(split.train_inputs, other.train_inputs)
    pooled = torch.cat([data.train_inputs, data.test_inputs]).flatten(1)
    rows = lambda x: {tuple(r) for r in x.flatten(1).tolist()}  # noqa: E731
    assert rows(split.train_inputs).isdisjoint(rows(split.test_inputs))
    assert rows(split.train_inputs) | rows(split.test_inputs) <= rows(pooled)
    assert set(split.train_labels.tolist()) == {0, 1}  # binary labels, both kinds of beat


def test_an_unpooled_split_filters_and_subsamples_each_set():
    data = labelled([1, 2, 1, 3, 1], [2, 2, 1])
    split = Resplit(train_labels=[1], n_train=2, test_labels=[2]).apply(data)
    assert split.train_labels.tolist() == [1, 1]
    assert set(split.train_inputs.flatten().tolist()) <= {0.0, 2.0, 4.0}
    assert split.test_inputs.flatten().tolist() == [100.0, 101.0]


def test_impossible_splits_name_the_counts():
    data = labelled([1, 2, 1], [1, 3])
    with pytest.raises(ValueError, match="n_train 4 but only 3 examples have labels"):
        Resplit(pool=True, train_labels=[1], n_train=4).apply(data)
    with pytest.raises(ValueError, match="exceed the 5 pooled examples"):
        Resplit(pool=True, n_train=4, n_test=2).apply(data)
    with pytest.raises(ValueError, match="no train example has labels"):
        Resplit(train_labels=[7]).apply(data)
    with pytest.raises(ValidationError, match="share"):
        Resplit(pool=True, train_labels=[1, 2], test_labels=[2])
    with pytest.raises(ValidationError, match="needs train_labels or n_train"):
        Resplit(pool=True)


def test_a_balanced_subset_is_exactly_balanced_or_an_error_naming_the_counts():
    labels = torch.tensor([0] * 584 + [1] * 416)
    chosen = balanced_subset(labels, 800, seed=0)
    assert labels[chosen].bincount().tolist() == [400, 400]
    assert balanced_subset(labels, None, seed=0).tolist() == list(range(1000))
    with pytest.raises(ValueError, match=r"needs 500 of each of the 2 labels.*0: 584, 1: 416"):
        balanced_subset(labels, 1000, seed=0)
    with pytest.raises(ValueError, match="ask for at most 832"):
        balanced_subset(labels, 2000, seed=0)
    # An odd size gives one label one more.
    assert labels[balanced_subset(labels, 7, seed=0)].bincount().sort().values.tolist() == [3, 4]


def test_a_corpus_larger_than_a_class_can_give_exits_2_naming_the_counts(tmp_path, capsys):
    raw = yaml.safe_load((DATA / "tiny_paper.yaml").read_text())
    raw["datasets"][0]["params"]["n_train"] = 95  # some digits have 9 examples, not 10
    raw["examples"] = {"n_corpus": 100, "n_test": 10}
    suite = tmp_path / "oversized.yaml"
    suite.write_text(yaml.safe_dump(raw))
    assert run(suite, tmp_path) == 2
    error = capsys.readouterr().err
    assert "examples.n_corpus" in error and "mnist_dae" in error and "needs 10 of each" in error
    assert "Traceback" not in error


def test_a_model_may_have_its_own_example_protocol():
    suite = load_suite(DATA / "tiny_paper.yaml")
    ecg = next(m for m in suite.models if m.id == "ecg_examples")
    mnist = next(m for m in suite.models if m.id == "mnist_dae")
    assert suite.examples_of(ecg).n_test is None and suite.examples_of(ecg).n_corpus == 20
    assert suite.examples_of(mnist).n_test == 10


@pytest.mark.slow
def test_the_ecg_cell_of_a_paper_like_suite_masks_with_the_average_normal_beat(tmp_path):
    shutil.copy(DATA / "tiny_paper.yaml", tmp_path / "tiny_paper.yaml")
    suite = load_suite(tmp_path / "tiny_paper.yaml")
    runner = Runner(suite, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    cells = {(c.model.id, c.method.id, c.metric.id): c for c in suite.cells()}
    assert ("ecg_features", "deep_knn", "similarity_rate") not in cells  # metric restricted

    data = runner.dataset("ecg_normal_vs_abnormal")
    assert set(data.train_labels.tolist()) == {1}
    assert 1 not in set(data.test_labels.tolist())

    cell = cells[("ecg_features", "integrated_gradients", "latent_shift")]
    explained = runner.explainers.explain(cell)
    record = runner.evaluate(cell, explained)
    encoder = explained.trained.model.encoder.eval()
    mean_beat = data.train_inputs.mean(dim=0, keepdim=True)
    with torch.no_grad():
        latents = encoder(explained.inputs)
        to_mean_beat = (encoder(mean_beat.expand_as(explained.inputs)) - latents).pow(2)
        to_black = (encoder(torch.zeros_like(explained.inputs)) - latents).pow(2)
    full = record["details"]["full_mask_shift"]
    assert full == pytest.approx(to_mean_beat.sum(dim=1).mean().item(), rel=1e-5)
    assert full != pytest.approx(to_black.sum(dim=1).mean().item(), rel=1e-2)

    examples = cells[("ecg_examples", "deep_knn", "similarity_rate")]
    explained = runner.explainers.explain(examples)
    assert len(explained.inputs) == 20  # every test example of the random split
    assert explained.corpus_labels.bincount().tolist() == [10, 10]  # balanced corpus
