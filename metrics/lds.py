"""Linear datamodeling score (LDS; Park et al., 2023, "TRAK") for label-free example
importance: do the method's scores predict what retraining on a subset does?"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.registry import register_metric
from lfxbench.subsets import SubsetSpec, spearman_rows

SAMPLES = "LDS per test example"
SUBSET_RESAMPLES = 200  # bootstrap resamples of the subsets, for the spread of the value


@register_metric("lds")
class LinearDatamodelingScore(Metric):
    """Spearman over random training subsets of summed scores vs the retrained output (LDS).

    The correlation, over subsets, between the summed scores of a subset's examples and the
    label-free output of a model retrained on that subset.
    ``n_subsets`` subsets of ``alpha`` × the training set are drawn (the same for every
    method of a model and seed) and a fresh model is trained on each with the model's own
    recipe and seed (side by side, cached once for all methods). For each explained test
    example ``x`` and subset ``S``, the prediction is ``Σ_{i ∈ S} score(x, i)`` and the
    observed output is, by ``output``:

    * ``loss`` (default): the retrained model's own per-example loss on ``x`` (the
      reconstruction or denoising error; labels reach it only through a supervised
      objective). Scores are "helpful = high", and a subset full of helpful examples should
      leave a *lower* loss, so the prediction is correlated with ``−loss``;
    * ``latent_cosine``: the cosine similarity of the retrained latent of ``x`` to the full
      model's (higher: the subset reproduces the representation). Latent spaces of separate
      trainings need not be aligned; every subset model starts from the full model's
      initial weights, which keeps them comparable only as far as training does not rotate
      them.

    Higher is better for both: 1 means the scores order the subsets exactly as retraining
    does, 0 no better than chance. The value is the mean over test examples (their LDS are
    the samples, for box plots and intervals over examples); a test example whose scores
    or outputs do not vary over the subsets has no LDS and is left out (counted in the
    details). Intervals over test examples hold the subsets fixed, yet every example is
    judged on the same subsets: the details' ``subset_draw_*`` (a bootstrap over subsets)
    say how far another draw of as many subsets would move the value. The corpus must be
    the model's whole training set (checked at validation).
    """

    explains = "example"
    direction = "higher"
    retrains_models = True  # with the model's recipe: it needs a trainable model
    needs_whole_training_set = True  # subsets of the corpus are subsets of the training set

    def __init__(
        self,
        n_subsets: Annotated[int, Field(ge=3, le=10_000)] = 32,
        alpha: Annotated[float, Field(gt=0, lt=1)] = 0.5,
        output: Literal["loss", "latent_cosine"] = "loss",
        subset_seed: Annotated[int, Field(ge=0)] = 0,
    ):
        self.n_subsets, self.alpha, self.output = n_subsets, alpha, output
        self.subset_seed = subset_seed

    def subsets_to_retrain(self, scores: torch.Tensor) -> list[SubsetSpec]:
        n_train = scores.shape[1]
        size = min(n_train - 1, max(1, round(self.alpha * n_train)))
        return [SubsetSpec(self.n_subsets, size, self.subset_seed)]

    def _subset_draw_spread(self, predicted: torch.Tensor, observed: torch.Tensor):
        """SciPy's percentile bootstrap of the mean LDS over the subsets (resampled with
        their outputs, the test examples kept)."""
        from scipy import stats

        def mean_lds(subsets: np.ndarray) -> float:
            columns = torch.from_numpy(subsets).to(predicted.device)
            values = spearman_rows(predicted[:, columns], observed[:, columns])
            return values.nanmean().item()

        return stats.bootstrap(
            (np.arange(predicted.shape[1]),),
            mean_lds,
            vectorized=False,
            n_resamples=SUBSET_RESAMPLES,
            method="percentile",
            rng=np.random.default_rng(self.subset_seed),
        )

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        if context.subset_outputs is None:
            raise ValueError("lds retrains models: it needs the engine's subset_outputs hook")
        scores = context.attributions.double()  # [n_test, n_train]
        (subsets,) = self.subsets_to_retrain(scores)
        outputs = context.subset_outputs(subsets)
        keep = outputs.keep.to(scores.device, torch.float64)  # [K, n_train]
        predicted = scores @ keep.T  # [n_test, K]: each subset's summed scores
        # Helpful scores should predict a lower loss: correlate with its negative.
        observed = -outputs.loss if self.output == "loss" else outputs.latent_cosine
        observed = observed.T.to(scores.device, torch.float64)  # [n_test, K]
        per_example = spearman_rows(predicted, observed)
        defined = per_example[~per_example.isnan()]
        subset_draw = self._subset_draw_spread(predicted, observed)
        value = defined.mean().item() if len(defined) else float("nan")
        spread = defined.std().item() if len(defined) > 1 else float("nan")
        return MetricResult(
            value=value,
            samples={SAMPLES: defined.tolist()},
            details={
                "std_over_examples": spread,
                # The examples share the subsets: how far another draw of as many subsets
                # would move the value (a bootstrap over subsets), which intervals over
                # examples do not show.
                "subset_draw_standard_error": subset_draw.standard_error,
                "subset_draw_ci_low": subset_draw.confidence_interval.low,
                "subset_draw_ci_high": subset_draw.confidence_interval.high,
                "median": defined.median().item() if len(defined) else float("nan"),
                "undefined_examples": float(len(per_example) - len(defined)),
                "subset_size": float(subsets.size),
                # Near 0: retraining on other subsets barely moves the output, and the LDS
                # of any method is mostly noise.
                "output_std_over_subsets": observed.std(dim=1).mean().item(),
                "mean_subset_loss": outputs.loss.mean().item(),
                "full_model_loss": outputs.reference_loss.mean().item(),
                "subset_training_seconds": outputs.seconds,
            },
        )
