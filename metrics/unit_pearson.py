"""Unit Pearson: how alike are the saliency maps of an encoder's different latent units?"""

from __future__ import annotations

import torch

from lfxbench.evaluation import EvaluationContext, Metric, MetricResult
from lfxbench.registry import register_metric


def mean_unit_pearson(attributions: torch.Tensor) -> torch.Tensor:
    """Per example, the mean Pearson correlation over pairs of distinct units: ``[B]``."""
    maps = attributions.flatten(2).double()  # [B, d, F]
    maps = maps - maps.mean(dim=2, keepdim=True)
    maps = maps / maps.norm(dim=2, keepdim=True)
    correlation = maps @ maps.transpose(1, 2)  # [B, d, d]; nan where a map is constant
    n_units = correlation.shape[1]
    off_diagonal = ~torch.eye(n_units, dtype=torch.bool, device=correlation.device)
    return correlation[:, off_diagonal].nanmean(dim=1)


@register_metric("unit_pearson")
class UnitPearson(Metric):
    """Mean Pearson correlation between the saliency maps of distinct latent units."""

    explains = "unit"
    direction = "lower"  # distinct units should look at distinct features

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        per_example = mean_unit_pearson(context.attributions)
        return MetricResult(
            value=per_example.nanmean().item(),
            samples={"per-example unit pearson": per_example.nan_to_num(0.0).tolist()},
        )
