"""Aggregated embedding attributions (Bertolini et al.) and their noise and variance scores:
known answers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import pytest
import torch
from captum.attr import LayerGradCam, LayerGradientXActivation
from torch import nn

from lfxbench.baselines import Baseline
from lfxbench.errors import LfxbenchError, UnknownNameError
from lfxbench.methods.embedding_attribution import aggregate, layer_unit_maps
from lfxbench.metrics.base import EvaluationContext
from lfxbench.registry import METHODS, METRICS, MODELS


def context(
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    kind: str = "feature",
    explain: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None,
) -> EvaluationContext:
    return EvaluationContext(
        encoder=nn.Identity(),
        inputs=inputs,
        labels=torch.zeros(len(inputs)),
        attributions=attributions,
        baseline=Baseline(),
        train_inputs=torch.zeros(1, *inputs.shape[1:]),
        train_labels=torch.zeros(1),
        batch_size=8,
        device=torch.device("cpu"),
        seed=0,
        method_kind=kind,
        explain=explain,
    )


@pytest.fixture
def tiny_encoder() -> nn.Sequential:
    """A 'same'-padded conv, so the layer's maps need no upsampling, then 3 latent units."""
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(2, 4, 3, padding=1),
            relu=nn.ReLU(),
            flatten=nn.Flatten(),
            head=nn.Linear(4 * 5 * 5, 3),
        )
    ).eval()


def layer_and_gradients(encoder: nn.Sequential, inputs: torch.Tensor):
    """The conv's output A [B, C, h, w] and, per unit j, ∂f_j/∂A [d, B, C, h, w] by hand."""
    captured = {}

    def keep(module, args, output):
        captured["A"] = output

    handle = encoder.conv.register_forward_hook(keep)
    try:
        latents = encoder(inputs)
    finally:
        handle.remove()
    activations = captured["A"]
    # Examples are independent (no batch norm), so the batch sum separates them.
    gradients = torch.stack(
        [
            torch.autograd.grad(latents[:, j].sum(), activations, retain_graph=True)[0]
            for j in range(latents.shape[1])
        ]
    )
    return activations.detach(), gradients


def test_aggregations_known_answers():
    assert aggregate(torch.full((5,), 3.0), "var", dim=0).item() == 0.0
    assert aggregate(torch.tensor([-1.0, 1.0]), "mean", dim=0).item() == 0.0
    assert aggregate(torch.tensor([-1.0, 1.0]), "abs", dim=0).item() == 1.0
    assert aggregate(torch.tensor([-1.0, 1.0]), "var", dim=0).item() == 1.0  # population
    # Along dim 1 of a [2, 2, 3] tensor: rows {-1, 1} and {c, c}.
    values = torch.stack([torch.tensor([[-1.0] * 3, [1.0] * 3]), torch.full((2, 3), 7.0)])
    assert torch.equal(aggregate(values, "mean", dim=1), torch.tensor([[0.0] * 3, [7.0] * 3]))
    assert torch.equal(aggregate(values, "abs", dim=1), torch.tensor([[1.0] * 3, [7.0] * 3]))
    assert torch.equal(aggregate(values, "var", dim=1), torch.tensor([[1.0] * 3, [0.0] * 3]))


def test_vanilla_gradient_unit_maps_match_a_hand_computation(tiny_encoder):
    inputs = torch.randn(2, 2, 5, 5)
    activations, gradients = layer_and_gradients(tiny_encoder, inputs)
    maps = METHODS.get("layer_units")(tiny_encoder, layer="conv").attribute(inputs, inputs)
    assert maps.shape == (2, 3, 2, 5, 5)
    expected = gradients.mean(dim=2).transpose(0, 1)  # [B, d, h, w]
    for channel in range(2):  # copied over the input's channels
        torch.testing.assert_close(maps[:, :, channel], expected)
    activation_x_gradient = METHODS.get("layer_units")(
        tiny_encoder, attribution="activation_x_gradient", layer="conv", channel_aggregation="abs"
    ).attribute(inputs, inputs)
    torch.testing.assert_close(
        activation_x_gradient[:, :, 0], (activations * gradients).abs().mean(dim=2).transpose(0, 1)
    )
    # With no upsampling, the embedding map is the unit aggregation of the unit maps.
    for how in ("mean", "abs", "var"):
        embedding = METHODS.get("embedding_attribution")(
            tiny_encoder, layer="conv", unit_aggregation=how
        ).attribute(inputs, inputs)
        torch.testing.assert_close(embedding, aggregate(maps, how, dim=1))


