"""Latent-shift pixel flipping: ranks, known answers, and faithful methods beating random."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from lfxbench.baselines import Baseline
from lfxbench.metrics.base import EvaluationContext
from lfxbench.metrics.latent_shift import PAPER_FRACTIONS, LatentShift
from lfxbench.ranking import feature_ranks, top_masks
from lfxbench.registry import METHODS, METRICS

DTYPE = torch.float64
N_FEATURES = 64
INFORMATIVE = torch.tensor([3, 9, 17, 22, 30, 41, 50, 63])


class InformativePixels(nn.Module):
    """``f(x) = W x[:, informative]``: the latent ignores every other pixel."""

    def __init__(self, n_latent: int = 5):
        super().__init__()
        torch.manual_seed(0)
        # Positive weights on positive inputs: every informative pixel pushes g_x upwards.
        self.linear = nn.Linear(len(INFORMATIVE), n_latent, bias=False).to(DTYPE)
        with torch.no_grad():
            self.linear.weight.copy_(0.1 + torch.rand(n_latent, len(INFORMATIVE), dtype=DTYPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)[:, INFORMATIVE])


def toy_inputs(n: int = 24) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return 0.5 + 0.5 * torch.rand(n, 1, 8, 8, generator=generator, dtype=DTYPE)


def context(
    encoder, inputs, attributions, batch_size: int = 256, baseline: Baseline | None = None
) -> EvaluationContext:
    return EvaluationContext(
        encoder=encoder.eval(),
        inputs=inputs,
        labels=torch.zeros(len(inputs), dtype=torch.long),
        attributions=attributions,
        baseline=baseline or Baseline(),
        train_inputs=inputs,
        train_labels=torch.zeros(len(inputs)),
        batch_size=batch_size,
        device=torch.device("cpu"),
        seed=0,
    )


def oracle_attributions(inputs: torch.Tensor) -> torch.Tensor:
    """Large on the informative pixels, small elsewhere."""
    attributions = 0.01 * torch.rand(
        inputs.shape, generator=torch.Generator().manual_seed(2), dtype=DTYPE
    )
    attributions.flatten(1)[:, INFORMATIVE] += 1.0
    return attributions


def random_attributions(encoder, inputs) -> torch.Tensor:
    torch.manual_seed(3)
    return METHODS.get("random")(encoder).attribute(inputs, torch.zeros_like(inputs))


# --------------------------------------------------------------------------- ranks


def test_feature_ranks_gives_rank_zero_to_the_largest_absolute_attribution():
    attributions = torch.tensor([[0.1, 0.9, 0.5, -1.0], [3.0, -2.0, 7.0, 0.0]])
    assert feature_ranks(attributions).tolist() == [[3, 1, 2, 0], [1, 2, 0, 3]]
    assert feature_ranks(attributions, rank_by="signed").tolist() == [
        [2, 0, 1, 3],
        [1, 3, 0, 2],
    ]


def test_feature_ranks_sum_the_channels_of_a_pixel_and_break_ties_by_position():
    attributions = torch.tensor([[[[1.0, 5.0], [1.0, 0.0]]]])  # [1, 1, 2, 2]
    ranks = feature_ranks(attributions)
    assert ranks.shape == (1, 4)
    assert ranks.tolist() == [[1, 0, 2, 3]]
    # Three channels, two pixels: pixel 0 has |a| summing to 6, pixel 1 to 5, though
    # pixel 1 holds the largest single element.
    rgb = torch.tensor([[[2.0, 5.0], [-2.0, 0.0], [2.0, 0.0]]])  # [1, C=3, T=2]
    assert feature_ranks(rgb).tolist() == [[0, 1]]
    assert feature_ranks(rgb, unit="element").tolist() == [[1, 0, 2, 4, 3, 5]]
    # A permutation of 0..n_units-1 in every row.
    many = feature_ranks(torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(4)))
    assert torch.equal(many.sort(dim=1).values, torch.arange(4).expand(5, 4))
    elements = feature_ranks(
        torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(4)), unit="element"
    )
    assert torch.equal(elements.sort(dim=1).values, torch.arange(12).expand(5, 12))


def test_top_masks_cover_every_channel_of_a_masked_pixel():
    attributions = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    ranks = feature_ranks(attributions)
    masks = top_masks(ranks, torch.tensor([0, 4, 16]), (3, 4, 4))
    assert masks.shape == (3, 2, 3, 4, 4)
    assert torch.equal(masks[:, :, 0], masks[:, :, 1])
    assert torch.equal(masks[:, :, 0], masks[:, :, 2])
    assert masks[:, :, 0].flatten(2).sum(dim=2).tolist() == [[0, 0], [4, 4], [16, 16]]


# --------------------------------------------------------------------------- pixel flipping


def test_faithful_attributions_beat_random_on_latent_shift():
    encoder, inputs = InformativePixels(), toy_inputs()
    metric = METRICS.get("latent_shift")()
    ig = METHODS.get("integrated_gradients")(encoder, n_steps=8).attribute(
        inputs, torch.zeros_like(inputs)
    )

    oracle = metric(context(encoder, inputs, oracle_attributions(inputs)))
    labelfree_ig = metric(context(encoder, inputs, ig))
    random = metric(context(encoder, inputs, random_attributions(encoder, inputs)))

    # Label-free IG is exactly zero off the informative pixels and positive on them.
    assert torch.all(ig.flatten(1)[:, INFORMATIVE] > 0)
    off = torch.ones(N_FEATURES, dtype=torch.bool)
    off[INFORMATIVE] = False
    assert torch.all(ig.flatten(1)[:, off] == 0)

    assert oracle.value > random.value + 0.2
    assert labelfree_ig.value > random.value + 0.2
    assert 0 < random.value < oracle.value <= 1 + 1e-9
    # By 20 % of the features (13 >= 8) the oracle has masked every informative pixel.
    oracle_curve = dict(oracle.curve)
    assert oracle_curve[0.2] == pytest.approx(oracle.details["full_mask_shift"], rel=1e-12)
    assert dict(random.curve)[0.2] < 0.9 * oracle_curve[0.2]


def test_an_adversarial_ranking_scores_below_random():
    """The metric can fail a method: ranking the informative pixels last scores lowest."""
    encoder, inputs = InformativePixels(), toy_inputs()
    metric = LatentShift()
    worst = metric(context(encoder, inputs, 1.1 - oracle_attributions(inputs)))
    random = metric(context(encoder, inputs, random_attributions(encoder, inputs)))
    assert worst.value < random.value
    # Ranked by sign, negating the oracle puts the informative pixels last too.
    signed = LatentShift(rank_by="signed")
    assert signed(context(encoder, inputs, -oracle_attributions(inputs))).value < random.value


def test_negated_attributions_score_exactly_the_same_under_the_default_ranking():
    encoder, inputs = InformativePixels(), toy_inputs()
    ig = METHODS.get("integrated_gradients")(encoder, n_steps=8).attribute(
        inputs, torch.zeros_like(inputs)
    )
    metric = LatentShift()
    as_is, negated = metric(context(encoder, inputs, ig)), metric(context(encoder, inputs, -ig))
    assert negated.value == as_is.value
    assert negated.curve == as_is.curve
    signed = LatentShift(rank_by="signed")
    assert signed(context(encoder, inputs, -ig)).value < signed(context(encoder, inputs, ig)).value


class ChannelSum(nn.Module):
    """``f(x) = x summed over channels, flattened``: one latent unit per pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1).flatten(1)


