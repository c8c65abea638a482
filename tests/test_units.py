"""Per-unit attributions and the metrics of the VAE study: known answers."""

from __future__ import annotations

import math

import pytest
import torch
from captum.attr import DeepLift, IntegratedGradients, Saliency
from torch import nn

from lfxbench.baselines import Baseline
from lfxbench.metrics.base import EvaluationContext
from lfxbench.registry import METHODS, METRICS


def context(attributions: torch.Tensor) -> EvaluationContext:
    batch, _, *shape = attributions.shape
    return EvaluationContext(
        encoder=nn.Identity(),
        inputs=torch.zeros(batch, *shape),
        labels=torch.zeros(batch),
        attributions=attributions,
        baseline=Baseline(),
        train_inputs=torch.zeros(1, *shape),
        train_labels=torch.zeros(1),
        batch_size=8,
        device=torch.device("cpu"),
        seed=0,
        method_kind="unit",
    )


def test_entropy_is_zero_for_one_unit_and_log_d_for_all_alike():
    one_hot = torch.zeros(2, 4, 5)
    one_hot[:, 1, :] = torch.rand(2, 5) + 0.1  # every feature explained by unit 1 alone
    entropy = METRICS.get("attribution_entropy")()
    assert entropy(context(one_hot)).value == pytest.approx(0.0, abs=1e-12)
    uniform = torch.rand(2, 1, 5).expand(2, 4, 5) + 0.1
    result = entropy(context(uniform))
    assert result.value == pytest.approx(math.log(4))
    assert result.details["max_entropy"] == pytest.approx(math.log(4))


def test_entropy_ignores_features_no_unit_finds_salient():
    attributions = torch.zeros(1, 3, 4)
    attributions[0, :, 0] = 1.0  # feature 0: all units alike; features 1-3 never salient
    assert METRICS.get("attribution_entropy")()(context(attributions)).value == pytest.approx(
        math.log(3)
    )


def test_unit_pearson_of_identical_units_is_one_and_of_opposite_units_minus_one():
    maps = torch.rand(3, 1, 2, 4, 4)
    identical = maps.expand(3, 5, 2, 4, 4)
    assert METRICS.get("unit_pearson")()(context(identical)).value == pytest.approx(1.0)
    opposite = torch.cat([maps, -maps], dim=1)
    assert METRICS.get("unit_pearson")()(context(opposite)).value == pytest.approx(-1.0)


def test_pooled_unit_pearson_weighs_the_larger_example_and_per_example_does_not():
    # Two units alike within each example, but unit 0 ten times larger in example 2: each
    # example alone correlates perfectly; pooled over (example, feature) entries the unit
    # maps are x = (0, 1, 0, 10) and y = (0, 1, 0, 1), r = 5.5 / sqrt(70.75).
    attributions = torch.tensor([[[0.0, 1.0], [0.0, 1.0]], [[0.0, 10.0], [0.0, 1.0]]])
    per_example = METRICS.get("unit_pearson")(pooling="per_example")(context(attributions))
    assert per_example.value == pytest.approx(1.0)
    assert per_example.samples["per-example unit pearson"] == pytest.approx([1.0, 1.0])
    pooled = METRICS.get("unit_pearson")()(context(attributions))
    assert pooled.value == pytest.approx(5.5 / math.sqrt(70.75))
    assert pooled.samples["per-pair unit pearson"] == pytest.approx([5.5 / math.sqrt(70.75)] * 2)


def test_pooled_unit_pearson_averages_pairs_of_distinct_units():
    # Three units over two examples of two features; pooled entries:
    # u0 = (1, 0, 1, 0), u1 = -u0 (r = -1 with u0), u2 = (1, 1, 0, 0) (r = 0 with both).
    u0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    u2 = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    attributions = torch.stack([u0, -u0, u2], dim=1)  # [B=2, d=3, F=2]
    result = METRICS.get("unit_pearson")()(context(attributions))
    assert result.value == pytest.approx((2 * -1.0 + 4 * 0.0) / 6, abs=1e-12)
    assert sorted(result.samples["per-pair unit pearson"]) == pytest.approx(
        [-1.0, -1.0, 0.0, 0.0, 0.0, 0.0], abs=1e-12
    )


def test_pooled_unit_pearson_leaves_out_and_counts_the_pairs_of_a_constant_unit():
    varying = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])  # unit 2 is all zeros
    result = METRICS.get("unit_pearson")()(context(varying))
    assert result.value == pytest.approx(1.0)
    assert result.details["undefined_pairs"] == 4


