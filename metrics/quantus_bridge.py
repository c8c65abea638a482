"""Quantus metrics on encoders: a label-free head in place of a classifier.

Quantus scores a classifier's logit ``y_batch[i]`` of example ``i``. An encoder ``f`` has no
logits, so :class:`SimilarityHead` gives it one per explained example: column ``j`` of its
output is ``cos(f(x), f(x_ref_j))`` for the explained inputs ``x_ref``, and ``y_batch = arange``
picks, for each (perturbed) example, its similarity to its own clean embedding.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lfxbench.environment import seeded
from lfxbench.errors import LfxbenchError
from lfxbench.metrics.base import EvaluationContext, MetricResult

# Keyword arguments every Quantus metric here is built with: lfxbench reports progress
# and counts the cases Quantus would warn about.
QUIET: dict[str, Any] = {"disable_warnings": True, "display_progressbar": False}


class SimilarityHead(nn.Module):
    """``x -> [len(x), len(references)]`` cosine similarities of ``f(x)`` and ``f(references)``.

    The references are re-encoded on every forward pass: Quantus's parameter randomisation
    perturbs copies of this module, and the references' embeddings must move with them. The
    head has no parameters of its own, so every layer Quantus randomises is the encoder's.
    ``labels`` are the references' labels, for explanation functions that need them (Quantus
    hands them the head, not the examples' positions).
    """

    def __init__(
        self, encoder: nn.Module, references: torch.Tensor, labels: torch.Tensor | None = None
    ):
        super().__init__()
        self.encoder = encoder
        # Buffers follow the module through deepcopy and .to(); not persistent, so the
        # state dict holds the encoder's weights only.
        self.register_buffer("references", references.detach(), persistent=False)
        self.register_buffer("labels", labels, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Quantus hands over float32 tensors whatever the encoder's dtype.
        latents = self.encoder(x.to(self.references)).flatten(1)
        reference_latents = self.encoder(self.references).flatten(1)
        return F.cosine_similarity(latents[:, None], reference_latents[None], dim=-1)


def feature_limit(inputs: torch.Tensor) -> int:
    """The largest feature-subset size (``subset_size``, ``k``) Quantus accepts for ``inputs``.

    Quantus asserts such sizes are strictly smaller than one channel's size (``H x W``), not
    the number of features of an example.
    """
    return math.prod(inputs.shape[2:] if inputs.dim() > 2 else inputs.shape[1:]) - 1


def run_quantus(
    metric: Any,
    context: EvaluationContext,
    *,
    n_examples: int | None = None,
    explain_func: Callable[..., np.ndarray] | None = None,
    with_masks: bool = False,
) -> np.ndarray | dict[str, np.ndarray]:
    """Run a Quantus metric instance on the (first ``n_examples``) explained examples.

    Called once per chunk of ``context.batch_size`` examples, with a :class:`SimilarityHead`
    over that chunk only. Returns one score per example, or for a metric that scores each
    randomised layer (MPRT) a dict layer name -> scores. ``with_masks`` passes the context's
    ground-truth masks as ``s_batch``; Quantus wants one-channel masks, so masks are merged
    over channels (any) and attributions summed over channels to match.
    """
    n = len(context.inputs) if n_examples is None else min(n_examples, len(context.inputs))
    if with_masks:
        if context.masks is None:
            raise ValueError("run_quantus(with_masks=True) needs context.masks")
        if len(context.masks) != len(context.inputs) or (
            context.masks.shape[2:] != context.inputs.shape[2:]
        ):
            raise ValueError(
                f"masks shaped {tuple(context.masks.shape)} do not match the explained inputs "
                f"shaped {tuple(context.inputs.shape)}"
            )
    chunks = []
    with seeded(context.seed):  # Quantus draws from numpy and torch
        for start in range(0, n, context.batch_size):
            stop = min(start + context.batch_size, n)
            inputs = context.inputs[start:stop]
            attributions = context.attributions[start:stop]
            masks = None
            if with_masks:
                masks = context.masks[start:stop].any(dim=1, keepdim=True).cpu().numpy()
                attributions = attributions.sum(dim=1, keepdim=True)
            head = SimilarityHead(context.encoder, inputs, context.labels[start:stop]).eval()
            with warnings.catch_warnings():
                # Quantus warns per example, e.g. when a random subset holds only baseline values.
                warnings.filterwarnings("ignore", module="quantus")
                # Correlations of a constant explanation are NaN; callers count them instead.
                warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
                try:
                    scores = metric(
                        model=head,
                        x_batch=inputs.detach().float().cpu().numpy(),
                        y_batch=np.arange(len(inputs)),
                        a_batch=attributions.detach().float().cpu().numpy(),
                        s_batch=masks,
                        channel_first=True,
                        explain_func=explain_func,
                        softmax=False,
                        device=str(context.device),
                        batch_size=len(inputs),
                    )
                except AssertionError as error:
                    # Quantus asserts on what it cannot score (e.g. all-zero attributions).
                    raise LfxbenchError(
                        f"Quantus {type(metric).__name__} refused examples "
                        f"{start}-{stop - 1}: {error}"
                    ) from error
                chunks.append(scores)
    if isinstance(chunks[0], dict):
        return {
            name: np.concatenate([np.asarray(chunk[name], dtype=float) for chunk in chunks])
            for name in chunks[0]
        }
    return np.concatenate([np.asarray(chunk, dtype=float) for chunk in chunks])


def scores_result(scores: np.ndarray, group: str, **details: float) -> MetricResult:
    """Mean of per-example scores; undefined (NaN) scores are left out and counted."""
    defined = scores[~np.isnan(scores)]
    undefined = len(scores) - len(defined)
    return MetricResult(
        value=float(defined.mean()) if len(defined) else float("nan"),
        samples={group: defined.tolist()},
        details={**details, **({"undefined_scores": float(undefined)} if undefined else {})},
    )
