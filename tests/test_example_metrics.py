"""Similarity rate and Pearson agreement: known answers."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from lfxbench.baselines import Baseline
from lfxbench.metrics.base import EvaluationContext
from lfxbench.registry import METRICS


def context(scores, labels, corpus_labels) -> EvaluationContext:
    return EvaluationContext(
        encoder=torch.nn.Identity(),
        inputs=torch.zeros(len(labels), 3),
        labels=labels,
        attributions=scores,
        baseline=Baseline(),
        train_inputs=torch.zeros(1, 3),
        train_labels=torch.zeros(1),
        batch_size=8,
        device=torch.device("cpu"),
        seed=0,
        method_kind="example",
        corpus_labels=corpus_labels,
    )


@pytest.fixture
def labelled():
    corpus_labels = torch.arange(40) % 4  # 10 examples of each of 4 labels
    labels = torch.tensor([0, 1, 2, 3, 1])
    same = (corpus_labels[None, :] == labels[:, None]).float()
    return labels, corpus_labels, same


def test_perfect_ranking_rates_1_on_top_and_0_at_the_bottom(labelled):
    labels, corpus_labels, same = labelled
    scores = same + 0.01 * torch.rand(same.shape)  # every same-label example ranks first
    result = METRICS.get("similarity_rate")(fractions=(0.25, 0.5, 1.0))(
        context(scores, labels, corpus_labels)
    )
    assert result.value == 1.0
    assert result.details["top_25%"] == 1.0 and result.details["bottom_25%"] == 0.0
    assert result.details["top_minus_bottom"] == 1.0
    # a quarter of the corpus shares each label: at M = 100% the rate is the base rate
    assert result.details["top_100%"] == pytest.approx(0.25)
    assert result.samples["top 25%"] == [1.0] * 5
    assert result.curve[0] == (0.25, 1.0)


def test_adversarial_ranking_rates_0_on_top(labelled):
    labels, corpus_labels, same = labelled
    result = METRICS.get("similarity_rate")(fractions=(0.25, 0.5))(
        context(-same, labels, corpus_labels)
    )
    assert result.value == 0.0
    assert result.details["bottom_25%"] == 1.0
    assert result.details["top_50%"] == 0.0  # 20 examples, all from the 30 of other labels


def test_similarity_rate_rejects_scores_of_the_wrong_shape(labelled):
    labels, corpus_labels, same = labelled
    with pytest.raises(ValueError, match="example attributions shaped"):
        METRICS.get("similarity_rate")()(context(same[:, :5], labels, corpus_labels))


def test_pearson_agreement_of_an_explanation_with_itself_is_1():
    torch.manual_seed(0)
    explanation = torch.randn(6, 1, 5, 5)
    for average in ("flattened", "per_example"):
        result = METRICS.get("pearson_agreement")(average=average)(explanation, explanation)
        assert result.value == pytest.approx(1.0)
    assert result.details["spearman_flattened"] == pytest.approx(1.0)


def test_pearson_agreement_known_values():
    first = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])
    metric = METRICS.get("pearson_agreement")(average="per_example")
    result = metric(first, -first)
    assert result.value == pytest.approx(-1.0)
    assert metric(first, 2 * first + 3).value == pytest.approx(1.0)
    # |a| agreement ignores sign flips
    absolute = METRICS.get("pearson_agreement")(absolute=True)
    assert absolute(first, -first).value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same examples"):
        metric(first, first[:1])


def test_spearman_agreement_is_1_for_a_monotone_transform_that_pearson_does_not_see():
    torch.manual_seed(0)
    scores = torch.randn(5, 40)
    cubed = scores.pow(3) * 10 + 1  # same order in every row, far from linear
    spearman = METRICS.get("pearson_agreement")(
        across="methods", average="per_example", correlation="spearman"
    )
    result = spearman(scores, cubed)
    assert result.value == pytest.approx(1.0)
    assert result.details["spearman_per_example_min"] == pytest.approx(1.0)
    assert result.details["pearson_per_example"] < 0.95
    # Reversing one row's order: that row -1, the mean drops by 2/5.
    reversed_row = cubed.clone()
    reversed_row[0] = -reversed_row[0]
    assert spearman(scores, reversed_row).value == pytest.approx(1 - 2 / 5)
    # Ties get their average rank, as scipy's spearmanr gives them.
    tied = torch.tensor([[1.0, 1.0, 2.0, 3.0]])
    other = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    expected = stats.spearmanr(tied[0], other[0]).statistic
    assert spearman(tied, other).value == pytest.approx(expected)