def test_grad_cam_unit_maps_match_a_hand_computation(tiny_encoder):
    inputs = torch.randn(2, 2, 5, 5)
    activations, gradients = layer_and_gradients(tiny_encoder, inputs)
    maps = METHODS.get("layer_units")(tiny_encoder, attribution="grad_cam").attribute(
        inputs, inputs
    )
    weights = gradients.mean(dim=(3, 4), keepdim=True)  # [d, B, C, 1, 1]
    expected = torch.relu((weights * activations).sum(dim=2)).transpose(0, 1)
    torch.testing.assert_close(maps[:, :, 1], expected)
    assert (maps >= 0).all() and (maps > 0).any()


def test_shapes_and_upsampling_of_strided_layers():
    torch.manual_seed(0)
    images = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(64, 5))
    inputs = torch.randn(2, 3, 8, 8)
    units = METHODS.get("layer_units")(images).attribute(inputs, inputs)
    assert units.shape == (2, 5, 3, 8, 8)
    assert torch.equal(units[:, :, 0], units[:, :, 2])
    # Bilinear upsampling of a 4x4 map is not piecewise constant, unlike a nearest copy.
    assert not torch.equal(units[..., 0, 0], units[..., 0, 1])
    embedding = METHODS.get("embedding_attribution")(images).attribute(inputs, inputs)
    assert embedding.shape == inputs.shape

    series = nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(20, 3))
    inputs = torch.randn(2, 2, 10)
    for attribution in ("gradient", "activation_x_gradient", "grad_cam"):
        units = METHODS.get("layer_units")(series, attribution=attribution).attribute(
            inputs, inputs
        )
        assert units.shape == (2, 3, 2, 10)
        embedding = METHODS.get("embedding_attribution")(
            series, attribution=attribution, unit_aggregation="var"
        ).attribute(inputs, inputs)
        assert embedding.shape == inputs.shape


