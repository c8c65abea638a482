"""Attribution entropy: is each salient feature explained by one latent unit or by many?"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
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
    """Mean entropy over units of salient features (0: one unit; log d_H: all alike).

    At each (example, feature) the units' |attributions| are normalised to shares that sum
    to one, and their Shannon entropy (natural log) is taken. ``pooling``: ``pooled`` is
    the paper's (App. C.3: one proportion per unit, feature and example, averaged over
    "the set of features that are salient for at least one latent unit") and its code's
    (``entropy_saliency``: every salient (example, pixel) row of the maps, one mean): one
    mean over all salient (example, feature) pairs, so an example with more salient
    features weighs more. ``per_example`` averages within each example first, then over
    examples. ``threshold`` 0 keeps every feature with a non-zero attribution, the
    paper's rule.
    """

    explains = "unit"
    direction = "lower"

    def __init__(
        self,
        threshold: Annotated[float, Field(ge=0, lt=1)] = 0.0,
        pooling: Literal["pooled", "per_example"] = "pooled",
    ):
        self.threshold = threshold
        self.pooling = pooling

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        entropies = feature_entropies(context.attributions, self.threshold)
        per_example = entropies.nanmean(dim=1)
        value = entropies.nanmean() if self.pooling == "pooled" else per_example.nanmean()
        n_units = context.attributions.shape[1]
        return MetricResult(
            value=value.item(),
            # Per example either way: the spread over examples, for box plots.
            samples={"per-example entropy": per_example.nan_to_num(0.0).tolist()},
            details={"max_entropy": float(torch.log(torch.tensor(float(n_units))))},
        )
