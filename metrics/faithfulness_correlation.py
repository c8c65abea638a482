"""Faithfulness correlation (Bhatt et al., 2020) through Quantus, label-free.

Random feature subsets are replaced by a baseline; across runs, the attribution summed over
the subset should correlate (Pearson) with the drop of the example's cosine similarity to its
own clean embedding (see ``lfxbench.metrics.quantus_bridge``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import quantus
from pydantic import Field

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.metrics.quantus_bridge import QUIET, feature_limit, run_quantus, scores_result
from lfxbench.registry import register_metric


@register_metric("faithfulness_correlation")
class FaithfulnessCorrelation(Metric):
    """Pearson correlation of subset attribution sums and similarity drops (Quantus)."""

    explains = "feature"
    direction = "higher"

    def __init__(
        self,
        nr_runs: Annotated[int, Field(ge=2, le=100_000)] = 100,
        subset_size: Annotated[int, Field(ge=1)] = 224,
        # Quantus's per-example fills: black = the example's minimum, white = its maximum,
        # mean = its mean, uniform = one U(0, 1) draw per example and run.
        perturb_baseline: Literal["black", "white", "mean", "uniform"] = "black",
    ):
        self.nr_runs = nr_runs
        self.subset_size = subset_size
        self.perturb_baseline = perturb_baseline

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        # Quantus rejects a subset as large as one channel; small inputs get the largest allowed.
        subset_size = min(self.subset_size, feature_limit(context.inputs))
        metric = quantus.FaithfulnessCorrelation(
            nr_runs=self.nr_runs,
            subset_size=subset_size,
            perturb_baseline=self.perturb_baseline,
            return_aggregate=False,
            **QUIET,
        )
        scores = run_quantus(metric, context)
        return scores_result(scores, "per-example correlation", subset_size=float(subset_size))
