"""Unit Pearson: how alike are the saliency maps of an encoder's different latent units?"""

from __future__ import annotations

from typing import Literal

import torch

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.registry import register_metric


def correlations(maps: torch.Tensor) -> torch.Tensor:
    """Pearson correlations of the rows of ``maps[..., d, F]``: ``[..., d, d]``, NaN where a
    row is constant."""
    maps = maps.double()
    maps = maps - maps.mean(dim=-1, keepdim=True)
    maps = maps / maps.norm(dim=-1, keepdim=True)
    return maps @ maps.transpose(-1, -2)


def off_diagonal(correlation: torch.Tensor) -> torch.Tensor:
    """The entries ``(i, j), i != j`` of ``[..., d, d]`` matrices: ``[..., d (d - 1)]``."""
    n_units = correlation.shape[-1]
    distinct = ~torch.eye(n_units, dtype=torch.bool, device=correlation.device)
    return correlation[..., distinct]


def mean_unit_pearson(attributions: torch.Tensor) -> torch.Tensor:
    """Per example, the mean Pearson correlation over pairs of distinct units: ``[B]``."""
    return off_diagonal(correlations(attributions.flatten(2))).nanmean(dim=1)


def pooled_unit_pearsons(attributions: torch.Tensor) -> torch.Tensor:
    """One Pearson correlation per pair of distinct units ``(i, j)``, over all (example,
    feature) entries of the two units' maps at once: ``[d (d - 1)]``."""
    maps = attributions.flatten(2).transpose(0, 1).flatten(1)  # [d, B * F]
    return off_diagonal(correlations(maps))


@register_metric("unit_pearson")
class UnitPearson(Metric):
    """Mean Pearson correlation between the saliency maps of distinct latent units.

    ``pooling``: ``pooled`` is the paper's (App. C.3: "the correlation between two
    importance scores given a random test example and a random feature", one coefficient
    per couple of units; footnote 7: "We average the correlation over pairs of latent
    units") and its code's (``pearson_saliency``: ``corrcoef`` of each unit's maps
    flattened over examples and features, mean of the off-diagonal): one correlation per
    pair of units over every (example, feature) entry, so an example with larger
    attributions weighs more. ``per_example`` correlates the two maps of each example and
    averages over examples, blind to scale differences between examples. A unit whose map
    is constant has no correlation: its pairs are left out and counted (the reference
    code would return NaN).
    """

    explains = "unit"
    direction = "lower"  # distinct units should look at distinct features

    def __init__(self, pooling: Literal["pooled", "per_example"] = "pooled"):
        self.pooling = pooling

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        if self.pooling == "per_example":
            per_example = mean_unit_pearson(context.attributions)
            return MetricResult(
                value=per_example.nanmean().item(),
                samples={"per-example unit pearson": per_example.nan_to_num(0.0).tolist()},
            )
        per_pair = pooled_unit_pearsons(context.attributions)
        defined = per_pair[~per_pair.isnan()]
        undefined = len(per_pair) - len(defined)
        return MetricResult(
            value=defined.mean().item() if len(defined) else float("nan"),
            samples={"per-pair unit pearson": defined.tolist()},
            details={"undefined_pairs": float(undefined)} if undefined else {},
        )