def test_a_three_channel_image_masks_whole_pixels_and_counts_pixels():
    inputs = torch.ones(1, 3, 4, 5, dtype=DTYPE)  # 20 pixels, 60 elements
    attributions = torch.rand(inputs.shape, generator=torch.Generator().manual_seed(7))
    attributions = attributions.to(DTYPE)
    encoder = ChannelSum()
    result = LatentShift(fractions=(0.1, 0.5, 1.0))(context(encoder, inputs, attributions))
    # A masked pixel loses all 3 channels: its latent unit drops by 3, a squared shift of 9.
    # 10 % of 20 pixels is 2 pixels; 50 % is 10.
    assert result.curve[1] == pytest.approx((0.1, 2 * 9.0))
    assert result.curve[2] == pytest.approx((0.5, 10 * 9.0))
    assert result.curve[3] == pytest.approx((1.0, 20 * 9.0))
    # Counting elements masks 10 % of 60 = 6 single channels instead.
    elements = LatentShift(fractions=(0.1, 1.0), unit="element")
    by_element = elements(context(encoder, inputs, attributions))
    top_six = attributions.flatten().argsort(descending=True)[:6]
    pixels_hit = torch.zeros(20, dtype=DTYPE)
    pixels_hit.index_add_(0, top_six % 20, torch.ones(6, dtype=DTYPE))
    assert by_element.curve[1] == pytest.approx((0.1, pixels_hit.pow(2).sum().item()))


