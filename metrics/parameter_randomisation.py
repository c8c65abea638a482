"""Model parameter randomisation (Adebayo et al., 2018) through Quantus's MPRT, label-free.

The encoder's layers are randomised one by one from the top (cascading), and the cell's
method re-explains the examples after each step. A method whose explanations stay similar
to the trained model's does not depend on what the model learned: lower is better.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import quantus
import torch
from pydantic import Field

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.metrics.quantus_bridge import QUIET, SimilarityHead, run_quantus
from lfxbench.registry import register_metric

SIMILARITIES = {
    "spearman": quantus.similarity_func.correlation_spearman,
    "pearson": quantus.similarity_func.correlation_pearson,
    "kendall": quantus.similarity_func.correlation_kendall_tau,
}
UNRANDOMISED = "original"  # Quantus's key for the model before any randomisation


@register_metric("model_parameter_randomisation")
class ModelParameterRandomisation(Metric):
    """Similarity of explanations before and after cascading top-down layer randomisation."""

    explains = "feature"
    direction = "lower"

    def __init__(
        self,
        # MPRT re-explains every example once per randomisable layer.
        n_examples: Annotated[int, Field(ge=1, le=100_000)] = 32,
        similarity: Literal["spearman", "pearson", "kendall"] = "spearman",
    ):
        self.n_examples = n_examples
        self.similarity = similarity

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        explain_with = context.explain_with
        if explain_with is None:
            raise ValueError(
                "model_parameter_randomisation needs context.explain_with, the cell's method "
                "applied to another encoder"
            )

        def explain(model: SimilarityHead, inputs: np.ndarray, targets: Any, **kwargs: Any):
            # Quantus passes the head itself (original or a randomised deep copy): explain its
            # encoder. Row i of `inputs` is the head's reference `targets[i]`.
            batch = torch.from_numpy(inputs).to(context.device, context.inputs.dtype)
            labels = model.labels[torch.as_tensor(targets, device=model.labels.device)]
            return explain_with(model.encoder, batch, labels).float().cpu().numpy()

        metric = quantus.MPRT(
            similarity_func=SIMILARITIES[self.similarity],
            layer_order="top_down",
            seed=context.seed,
            **QUIET,
        )
        scores = run_quantus(metric, context, n_examples=self.n_examples, explain_func=explain)
        unrandomised = scores.pop(UNRANDOMISED)
        layers = np.stack(list(scores.values()))  # [steps, examples]
        # NaN where an explanation is constant (e.g. all-zero gradients of a dead network).
        per_step = np.nanmean(layers, axis=1)
        per_example = np.nanmean(layers, axis=0)
        names = [name.removeprefix("encoder.") for name in scores]
        return MetricResult(
            value=float(np.nanmean(layers)),
            curve=[(0.0, float(np.nanmean(unrandomised)))]
            + [(float(step), float(value)) for step, value in enumerate(per_step, start=1)],
            curve_axes=("layers randomised (top down)", "similarity to the trained explanation"),
            samples={
                "per-example similarity (mean over layers)": per_example[
                    ~np.isnan(per_example)
                ].tolist()
            },
            details={
                "unrandomised": float(np.nanmean(unrandomised)),
                **{f"layer {name}": float(v) for name, v in zip(names, per_step, strict=True)},
                "undefined_similarities": float(np.isnan(layers).sum()),
            },
        )
