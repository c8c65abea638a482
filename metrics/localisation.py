"""Localisation against ground-truth object masks, through Quantus.

Only datasets that know where the object is (procedural dSprites) have masks; Quantus takes
one-channel masks, so a pixel's attribution is summed over its channels (see
``lfxbench.metrics.quantus_bridge.run_quantus``).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import quantus
from pydantic import Field

from lfxbench.errors import LfxbenchError
from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.metrics.quantus_bridge import QUIET, feature_limit, run_quantus, scores_result
from lfxbench.registry import register_metric


def localisation_scores(name: str, metric: Any, context: EvaluationContext) -> np.ndarray:
    """Per-example scores of a Quantus localisation metric; NaN where a mask is empty."""
    if context.masks is None:
        raise LfxbenchError(
            f"metric {name!r} needs ground-truth object masks, and this dataset has none; "
            "restrict the metric to models of a dataset with masks (e.g. dSprites) with "
            "`models: [model ids]` in its suite entry"
        )
    scores = run_quantus(metric, context, with_masks=True)
    # Quantus's pointing game writes NaN into a bool array (True): mark empty masks here.
    scores[~context.masks.flatten(1).any(dim=1).cpu().numpy()] = np.nan
    return scores


@register_metric("pointing_game")
class PointingGame(Metric):
    """Does the attribution maximum fall inside the object mask? (Quantus)"""

    explains = "feature"
    direction = "higher"
    needs_object_masks = True

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        metric = quantus.PointingGame(**QUIET)
        scores = localisation_scores("pointing_game", metric, context)
        return scores_result(scores, "per-example hit")


@register_metric("top_k_intersection")
class TopKIntersection(Metric):
    """Fraction of the k most attributed pixels that lie inside the object mask (Quantus)."""

    explains = "feature"
    direction = "higher"
    needs_object_masks = True

    def __init__(self, k: Annotated[int, Field(ge=1)] = 1000):
        self.k = k

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        # Quantus rejects k >= the number of pixels; small inputs get the largest allowed.
        k = min(self.k, feature_limit(context.inputs))
        metric = quantus.TopKIntersection(k=k, **QUIET)
        scores = localisation_scores("top_k_intersection", metric, context)
        return scores_result(scores, "per-example intersection", k=float(k))


@register_metric("relevance_rank")
class RelevanceRank(Metric):
    """Fraction of the |mask| most attributed pixels inside the mask (Arras et al.) (Quantus)."""

    explains = "feature"
    direction = "higher"
    needs_object_masks = True

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        metric = quantus.RelevanceRankAccuracy(**QUIET)
        scores = localisation_scores("relevance_rank", metric, context)
        return scores_result(scores, "per-example rank accuracy")
