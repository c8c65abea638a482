"""Which features a masking metric removes first: the one ranking every such metric shares.

The label-free XAI paper's reference code ranks *pixels* (time series: time steps) by the
absolute attribution summed over the channel axis and masks whole pixels; its top M %
counts pixels, not tensor elements. That is the default here. ``rank_by: signed`` and
``unit: element`` are the alternatives (signed attributions per tensor element), kept so a
result can be compared with metrics that rank that way.

Inputs are channel-first: images ``[B, C, H, W]``, series ``[B, C, T]``; the channel axis
is axis 1. Inputs with no axis besides the features (``[B, D]``) have one element per unit.
"""

from __future__ import annotations

from typing import Literal

import torch

RankBy = Literal["absolute", "signed"]
FeatureUnit = Literal["pixel", "element"]


def _has_channel_axis(shape: torch.Size | tuple[int, ...], unit: FeatureUnit) -> bool:
    return unit == "pixel" and len(shape) > 2


def unit_scores(
    attributions: torch.Tensor, rank_by: RankBy = "absolute", unit: FeatureUnit = "pixel"
) -> torch.Tensor:
    """One score per maskable unit of every example, ``[B, n_units]``."""
    scores = attributions.abs() if rank_by == "absolute" else attributions
    if _has_channel_axis(scores.shape, unit):
        scores = scores.sum(dim=1)
    return scores.flatten(1)


def n_units(input_shape: tuple[int, ...], unit: FeatureUnit = "pixel") -> int:
    """How many units one example of ``input_shape`` (no batch axis) has."""
    shape = (1, *input_shape)
    return int(torch.Size(shape[2:] if _has_channel_axis(shape, unit) else shape[1:]).numel())


def feature_ranks(
    attributions: torch.Tensor, rank_by: RankBy = "absolute", unit: FeatureUnit = "pixel"
) -> torch.Tensor:
    """Rank of every unit of every example, 0 for the most important: ``[B, n_units]``.

    Ties go to the unit that comes first in row-major order, so a ranking is the same on
    every run and device.
    """
    scores = unit_scores(attributions, rank_by, unit)
    order = scores.argsort(dim=1, descending=True, stable=True)
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def top_masks(
    ranks: torch.Tensor,
    counts: torch.Tensor,
    input_shape: tuple[int, ...],
    unit: FeatureUnit = "pixel",
) -> torch.Tensor:
    """``True`` on the top ``counts[k]`` units of each example, shaped ``[K, B, *input_shape]``
    (a pixel's mask covers all its channels)."""
    masks = ranks.unsqueeze(0) < counts.view(-1, 1, 1).to(ranks.device)  # [K, B, n_units]
    n_masks, batch = masks.shape[:2]
    shape = (1, *input_shape)
    if _has_channel_axis(shape, unit):
        spatial = masks.view(n_masks, batch, 1, *input_shape[1:])
        return spatial.expand(n_masks, batch, *input_shape)
    return masks.view(n_masks, batch, *input_shape)


def counts_of(fractions: list[float], input_shape: tuple[int, ...], unit: FeatureUnit) -> list[int]:
    """How many units each fraction masks."""
    total = n_units(input_shape, unit)
    return [round(fraction * total) for fraction in fractions]
