"""Reference inputs: black, mean and Gaussian blur, and their validation from a suite."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from lfxbench.baselines import Baseline, gaussian_blur

DTYPE = torch.float64


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def kernel(kernel_size: int, sigma: float) -> torch.Tensor:
    radius = kernel_size // 2
    offsets = torch.arange(-radius, radius + 1, dtype=DTYPE)
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


# --------------------------------------------------------------------------- black, mean


def test_black_baseline_is_zeros_shaped_like_the_inputs():
    inputs = noise(3, 2, 5, 5) + 1.0
    baseline = Baseline(kind="black")(inputs)
    assert baseline.shape == inputs.shape
    assert baseline.dtype == inputs.dtype
    assert torch.count_nonzero(baseline) == 0
    assert torch.equal(Baseline()(inputs), baseline)  # black is the default


def test_mean_baseline_broadcasts_the_training_mean():
    train = noise(20, 2, 4, 4, seed=1)
    train_mean = train.mean(dim=0, keepdim=True)
    inputs = noise(3, 2, 4, 4, seed=2)
    baseline = Baseline(kind="mean")(inputs, train_mean)

    assert baseline.shape == inputs.shape
    for row in baseline:
        torch.testing.assert_close(row, train_mean[0])
    # A copy, not a view of the mean: writing into one row leaves the others alone.
    baseline[0].zero_()
    torch.testing.assert_close(baseline[1], train_mean[0])


def test_mean_baseline_without_a_training_mean_raises():
    with pytest.raises(ValueError, match="training mean"):
        Baseline(kind="mean")(noise(2, 3))


# --------------------------------------------------------------------------- blur


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 3, 40, 40), (2, 3, 50), (2, 3, 6)])
def test_blur_of_a_constant_is_the_same_constant(shape):
    """Reflect (large inputs) and replicate (inputs smaller than the radius) padding alike."""
    constant = torch.full(shape, 0.7, dtype=DTYPE)
    torch.testing.assert_close(Baseline(kind="blur")(constant), constant)


def test_blur_keeps_each_channel_and_example_apart():
    # Every (example, channel) image is its own constant: blurring must not mix them.
    levels = torch.arange(6, dtype=DTYPE).view(2, 3, 1, 1)
    images = levels.expand(2, 3, 9, 11).clone()
    torch.testing.assert_close(Baseline(kind="blur", kernel_size=5, sigma=2.0)(images), images)
    series = levels.view(2, 3, 1).expand(2, 3, 30).clone()
    torch.testing.assert_close(Baseline(kind="blur", kernel_size=5, sigma=2.0)(series), series)


@pytest.mark.parametrize("shape", [(4, 3, 12, 10), (4, 3, 25), (4, 1, 28, 28)])
def test_blur_preserves_shape(shape):
    blurred = Baseline(kind="blur")(noise(*shape))
    assert blurred.shape == shape
    assert blurred.dtype == DTYPE


@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (4, 3, 200)])
def test_blur_reduces_the_variance_of_noise(shape):
    inputs = noise(*shape, seed=3)
    blurred = Baseline(kind="blur", kernel_size=7, sigma=2.0)(inputs)
    assert blurred.var() < 0.5 * inputs.var()
    # Blurring averages; it neither shifts the mean much nor creates new extremes.
    assert abs(blurred.mean() - inputs.mean()) < 0.05
    assert blurred.abs().max() <= inputs.abs().max()


def test_blur_of_an_impulse_is_the_gaussian_kernel():
    size, sigma = 9, 1.5
    series = torch.zeros(1, 1, 41, dtype=DTYPE)
    series[0, 0, 20] = 1.0
    blurred = gaussian_blur(series, size, sigma)
    expected = torch.zeros_like(series)
    expected[0, 0, 16:25] = kernel(size, sigma)
    torch.testing.assert_close(blurred, expected)

    image = torch.zeros(1, 2, 21, 21, dtype=DTYPE)
    image[0, 1, 10, 10] = 1.0
    blurred = gaussian_blur(image, size, sigma)
    expected = torch.zeros_like(image)
    expected[0, 1, 6:15, 6:15] = torch.outer(kernel(size, sigma), kernel(size, sigma))
    torch.testing.assert_close(blurred, expected)


def test_blur_pads_by_reflection_at_the_border():
    series = torch.tensor([[[1.0, 0.0, 0.0, 0.0, 0.0]]], dtype=DTYPE)
    blurred = gaussian_blur(series, 3, 1.0)
    w = kernel(3, 1.0)
    # Reflect padding turns [1, 0, ...] into [0, 1, 0, ...]: the first output is w[1] * 1.
    assert blurred[0, 0, 0].item() == pytest.approx(w[1].item())
    assert blurred[0, 0, 1].item() == pytest.approx(w[0].item())
    assert blurred[0, 0, 2].item() == pytest.approx(0.0)


def test_blur_with_a_single_tap_kernel_is_the_identity():
    inputs = noise(2, 3, 7, 7, seed=4)
    torch.testing.assert_close(gaussian_blur(inputs, 1, 1.0), inputs)


# --------------------------------------------------------------------------- validation


def test_baseline_validates_from_a_bare_kind():
    baseline = Baseline.model_validate("blur")
    assert baseline.kind == "blur"
    assert baseline.kernel_size == 21
    assert math.isclose(baseline.sigma, 5.0)


def test_baseline_validates_from_a_dict_with_parameters():
    baseline = Baseline.model_validate({"kind": "blur", "kernel_size": 5, "sigma": 2})
    assert (baseline.kind, baseline.kernel_size, baseline.sigma) == ("blur", 5, 2.0)
    inputs = noise(1, 1, 16, 16, seed=5)
    torch.testing.assert_close(baseline(inputs), gaussian_blur(inputs, 5, 2.0))
    assert not torch.allclose(baseline(inputs), Baseline(kind="blur")(inputs))


@pytest.mark.parametrize(
    "value",
    [
        "sepia",
        {"kind": "sepia"},
        {"kind": "blur", "radius": 3},  # unknown field
        {"kind": "blur", "sigma": 0},
        {"kind": "blur", "kernel_size": 0},
    ],
)
def test_baseline_rejects_invalid_specifications(value):
    with pytest.raises(ValidationError):
        Baseline.model_validate(value)


def test_baseline_is_frozen_and_hashable():
    baseline = Baseline(kind="mean")
    with pytest.raises(ValidationError):
        baseline.kind = "black"
    assert hash(baseline) == hash(Baseline.model_validate("mean"))
