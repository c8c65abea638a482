"""Retrain without the top examples: the removal check of example importance."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.registry import register_metric
from lfxbench.subsets import ChosenSubsets, SubsetSpec

SAMPLES = "loss increase over random removal"


def chosen_examples(n_test: int, count: int, seed: int) -> torch.Tensor:
    """Which explained test examples are checked: a seeded draw, the same for every method
    (the explained set is sorted by dataset position, so its first few are no sample)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_test, generator=generator)[: min(count, n_test)].sort().values


def without_top(scores: torch.Tensor, n_removed: int) -> torch.Tensor:
    """``keep`` masks ``[B, n_train]``: every training example but each row's ``n_removed``
    highest-scored (ties broken by position, so the mask does not depend on the device)."""
    order = scores.argsort(dim=1, descending=True, stable=True)[:, :n_removed]
    keep = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    return keep.scatter(1, order, False)


@register_metric("retrain_without_top")
class RetrainWithoutTop(Metric):
    """Remove a test example's top training examples, retrain, and compare with random ones.

    How much the test example's loss rises beyond removing as many random examples.

    For each of ``n_test_examples`` explained examples (a seeded draw, the same for every
    method) the ``fraction`` of the training set the method scores highest is removed and
    a fresh model is trained on the rest with the model's recipe and seed (one per test
    example, side by side, cached for this cell). The reference: ``n_random`` models
    trained without as many random training examples (shared by every method of the model
    and seed). Value: the mean over the checked examples of
    ``loss_without_top − mean loss_without_random``, the model's own per-example loss on the
    test example. Positive: the method's top examples are ones the model needed for it;
    around 0 for random scores. The corpus must be the model's whole training set.
    """

    explains = "example"
    direction = "higher"
    retrains_models = True
    needs_whole_training_set = True

    def __init__(
        self,
        n_test_examples: Annotated[int, Field(ge=1, le=10_000)] = 8,
        fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1,
        n_random: Annotated[int, Field(ge=1, le=10_000)] = 8,
        subset_seed: Annotated[int, Field(ge=0)] = 0,
    ):
        self.n_test_examples, self.fraction = n_test_examples, fraction
        self.n_random, self.subset_seed = n_random, subset_seed

    def subsets_to_retrain(self, scores: torch.Tensor) -> list[ChosenSubsets | SubsetSpec]:
        """Without each checked example's top examples, and without as many random ones."""
        n_test, n_train = scores.shape
        n_removed = min(n_train - 1, max(1, round(self.fraction * n_train)))
        which = chosen_examples(n_test, self.n_test_examples, self.subset_seed)
        keep = without_top(scores[which.to(scores.device)], n_removed)
        return [
            ChosenSubsets(keep, f"without-top-{n_removed}"),
            SubsetSpec(self.n_random, n_train - n_removed, self.subset_seed),
        ]

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        if context.subset_outputs is None:
            raise ValueError(
                "retrain_without_top retrains models: it needs the engine's subset_outputs hook"
            )
        scores = context.attributions
        without_top_subsets, random_subsets = self.subsets_to_retrain(scores)
        removed = context.subset_outputs(without_top_subsets)
        random = context.subset_outputs(random_subsets)
        n_test, n_train = scores.shape
        n_removed = n_train - random_subsets.size
        which = chosen_examples(n_test, self.n_test_examples, self.subset_seed)
        which = which.to(removed.loss.device)
        loss_top = removed.loss[torch.arange(len(which), device=which.device), which]
        loss_random = random.loss[:, which].mean(dim=0)
        increase = (loss_top - loss_random).double()
        return MetricResult(
            value=increase.mean().item(),
            samples={SAMPLES: increase.tolist()},
            details={
                "std_over_examples": increase.std().item() if len(increase) > 1 else 0.0,
                "share_positive": (increase > 0).double().mean().item(),
                "loss_without_top": loss_top.mean().item(),
                "loss_without_random": loss_random.mean().item(),
                "full_model_loss": removed.reference_loss[which].mean().item(),
                # The random reference's own spread: what a difference must clear.
                "random_removal_std": random.loss[:, which].std(dim=0).mean().item()
                if self.n_random > 1
                else float("nan"),
                "examples_removed": float(n_removed),
                "retraining_seconds": removed.seconds,
                "subset_training_seconds": random.seconds,
            },
        )
