"""Similarity rate: do the training examples a method ranks first share the test label?"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.registry import register_metric

PAPER_FRACTIONS = (0.05, 0.1, 0.2, 0.5, 0.7, 1.0)
Fraction = Annotated[float, Field(gt=0, le=1)]


@register_metric("similarity_rate")
class SimilarityRate(Metric):
    """Share of the top-M (and bottom-M) corpus examples with the explained example's label."""

    explains = "example"
    direction = "higher"

    def __init__(
        self,
        fractions: Annotated[tuple[Fraction, ...], Field(min_length=1)] = PAPER_FRACTIONS,
    ):
        # Labels are used here only: an encoder whose most important examples share the
        # label of the explained one has organised its latent space by class.
        self.fractions = sorted(fractions)

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        scores, corpus_labels = context.attributions, context.corpus_labels
        assert corpus_labels is not None
        n_corpus = scores.shape[1]
        order = scores.argsort(dim=1, descending=True, stable=True)
        same = (corpus_labels[order] == context.labels.unsqueeze(1)).double()
        cumulative = torch.nn.functional.pad(same.cumsum(dim=1), (1, 0))  # [N, n_corpus + 1]
        samples, details, curve = {}, {}, []
        for fraction in self.fractions:
            m = max(1, round(fraction * n_corpus))
            top = cumulative[:, m] / m
            bottom = (cumulative[:, n_corpus] - cumulative[:, n_corpus - m]) / m
            label = f"{fraction:.0%}"
            samples[f"top {label}"] = top.tolist()
            samples[f"bottom {label}"] = bottom.tolist()
            details[f"top_{label}"] = top.mean().item()
            details[f"bottom_{label}"] = bottom.mean().item()
            curve.append((fraction, top.mean().item()))
        smallest = f"{self.fractions[0]:.0%}"
        details["top_minus_bottom"] = details[f"top_{smallest}"] - details[f"bottom_{smallest}"]
        return MetricResult(
            value=details[f"top_{smallest}"],
            curve=curve,
            curve_axes=("fraction of the corpus (top M)", "similarity rate"),
            samples=samples,
            details=details,
        )
