"""ROAR (RemOve And Retrain, Hooker et al. 2019) for encoders: retrain without the top-k%."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from lfxbench.baselines import Baseline
from lfxbench.batching import in_batches
from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.ranking import FeatureUnit, RankBy, counts_of, feature_ranks, top_masks
from lfxbench.registry import register_metric

Fraction = Annotated[float, Field(gt=0, lt=1)]


def remove_top(
    inputs: torch.Tensor,
    ranks: torch.Tensor,
    baselines: torch.Tensor,
    fraction: float,
    unit: FeatureUnit = "pixel",
) -> torch.Tensor:
    """``inputs`` with each example's top ``fraction`` of units (by their attribution
    ``ranks``, :func:`lfxbench.ranking.feature_ranks` of the same ``unit``) replaced by the
    baseline."""
    input_shape = tuple(inputs.shape[1:])
    counts = torch.tensor(counts_of([fraction], input_shape, unit))
    removed = top_masks(ranks, counts, input_shape, unit)[0]
    return torch.where(removed, baselines, inputs)


@register_metric("roar")
class Roar(Metric):
    """Remove each training image's top-k% features, retrain, and measure the test loss.

    Features are ranked as in ``latent_shift`` (the paper's: |attribution| per pixel or
    time step, whole pixels removed; ``rank_by`` / ``unit`` choose the alternatives of
    :mod:`lfxbench.ranking`); the baseline is the model's own unless ``baseline`` is given.
    """

    retrains_models = True  # with the model's recipe: it needs a trainable model

    explains = "feature"
    direction = "higher"  # removing truly important features should hurt the most

    def __init__(
        self,
        fractions: Annotated[tuple[Fraction, ...], Field(min_length=1)] = (0.1, 0.3, 0.5),
        baseline: Baseline | None = None,
        rank_by: RankBy = "absolute",
        unit: FeatureUnit = "pixel",
    ):
        # The retrained model is scored on the clean test set with the model's own loss: an
        # autoencoder that never saw the removed features cannot reconstruct them, while on
        # equally ablated test images the task would only get easier.
        self.fractions = sorted(fractions)
        self.baseline = baseline
        self.rank_by = rank_by
        self.unit = unit

    @torch.no_grad()
    def test_loss(self, model, context: EvaluationContext) -> float:
        model.eval()
        losses = in_batches(
            lambda batch: model.loss(context.inputs[batch], context.labels[batch], context.recipe),
            len(context.inputs),
            context.batch_size,
        )
        return losses.mean().item()

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        needed = (context.retrain, context.explain, context.model, context.train_inputs)
        if any(hook is None for hook in needed):
            raise ValueError(
                "roar retrains models: it needs the engine's retrain and explain hooks, the "
                "model and its training inputs"
            )
        train_inputs = context.train_inputs.to(context.device)
        ranks = feature_ranks(
            context.explain(train_inputs, context.train_labels), self.rank_by, self.unit
        )
        baselines = context.baseline_of(train_inputs, self.baseline)
        reference = self.test_loss(context.model, context)
        increases = []
        for fraction in self.fractions:
            ablated = remove_top(train_inputs, ranks, baselines, fraction, self.unit)
            retrained = context.retrain(ablated, f"roar-{fraction:g}")
            increases.append(self.test_loss(retrained, context) - reference)
        area = np.trapezoid(np.r_[0.0, increases], np.r_[0.0, self.fractions])
        return MetricResult(
            value=float(area / self.fractions[-1]),
            curve=[(0.0, 0.0), *zip(self.fractions, increases, strict=True)],
            curve_axes=("fraction of features removed before retraining", "test loss increase"),
            details={"reference_test_loss": reference},
        )
