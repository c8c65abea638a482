"""Noise score: do an encoder's attributions of a real input differ from those of noise?

Bertolini, Clevert and Montanari, "Explaining, evaluating and enhancing neural networks'
learned representations" (ICANN 2023): an informative representation attends to the
content of an input, so the attribution map of a real input ``x`` should differ from that
of a noise input ``ε`` (uniform in the data's range, shaped like ``x``). With both maps
min-max normalised to [0, 1],

    NS = mean over x of MAE(norm(a(x)), norm(a(ε))),

higher is better. The benchmark reference is the same score between two independent noise
inputs ``ε, ε′``: how far apart the maps of two unrelated inputs are for this encoder and
method. A score near it means the real input is explained like noise.
"""

from __future__ import annotations

import torch

from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult
from lfxbench.registry import register_metric


def min_max_normalise(maps: torch.Tensor, start_dim: int = 1) -> torch.Tensor:
    """Every map (all dims from ``start_dim`` on) rescaled to [0, 1], in float64;
    a constant map becomes all zeros."""
    flat = maps.flatten(start_dim).double()
    low = flat.amin(dim=-1, keepdim=True)
    spread = flat.amax(dim=-1, keepdim=True) - low
    # A constant map has no salient feature: zeros, not the 0/0 of a rescaling.
    normalised = torch.where(spread > 0, (flat - low) / spread.clamp_min(1e-300), 0.0)
    return normalised.view(maps.shape)


def uniform_noise(inputs: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` uniform noise inputs in ``[inputs.min(), inputs.max()]``, shaped like one input,
    from the global RNG (the engine seeds it)."""
    low, high = inputs.min(), inputs.max()
    draws = torch.rand(n, *inputs.shape[1:], device=inputs.device, dtype=inputs.dtype)
    return low + (high - low) * draws


@register_metric("noise_score")
class NoiseScore(Metric):
    """MAE between the normalised maps of real inputs and of uniform noise (Bertolini et al.)."""

    explains = "feature"
    direction = "higher"  # a map that ignores the input is the same for noise

    def evaluate(self, context: EvaluationContext) -> MetricResult:
        if context.explain is None:
            raise ValueError("noise_score explains noise inputs: the context needs `explain`")
        batch = len(context.inputs)
        # Real-vs-noise and the noise-vs-noise reference: one explanation pass.
        noise = uniform_noise(context.inputs, 2 * batch)
        # Each noise input stands in for a real one: it is explained with that one's label.
        labels = context.labels.repeat(2)
        explained = context.explain(noise, labels).to(context.attributions.device)
        if explained.shape != noise.shape:
            raise ValueError(
                f"noise_score needs maps shaped like the inputs, got {tuple(explained.shape)} "
                f"for noise of shape {tuple(noise.shape)}"
            )
        real = min_max_normalise(context.attributions).flatten(1)
        first, second = min_max_normalise(explained).flatten(1).split(batch)
        scores = (real - first).abs().mean(dim=1)
        references = (first - second).abs().mean(dim=1)
        return MetricResult(
            value=scores.mean().item(),
            samples={
                "per-example noise score": scores.tolist(),
                "per-example noise reference": references.tolist(),
            },
            details={"reference": references.mean().item()},
        )
