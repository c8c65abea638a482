"""Variance score: are the attribution maps of an encoder's latent units distinct?

Bertolini, Clevert and Montanari, "Explaining, evaluating and enhancing neural networks'
learned representations" (ICANN 2023): in a concise representation different units attend
to different features, so at a feature the units' (min-max normalised) attributions are
spread out. Per example, every unit's map is normalised to [0, 1], averaged over the input's
channels, and the variance across units is averaged over the pixels; higher is better. By
Popoviciu's inequality a variance of values in [0, 1] is at most 1/4, reached when half the
units score 0 and half 1.
"""

from __future__ import annotations

import torch

from lfxbench.evaluation import EvaluationContext, Metric, MetricResult
from lfxbench.metrics.noise_score import min_max_normalise
from lfxbench.registry import register_metric

POPOVICIU_BOUND = 0.25


def unit_variances(attributions: torch.Tensor, has_channels: bool) -> torch.Tensor:
    """Per example, the mean over pixels of the variance across units: ``[B]``.

    ``attributions`` is ``[B, d_H, *input_shape]``; ``has_channels``: whether the input's
    first axis is a channel axis (images, series), averaged out before the variance.
    """
    maps = min_max_normalise(attributions, start_dim=2)
    if has_channels:
        maps = maps.mean(dim=2)
    return maps.var(dim=1, correction=0).flatten(1).mean(dim=1)


@register_metric("variance_score")
class VarianceScore(Metric):
    """Variance across units of normalised per-unit maps, mean over pixels (Bertolini et al.)."""

    explains = "unit"
    direction = "higher"  # distinct units look at distinct features

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        # [B, C, H, W] images and [B, C, T] series have a channel axis; [B, F] tables not.
        per_example = unit_variances(context.attributions, context.inputs.dim() >= 3)
        return MetricResult(
            value=per_example.mean().item(),
            samples={"per-example variance score": per_example.tolist()},
            details={"upper_bound": POPOVICIU_BOUND},
        )