def test_curve_shape_and_full_mask_value():
    encoder, inputs = InformativePixels(), toy_inputs(6)
    fractions = (0.5, 0.1, 1.0, 0.25)  # unsorted on purpose
    result = LatentShift(fractions=fractions)(context(encoder, inputs, oracle_attributions(inputs)))

    assert result.curve[0] == (0.0, 0.0)
    assert len(result.curve) == len(fractions) + 1
    assert [x for x, _ in result.curve[1:]] == sorted(fractions)
    assert result.curve_axes == ("fraction of features masked", "latent shift")
    # Masking every feature at fraction 1.0 is the baseline itself.
    assert result.curve[-1][1] == pytest.approx(result.details["full_mask_shift"], rel=1e-12)
    full = (encoder(inputs) - encoder(torch.zeros_like(inputs))).pow(2).sum(dim=1).mean()
    assert result.details["full_mask_shift"] == pytest.approx(full.item(), rel=1e-12)
    ys = [y for _, y in result.curve]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(ys))  # oracle: monotone


def test_default_fractions_are_the_papers():
    encoder, inputs = InformativePixels(), toy_inputs(3)
    result = LatentShift()(context(encoder, inputs, oracle_attributions(inputs)))
    assert [x for x, _ in result.curve] == [0.0, *PAPER_FRACTIONS]


def test_latent_shift_known_answer_on_one_example():
    """Mask the top half by hand with a mean baseline and compare every reported number."""
    torch.manual_seed(6)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(N_FEATURES, 5)).to(DTYPE)  # every pixel counts
    inputs = toy_inputs(1)
    attributions = torch.randn(
        inputs.shape, generator=torch.Generator().manual_seed(5), dtype=DTYPE
    )
    train_mean = torch.full((1, 1, 8, 8), 0.25, dtype=DTYPE)
    ctx = context(encoder, inputs, attributions, baseline=Baseline(kind="mean"))
    ctx.train_inputs, ctx.train_labels = train_mean, torch.zeros(1)
    result = LatentShift(fractions=(0.5, 1.0))(ctx)

    top_half = attributions.abs().flatten().argsort(descending=True)[:32]
    masked = inputs.flatten().clone()
    masked[top_half] = 0.25
    latent = encoder(inputs)
    with torch.no_grad():
        half = (encoder(masked.view_as(inputs)) - latent).pow(2).sum().item()
        full = (encoder(train_mean) - latent).pow(2).sum().item()
    assert result.curve[1] == pytest.approx((0.5, half), rel=1e-12)
    assert result.curve[2] == pytest.approx((1.0, full), rel=1e-12)
    area = 0.5 * 0.5 * half + 0.5 * 0.5 * (half + full)  # trapezoid through the origin
    assert result.details["area"] == pytest.approx(area, rel=1e-12)
    assert result.value == pytest.approx(area / full, rel=1e-12)


def test_euclidean_distance_is_the_root_of_the_squared_shift_for_one_example():
    encoder, inputs = InformativePixels(), toy_inputs(1)
    attributions = oracle_attributions(inputs)
    fractions = (0.05, 0.1, 0.5, 1.0)
    squared = LatentShift(fractions=fractions)(context(encoder, inputs, attributions))
    euclidean = LatentShift(fractions=fractions, distance="euclidean")(
        context(encoder, inputs, attributions)
    )

    for (xs, ys), (xe, ye) in zip(squared.curve, euclidean.curve, strict=True):
        assert xe == xs
        assert ye == pytest.approx(math.sqrt(ys), rel=1e-12)
    assert euclidean.details["full_mask_shift"] == pytest.approx(
        math.sqrt(squared.details["full_mask_shift"]), rel=1e-12
    )
    assert squared.curve[1][1] != pytest.approx(euclidean.curve[1][1])  # not the same number


def test_result_does_not_depend_on_the_evaluation_batch_size():
    encoder, inputs = InformativePixels(), toy_inputs(7)
    attributions = random_attributions(encoder, inputs)
    one = LatentShift()(context(encoder, inputs, attributions, batch_size=2))
    many = LatentShift()(context(encoder, inputs, attributions, batch_size=1000))
    assert one.value == pytest.approx(many.value, rel=1e-12)
    assert [x for x, _ in one.curve] == [x for x, _ in many.curve]
    assert [y for _, y in one.curve] == pytest.approx([y for _, y in many.curve], rel=1e-12)


def test_wrong_attribution_shape_raises_value_error():
    encoder, inputs = InformativePixels(), toy_inputs(4)
    attributions = oracle_attributions(inputs)
    with pytest.raises(ValueError, match="feature attributions shaped"):
        LatentShift()(context(encoder, inputs, attributions.flatten(1)))
    with pytest.raises(ValueError):
        LatentShift()(context(encoder, inputs, attributions[:3]))
