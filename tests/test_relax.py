"""RELAX and U-RELAX: the science (locality, invariance to rotations of the representation)
and the bookkeeping (masks, running statistics, chunking, shapes, parameters)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lfxbench.methods.relax import Relax, URelax, relax_masks
from lfxbench.params import validate_params
from lfxbench.registry import METHODS


class RegionEncoder(nn.Module):
    """A fixed random linear map of the pixels of the top-left ``size``×``size`` block only."""

    def __init__(self, size: int = 8, n_out: int = 16):
        super().__init__()
        self.size = size
        generator = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(n_out, size * size, generator=generator))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs[:, 0, : self.size, : self.size].flatten(1) @ self.weight.T


def conv_net(in_channels: int = 1, n_out: int = 6, size: int = 12) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, stride=2, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4 * ((size + 1) // 2) ** 2, n_out),
    ).eval()


def images(n: int = 2, channels: int = 1, size: int = 12, seed: int = 2) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def relax_statistics(method: Relax, inputs, baselines, seed: int = 0):
    torch.manual_seed(seed)
    return method.importance_and_uncertainty(inputs, baselines)


# --------------------------------------------------------------------------- science


def test_importance_lies_where_the_encoder_looks():
    encoder = RegionEncoder(size=8)
    inputs = images(n=2, size=28, seed=3) + 0.5
    torch.manual_seed(0)
    importance = Relax(encoder, n_masks=500).attribute(inputs, torch.zeros_like(inputs))
    region = torch.zeros(28, 28, dtype=torch.bool)
    region[:8, :8] = True
    for example in importance[:, 0]:
        row, col = divmod(int(example.argmax()), 28)
        assert region[row, col], (row, col)
        assert example[region].mean() > example[~region].mean()


def test_invariant_to_an_orthogonal_map_of_the_representation():
    encoder = conv_net(n_out=6)
    inputs = images(n=3)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(4)))
    rotation = nn.Linear(6, 6, bias=False)
    rotation.weight.data = q
    rotated = nn.Sequential(encoder, rotation).eval()
    zeros = torch.zeros_like(inputs)
    params = {"n_masks": 200, "mask_batch": 50}
    torch.manual_seed(5)
    plain = Relax(encoder, **params).attribute(inputs, zeros)
    torch.manual_seed(5)
    turned = Relax(rotated, **params).attribute(inputs, zeros)
    torch.testing.assert_close(turned, plain, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- bookkeeping


def test_statistics_match_a_mask_by_mask_weighted_welford_loop():
    """The batched float64 sums give the reference code's running mean and variance."""
    encoder = conv_net().double()
    inputs = images(n=3).double()
    baselines = torch.full_like(inputs, 0.3)  # not zero: checks x·m + b·(1 − m)
    method = Relax(encoder, n_masks=45, mask_batch=20, grid=4, shift=3)
    importance, uncertainty = relax_statistics(method, inputs, baselines, seed=6)

    torch.manual_seed(6)
    masks = torch.cat(
        [relax_masks(n, (12, 12), 4, 0.5, 3, dtype=torch.float64) for n in (20, 20, 5)]
    )
    with torch.no_grad():
        references = encoder(inputs)
        for b in range(len(inputs)):
            # The reference code's initial weight: no 0/0 before a pixel is first kept.
            weight = torch.full((12, 12), 1e-10, dtype=torch.float64)
            mean, spread = torch.zeros_like(weight), torch.zeros_like(weight)
            for mask in masks:
                masked = inputs[b] * mask + baselines[b] * (1 - mask)
                s = F.cosine_similarity(encoder(masked[None]), references[b : b + 1])[0]
                weight += mask
                previous = mean.clone()
                mean += mask * (s - mean) / weight
                spread += mask * (s - mean) * (s - previous)
            torch.testing.assert_close(importance[b], mean)
            torch.testing.assert_close(uncertainty[b], spread / weight)


def test_chunking_of_examples_changes_nothing():
    encoder = conv_net()
    inputs = images(n=5)
    zeros = torch.zeros_like(inputs)
    whole = relax_statistics(Relax(encoder, n_masks=60, mask_batch=30), inputs, zeros)
    # forward_batch below mask_batch: one example per forward.
    chunked = relax_statistics(
        Relax(encoder, n_masks=60, mask_batch=30, forward_batch=10), inputs, zeros
    )
    pairs = relax_statistics(
        Relax(encoder, n_masks=60, mask_batch=30, forward_batch=60), inputs, zeros
    )
    for other in (chunked, pairs):
        torch.testing.assert_close(other[0], whole[0])
        torch.testing.assert_close(other[1], whole[1])


