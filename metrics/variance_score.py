"""Variance score: are the attribution maps of an encoder's latent units distinct?

Bertolini, Clevert and Montanari, "Explaining, evaluating and enhancing neural networks'
learned representations" (ICANN 2023): in a concise representation different units attend
to different features, so at a feature the units' (min-max normalised) attributions are
spread out. Per example, every unit's map is normalised to [0, 1], averaged over the input's
channels, and the variance across units is averaged over the pixels; higher is better. By
Popoviciu's inequality a variance of values in [0, 1] is at most 1/4, reached when half the
units score 0 and half 1. By default the maps are binarised before the variance, as the
paper's variance curves are (see :class:`VarianceScore`).
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.metrics.noise_score import min_max_normalise
from lfxbench.registry import register_metric

POPOVICIU_BOUND = 0.25


def unit_variances(
    attributions: torch.Tensor, has_channels: bool, threshold: float | None = None
) -> torch.Tensor:
    """Per example, the mean over pixels of the variance across units: ``[B]``.

    ``attributions`` is ``[B, d_H, *input_shape]``; ``has_channels``: whether the input's
    first axis is a channel axis (images, series), averaged out before the variance.
    ``threshold``: if given, each normalised, channel-averaged map is set to 1 where it is
    at least ``threshold`` and to 0 elsewhere before the variance.
    """
    maps = min_max_normalise(attributions, start_dim=2)
    if has_channels:
        maps = maps.mean(dim=2)
    if threshold is not None:
        maps = (maps >= threshold).double()
    return maps.var(dim=1, correction=0).flatten(1).mean(dim=1)


@register_metric("variance_score")
class VarianceScore(Metric):
    """Variance across units of normalised per-unit maps, mean over pixels (Bertolini et al.).

    ``binarise``: the paper's choice for its variance curves (Sec. 4.3, Fig. 5): "The
    attributions have been rescaled to the values (after normalization) according to the
    threshold" (the extracted text lost the values and the threshold). Read with the
    Popoviciu discussion of Sec. 3.2, where the bound is reached when a "superpixel" is
    "either considered on/off in each representation component", the values are {0, 1}:
    each unit's normalised (channel-averaged) map is switched on where it reaches
    ``threshold``. The paper's number is not recoverable; 0.5, the middle of the
    normalised range, is our choice.
    ``binarise: false`` keeps the continuous normalised maps (the score of equation (3)
    without the rescaling).
    """

    explains = "unit"
    direction = "higher"  # distinct units look at distinct features

    def __init__(
        self,
        binarise: bool = True,
        threshold: Annotated[float, Field(gt=0, le=1)] = 0.5,
    ):
        self.binarise = binarise
        self.threshold = threshold

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        # [B, C, H, W] images and [B, C, T] series have a channel axis; [B, F] tables not.
        per_example = unit_variances(
            context.attributions,
            context.inputs.dim() >= 3,
            self.threshold if self.binarise else None,
        )
        return MetricResult(
            value=per_example.mean().item(),
            samples={"per-example variance score": per_example.tolist()},
            details={"upper_bound": POPOVICIU_BOUND},
        )
