"""Pearson agreement between the explanations of two encoders, or of two methods."""

from __future__ import annotations

from typing import Literal

import torch
from scipy import stats

from lfxbench.evaluation import MetricResult, PairwiseMetric
from lfxbench.registry import register_metric


def rowwise_pearson(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of ``first`` with the same row of ``second``."""
    first = first - first.mean(dim=1, keepdim=True)
    second = second - second.mean(dim=1, keepdim=True)
    denominator = first.norm(dim=1) * second.norm(dim=1)
    return (first * second).sum(dim=1) / denominator  # nan where a row is constant


@register_metric("pearson_agreement")
class PearsonAgreement(PairwiseMetric):
    """Correlation of two explanations of the same test examples (saliency or example scores)."""

    direction = "higher"

    def __init__(
        self,
        across: Literal["models", "methods"] = "models",
        absolute: bool = False,
        average: Literal["flattened", "per_example"] = "flattened",
    ):
        # `flattened` (the paper's tables): one correlation over all examples' scores;
        # `per_example`: the mean of each example's correlation.
        self.across = across
        self.absolute = absolute
        self.average = average

    def compare(self, first: torch.Tensor, second: torch.Tensor) -> MetricResult:
        first, second = first.flatten(1).double(), second.flatten(1).double()
        if self.absolute:
            first, second = first.abs(), second.abs()
        per_example = rowwise_pearson(first, second)
        flat_first, flat_second = first.flatten().cpu().numpy(), second.flatten().cpu().numpy()
        flattened = stats.pearsonr(flat_first, flat_second).statistic
        spearman = stats.spearmanr(flat_first, flat_second).statistic
        per_example_mean = per_example.nanmean().item()
        value = flattened if self.average == "flattened" else per_example_mean
        return MetricResult(
            value=float(value),
            samples={"per-example pearson": per_example.nan_to_num(0.0).tolist()},
            details={
                "pearson_flattened": float(flattened),
                "spearman_flattened": float(spearman),
                "pearson_per_example": per_example_mean,
            },
        )
