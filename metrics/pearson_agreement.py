"""Pearson (or Spearman) agreement between the explanations of two encoders or methods."""

from __future__ import annotations

from typing import Literal

import torch
from scipy import stats

from lfxbench.metrics.base import MetricResult, PairwiseMetric
from lfxbench.registry import register_metric


def rowwise_pearson(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of ``first`` with the same row of ``second``."""
    first = first - first.mean(dim=1, keepdim=True)
    second = second - second.mean(dim=1, keepdim=True)
    denominator = first.norm(dim=1) * second.norm(dim=1)
    return (first * second).sum(dim=1) / denominator  # nan where a row is constant


def row_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Each row's ranks, ties given their average rank (``scipy.stats.rankdata``)."""
    ranks = stats.rankdata(scores.cpu().numpy(), axis=1)
    return torch.from_numpy(ranks).to(scores.device, torch.float64)


@register_metric("pearson_agreement")
class PearsonAgreement(PairwiseMetric):
    """Correlation of two explanations of the same test examples (saliency or example scores)."""

    direction = "higher"

    def __init__(
        self,
        across: Literal["models", "methods"] = "models",
        absolute: bool = False,
        average: Literal["flattened", "per_example"] = "flattened",
        correlation: Literal["pearson", "spearman"] = "pearson",
    ):
        # `flattened` (the paper's tables): one correlation over all examples' scores;
        # `per_example`: the mean of each example's correlation. `spearman` correlates
        # ranks (ties averaged): whether two methods order the features / corpus alike.
        self.across = across
        self.absolute = absolute
        self.average = average
        self.correlation = correlation

    def compare(self, first: torch.Tensor, second: torch.Tensor) -> MetricResult:
        first, second = first.flatten(1).double(), second.flatten(1).double()
        if self.absolute:
            first, second = first.abs(), second.abs()
        per_example = rowwise_pearson(first, second)
        per_example_spearman = rowwise_pearson(row_ranks(first), row_ranks(second))
        flat_first, flat_second = first.flatten().cpu().numpy(), second.flatten().cpu().numpy()
        flattened = stats.pearsonr(flat_first, flat_second).statistic
        spearman = stats.spearmanr(flat_first, flat_second).statistic
        details = {
            "pearson_flattened": float(flattened),
            "spearman_flattened": float(spearman),
            "pearson_per_example": per_example.nanmean().item(),
            "spearman_per_example": per_example_spearman.nanmean().item(),
            "spearman_per_example_min": per_example_spearman.nan_to_num(1.0).min().item(),
        }
        chosen = per_example if self.correlation == "pearson" else per_example_spearman
        value = details[f"{self.correlation}_{self.average}"]
        return MetricResult(
            value=float(value),
            samples={f"per-example {self.correlation}": chosen.nan_to_num(0.0).tolist()},
            details=details,
        )