def test_pooled_entropy_weighs_examples_by_their_salient_features():
    # Example 1: one salient feature shared by both units (entropy log 2); example 2: three
    # salient features each explained by unit 0 alone (entropy 0). Per example: the mean of
    # log 2 and 0; pooled over the four salient (example, feature) pairs: log 2 / 4.
    attributions = torch.zeros(2, 2, 4)
    attributions[0, :, 0] = 1.0
    attributions[1, 0, :3] = torch.tensor([1.0, 2.0, 3.0])
    pooled = METRICS.get("attribution_entropy")()(context(attributions))
    assert pooled.value == pytest.approx(math.log(2) / 4)
    assert pooled.samples["per-example entropy"] == pytest.approx([math.log(2), 0.0])
    per_example = METRICS.get("attribution_entropy")(pooling="per_example")
    assert per_example(context(attributions)).value == pytest.approx(math.log(2) / 2)


def test_unit_metric_rejects_feature_shaped_attributions():
    with pytest.raises(ValueError, match="unit attributions"):
        METRICS.get("unit_pearson")()(
            EvaluationContext(
                encoder=nn.Identity(),
                inputs=torch.zeros(2, 3),
                labels=torch.zeros(2),
                attributions=torch.zeros(2, 3),
                baseline=Baseline(),
                train_inputs=torch.zeros(1, 3),
                train_labels=torch.zeros(1),
                batch_size=8,
                device=torch.device("cpu"),
                seed=0,
                method_kind="unit",
            )
        )


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double().eval()


@pytest.mark.parametrize(
    ("name", "captum_class", "kwargs"),
    [
        ("saliency", Saliency, {"abs": False}),
        ("integrated_gradients", IntegratedGradients, {"n_steps": 20}),
        ("deeplift", DeepLift, {}),
    ],
)
def test_one_batched_call_equals_a_loop_over_units_and_examples(
    encoder, name, captum_class, kwargs
):
    inputs = torch.randn(4, 6, dtype=torch.float64)
    baselines = torch.zeros_like(inputs)
    method = METHODS.get("per_unit")(
        encoder, method=name, n_steps=20, scale_by_unit=False, absolute=False
    )
    batched = method.attribute(inputs, baselines)
    assert batched.shape == (4, 3, 6)
    reference = captum_class(encoder)
    for b in range(4):
        for unit in range(3):
            extra = {} if name == "saliency" else {"baselines": baselines[b : b + 1]}
            expected = reference.attribute(
                inputs[b : b + 1].clone().requires_grad_(), target=unit, **extra, **kwargs
            )
            torch.testing.assert_close(batched[b, unit], expected[0])


def test_scaling_by_the_unit_value_and_absolute(encoder):
    inputs = torch.randn(2, 6, dtype=torch.float64)
    plain = METHODS.get("per_unit")(
        encoder, method="saliency", scale_by_unit=False, absolute=False
    ).attribute(inputs, torch.zeros_like(inputs))
    scaled = METHODS.get("per_unit")(encoder, method="saliency").attribute(
        inputs, torch.zeros_like(inputs)
    )
    with torch.no_grad():
        latents = encoder(inputs)
    torch.testing.assert_close(scaled, (plain * latents[:, :, None]).abs())


def test_trend_is_the_spearman_correlation_with_the_parameter():
    import json

    import pandas as pd

    from lfxbench.report.leaderboard import trends

    rows = []
    for beta, value in ((1, 0.9), (5, 0.5), (10, 0.1), (1, 0.8), (5, 0.6), (10, 0.2)):
        rows.append(
            {
                "model_b": "",
                "model_name": "vae",
                "objective": "beta_vae",
                "method": "per_unit",
                "metric": "unit_pearson",
                "value": value,
                "model_params": json.dumps({"beta": beta}),
            }
        )
    table = trends(pd.DataFrame(rows), ["beta"])
    assert len(table) == 1
    # ties in beta (two seeds each) keep a perfectly decreasing trend just above -1
    from scipy import stats

    expected = stats.spearmanr([1, 5, 10, 1, 5, 10], [0.9, 0.5, 0.1, 0.8, 0.6, 0.2]).statistic
    assert table["spearman_rho"].iloc[0] == pytest.approx(expected)
    assert expected < -0.95
    assert table["values"].iloc[0] == "1, 5, 10" and table["n"].iloc[0] == 6
    assert trends(pd.DataFrame(rows), ["gamma"]).empty  # no model has that parameter
