"""Sparseness (Chalasani et al., 2020) through Quantus: the Gini index of |attributions|."""

from __future__ import annotations

import quantus

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.metrics.quantus_bridge import QUIET, run_quantus, scores_result
from lfxbench.registry import register_metric


@register_metric("sparseness")
class Sparseness(Metric):
    """Gini index of the absolute attribution map (0: uniform; ~1: one feature) (Quantus)."""

    explains = "feature"
    direction = "higher"

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        metric = quantus.Sparseness(**QUIET)
        return scores_result(run_quantus(metric, context), "per-example Gini index")