def test_default_layer_is_the_last_conv_and_unknown_layers_suggest_close_names(tiny_encoder):
    mnist = MODELS.get("mnist_autoencoder")().encoder
    assert METHODS.get("layer_units")(mnist).layer_name == "5"
    assert METHODS.get("embedding_attribution")(tiny_encoder).layer_name == "conv"
    with pytest.raises(UnknownNameError, match="did you mean 'conv'"):
        METHODS.get("layer_units")(tiny_encoder, layer="cnv")
    with pytest.raises(LfxbenchError, match="no Conv1d/Conv2d"):
        METHODS.get("embedding_attribution")(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def test_noise_score_known_answers():
    inputs = torch.rand(3, 1, 4, 4)
    fixed = torch.rand(1, 4, 4)

    def ignore_input(batch: torch.Tensor, labels=None) -> torch.Tensor:
        return fixed.expand_as(batch).clone()

    noise_score = METRICS.get("noise_score")()
    result = noise_score(context(inputs, ignore_input(inputs), explain=ignore_input))
    assert result.value == pytest.approx(0.0)
    assert result.details["reference"] == pytest.approx(0.0)
    assert len(result.samples["per-example noise score"]) == 3

    binary = torch.zeros(3, 1, 4, 4)
    binary[:, :, :2] = 1.0  # a min and a max, so normalising keeps it binary
    complement = METRICS.get("noise_score")()(
        context(inputs, binary, explain=lambda batch, labels: 1.0 - binary[:1].expand_as(batch))
    )
    assert complement.value == pytest.approx(1.0)

    # Explaining by the input itself: noise maps are independent uniform draws, so the
    # reference is E|U - V| = 1/3 and the noise is in the data's range.
    inputs = torch.rand(4, 1, 28, 28) * 2 - 1
    seen = []

    def identity(batch: torch.Tensor, labels=None) -> torch.Tensor:
        seen.append(batch)
        return batch.clone()

    torch.manual_seed(0)
    result = noise_score(context(inputs, inputs, explain=identity))
    (noise,) = seen
    assert noise.shape == (8, 1, 28, 28)
    assert noise.min() >= inputs.min() and noise.max() <= inputs.max()
    assert result.details["reference"] == pytest.approx(1 / 3, abs=0.02)
    assert result.value == pytest.approx(1 / 3, abs=0.02)


def test_variance_score_known_answers():
    inputs = torch.zeros(2, 3, 4, 4)
    variance_score = METRICS.get("variance_score")()
    identical = torch.rand(2, 1, 3, 4, 4).expand(2, 5, 3, 4, 4)
    result = variance_score(context(inputs, identical, kind="unit"))
    assert result.value == pytest.approx(0.0, abs=1e-12)
    assert result.details["upper_bound"] == 0.25

    # Half the units 1 but at one pixel, half 0 but there: normalised, the units split
    # evenly between 0 and 1 at every pixel, Popoviciu's bound.
    ones = torch.ones(2, 2, 3, 4, 4)
    ones[..., 0, 0] = 0.0
    maps = torch.cat([ones, 1.0 - ones], dim=1) * 5.0 + 2.0
    result = variance_score(context(inputs, maps, kind="unit"))
    assert result.value == pytest.approx(0.25)
    assert result.samples["per-example variance score"] == pytest.approx([0.25, 0.25])


def test_variance_score_binarises_the_normalised_maps_at_the_threshold():
    # Two units over four pixels, already spanning [0, 1] (the affine map is normalised
    # away): unit 0 = (0, 0.4, 0.6, 1), unit 1 = its mirror.
    ramp = torch.tensor([0.0, 0.4, 0.6, 1.0]).view(1, 1, 1, 2, 2)
    maps = torch.cat([ramp, 1.0 - ramp], dim=1) * 3.0 + 1.0  # [B=1, d=2, C=1, 2, 2]
    inputs = torch.zeros(1, 1, 2, 2)
    # At 0.5 the units are (0, 0, 1, 1) and (1, 1, 0, 0): on/off everywhere, the bound.
    binarised = METRICS.get("variance_score")()(context(inputs, maps, kind="unit"))
    assert binarised.value == pytest.approx(0.25)
    # At 0.7 only the corners are on, one unit each: (0.25 + 0 + 0 + 0.25) / 4.
    strict = METRICS.get("variance_score")(threshold=0.7)(context(inputs, maps, kind="unit"))
    assert strict.value == pytest.approx(0.125)
    # Continuous: the variance of two values a, 1 - a is (a - 1/2)^2, mean over pixels
    # (0.25 + 0.01 + 0.01 + 0.25) / 4.
    continuous = METRICS.get("variance_score")(binarise=False)
    assert continuous(context(inputs, maps, kind="unit")).value == pytest.approx(0.13)


def test_methods_and_scores_run_on_the_zoo_mnist_encoder():
    torch.manual_seed(0)
    encoder = MODELS.get("mnist_autoencoder")().encoder.eval()
    inputs = torch.rand(4, 1, 28, 28)
    for attribution in ("gradient", "activation_x_gradient", "grad_cam"):
        units = METHODS.get("layer_units")(encoder, attribution=attribution)
        maps = units.attribute(inputs, inputs)
        assert maps.shape == (4, 4, 1, 28, 28) and maps.isfinite().all()
        variance = METRICS.get("variance_score")()(context(inputs, maps, kind="unit"))
        assert 0.0 <= variance.value <= 0.25
        method = METHODS.get("embedding_attribution")(encoder, attribution=attribution)

        def explain(batch: torch.Tensor, labels=None, method=method) -> torch.Tensor:
            return method.attribute(batch, batch)

        embedding = explain(inputs)
        assert embedding.shape == inputs.shape and embedding.isfinite().all()
        score = METRICS.get("noise_score")()(context(inputs, embedding, explain=explain))
        assert 0.0 <= score.value <= 1.0 and 0.0 <= score.details["reference"] <= 1.0


@pytest.mark.parametrize("attribution", ["gradient", "activation_x_gradient", "grad_cam"])
def test_layer_maps_equal_captums_layer_attributions_unit_by_unit(attribution):
    # A deeper encoder with BatchNorm and a strided second layer, explained at the first.
    torch.manual_seed(1)
    encoder = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 5),
    ).eval()
    inputs = torch.rand(3, 1, 8, 8)
    layer = encoder[1]
    ours = layer_unit_maps(encoder, layer, inputs, attribution)

    def unit(j: int):
        return lambda batch: encoder(batch)[:, j : j + 1]

    for j in range(5):
        if attribution == "grad_cam":
            captum = LayerGradCam(unit(j), layer).attribute(inputs, relu_attributions=True)
            expected = captum.squeeze(1)
        else:
            captum = LayerGradientXActivation(
                unit(j), layer, multiply_by_inputs=attribution == "activation_x_gradient"
            ).attribute(inputs)
            expected = captum.mean(dim=1)
        torch.testing.assert_close(ours[:, j], expected)