def test_output_shape_for_images_and_series():
    encoder = conv_net(in_channels=3, size=10)
    inputs = images(n=2, channels=3, size=10)
    out = Relax(encoder, n_masks=40).attribute(inputs, torch.zeros_like(inputs))
    assert out.shape == inputs.shape and out.dtype == inputs.dtype and not out.requires_grad
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])

    torch.manual_seed(0)
    series_encoder = nn.Sequential(nn.Conv1d(2, 3, 5, stride=2), nn.ReLU(), nn.Flatten()).eval()
    series = torch.randn(3, 2, 40, generator=torch.Generator().manual_seed(7))
    out = URelax(series_encoder, n_masks=40, grid=5).attribute(series, torch.zeros_like(series))
    assert out.shape == series.shape
    assert torch.equal(out[:, 0], out[:, 1])


def test_u_relax_keeps_importance_where_uncertainty_is_at_most_the_median():
    encoder = conv_net()
    inputs = images(n=3)
    zeros = torch.zeros_like(inputs)
    params = {"n_masks": 100, "mask_batch": 50}
    importance, uncertainty = relax_statistics(Relax(encoder, **params), inputs, zeros, seed=8)
    torch.manual_seed(8)
    relax_map = Relax(encoder, **params).attribute(inputs, zeros)
    torch.manual_seed(8)
    u_relax_map = URelax(encoder, **params).attribute(inputs, zeros)
    torch.testing.assert_close(relax_map[:, 0], importance.float())
    for b in range(len(inputs)):
        median = uncertainty[b].flatten().median()
        uncertain = uncertainty[b] > median
        assert 0 < int(uncertain.sum()) < uncertain.numel()
        assert torch.all(u_relax_map[b, 0][uncertain] == 0)
        assert torch.equal(u_relax_map[b, 0][~uncertain], relax_map[b, 0][~uncertain])


def test_suite_loader_validates_the_parameters():
    for name in ("relax", "u_relax"):
        target = METHODS.get(name)
        params, problems = validate_params(
            target, {"n_masks": 500, "grid": 5, "shift": None}, skip=("encoder",)
        )
        assert not problems and params["n_masks"] == 500 and params["mask_batch"] == 100
        _, problems = validate_params(target, {"keep_probability": 1.5}, skip=("encoder",))
        assert [field for field, _ in problems] == ["keep_probability"]
        _, problems = validate_params(target, {"n_masks": 0, "shift": -1}, skip=("encoder",))
        assert {field for field, _ in problems} >= {"n_masks", "shift"}


def test_masks_are_smooth_fractions_kept_with_the_given_probability():
    torch.manual_seed(9)
    masks = relax_masks(400, (28, 28), grid=7, keep_probability=0.3)
    assert masks.shape == (400, 28, 28)
    assert masks.min() >= 0 and masks.max() <= 1
    assert abs(float(masks.mean()) - 0.3) < 0.02
    # Bilinear upsampling: neighbouring pixels differ by at most a fraction of a cell.
    assert (masks[:, :, 1:] - masks[:, :, :-1]).abs().max() <= 0.25 + 1e-6
    series = relax_masks(400, (50,), grid=5, keep_probability=0.7)
    assert series.shape == (400, 50) and abs(float(series.mean()) - 0.7) < 0.03


def test_masks_match_the_reference_pad_and_crop():
    """Shift 7 on 28×28: reflect-pad 3 px and crop at a random offset, as in RELAX's code."""
    torch.manual_seed(10)
    masks = relax_masks(20, (28, 28), grid=7, keep_probability=0.5, shift=7)
    torch.manual_seed(10)
    cells = (torch.rand(20, 1, 7, 7) < 0.5).float()
    padded = F.pad(F.interpolate(cells, size=(28, 28), mode="bilinear"), (3,) * 4, "reflect")
    rows, cols = torch.randint(0, 7, (20,)), torch.randint(0, 7, (20,))
    for i in range(20):
        crop = padded[i, 0, rows[i] : rows[i] + 28, cols[i] : cols[i] + 28]
        torch.testing.assert_close(masks[i], crop)
