"""Complexity (Bhatt et al., 2020) through Quantus: the entropy of normalised |attributions|."""

from __future__ import annotations

import math

import quantus

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.metrics.quantus_bridge import QUIET, run_quantus, scores_result
from lfxbench.registry import register_metric


@register_metric("complexity")
class Complexity(Metric):
    """Entropy of the attribution shares (0: one feature; log D: all alike) (Quantus)."""

    explains = "feature"
    direction = "lower"

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        metric = quantus.Complexity(**QUIET)
        scores = run_quantus(metric, context)
        return scores_result(
            scores, "per-example entropy", max_entropy=math.log(context.inputs[0].numel())
        )
