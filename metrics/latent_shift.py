"""Latent-shift pixel flipping: the label-free XAI paper's feature-consistency check."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field

from lfxbench.baselines import Baseline
from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.ranking import FeatureUnit, RankBy, counts_of, feature_ranks, top_masks
from lfxbench.registry import register_metric

PAPER_FRACTIONS = (0.05, 0.1, 0.2, 0.5, 0.8, 1.0)
Fraction = Annotated[float, Field(gt=0, le=1)]


@register_metric("latent_shift")
class LatentShift(Metric):
    """Mask the top-M% features with a baseline; how far does the latent vector move?

    Features are ranked as the paper's reference code ranks them (``rank_by: absolute``,
    ``unit: pixel``: |attribution| summed over channels, whole pixels or time steps
    masked, M % of the pixels); see :mod:`lfxbench.ranking` for the alternatives. The
    baseline is the model's own unless ``baseline`` is given.

    Samples, ``per-example normalised area``: each example's area under its own curve over
    the normaliser shared by all examples; ``value`` is their mean.
    """

    explains = "feature"
    direction = "higher"

    def __init__(
        self,
        fractions: Annotated[tuple[Fraction, ...], Field(min_length=1)] = PAPER_FRACTIONS,
        baseline: Baseline | None = None,
        distance: Literal["squared", "euclidean"] = "squared",
        rank_by: RankBy = "absolute",
        unit: FeatureUnit = "pixel",
    ):
        self.fractions = sorted(fractions)
        self.baseline = baseline
        self.distance = distance
        self.rank_by = rank_by
        self.unit = unit

    def shift(self, latents: torch.Tensor, masked_latents: torch.Tensor) -> torch.Tensor:
        squared = (masked_latents - latents).pow(2).sum(dim=-1)
        return squared if self.distance == "squared" else squared.sqrt()

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        input_shape = tuple(context.inputs.shape[1:])
        counts = torch.tensor(counts_of(self.fractions, input_shape, self.unit))
        shifts, full_shifts = [], []
        # Each chunk of examples is masked at every fraction at once: one forward pass of
        # len(fractions) x chunk inputs.
        chunk = max(1, context.batch_size // len(self.fractions))
        for start in range(0, len(context.inputs), chunk):
            inputs = context.inputs[start : start + chunk]
            attributions = context.attributions[start : start + chunk]
            ranks = feature_ranks(attributions, self.rank_by, self.unit)
            baselines = context.baseline_of(inputs, self.baseline)
            masks = top_masks(ranks, counts, input_shape, self.unit)  # [K, B, *input_shape]
            masked = torch.where(masks, baselines, inputs).reshape(-1, *input_shape)
            latents = context.encode(inputs)
            masked_latents = context.encode(masked).view(len(counts), len(inputs), -1)
            shifts.append(self.shift(latents, masked_latents))
            full_shifts.append(self.shift(latents, context.encode(baselines)))
        # float64 from here: the means over examples are of many float32 shifts.
        stacked = torch.cat(shifts, dim=1).double().cpu().numpy()  # [K, N]
        full_shift = torch.cat(full_shifts).double().mean().item()
        example_areas = np.trapezoid(
            np.vstack([np.zeros(stacked.shape[1]), stacked]), np.r_[0.0, self.fractions], axis=0
        )
        # Normalised by the shift of masking everything, so models with latent spaces of
        # different scales share one axis: ~1 means the first features masked move f the most.
        # One normaliser for every example (the mean full-mask shift, not each example's
        # own), so that `value`, their mean, is the mean curve's area over it.
        normaliser = full_shift * self.fractions[-1]
        if full_shift > 0:
            example_values = example_areas / normaliser
        else:
            example_values = np.zeros_like(example_areas)
        return MetricResult(
            value=float(example_values.mean()),
            curve=[(0.0, 0.0), *zip(self.fractions, stacked.mean(axis=1).tolist(), strict=True)],
            curve_axes=("fraction of features masked", "latent shift"),
            samples={"per-example normalised area": example_values.tolist()},
            details={"area": float(example_areas.mean()), "full_mask_shift": full_shift},
        )
