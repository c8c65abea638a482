"""Attribution entropy: is each salient feature explained by one latent unit or by many?"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from lfxbench.evaluation import EvaluationContext, Metric, MetricResult
from lfxbench.registry import register_metric


def feature_entropies(attributions: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Entropy over units of each salient feature's normalised |attribution|, ``[B, F]``.

    A feature is salient when its largest |attribution| over units exceeds ``threshold``
    times the example's largest; non-salient features are NaN.
    """
    weights = attributions.flatten(2).abs().double()  # [B, d, F]
    total = weights.sum(dim=1)  # [B, F]
    shares = weights / total.unsqueeze(1).clamp_min(torch.finfo(torch.float64).tiny)
    entropy = -(shares * shares.clamp_min(1e-300).log()).sum(dim=1)
    strongest = weights.amax(dim=1)
    salient = (strongest > threshold * strongest.amax(dim=1, keepdim=True)) & (total > 0)
    return entropy.masked_fill(~salient, float("nan"))


@register_metric("attribution_entropy")
class AttributionEntropy(Metric):
    """Mean entropy over units of salient features (0: one unit; log d_H: all alike)."""

    explains = "unit"
    direction = "lower"

    def __init__(self, threshold: Annotated[float, Field(ge=0, lt=1)] = 0.0):
        self.threshold = threshold

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        entropies = feature_entropies(context.attributions, self.threshold)
        per_example = entropies.nanmean(dim=1)
        n_units = context.attributions.shape[1]
        return MetricResult(
            value=per_example.nanmean().item(),
            samples={"per-example entropy": per_example.nan_to_num(0.0).tolist()},
            details={"max_entropy": float(torch.log(torch.tensor(float(n_units))))},
        )
