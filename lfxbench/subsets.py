"""Subsets of a training set and what models retrained on them do: the shared vocabulary of
the metrics that ask "what if these training examples had not been there?" (``lds``,
``retrain_without_top``) and of the engine that trains those models
(``lfxbench.execution.subset_models``).

A subset is a row of a boolean mask over the training set (``keep[k, i]``: model ``k``
trained on example ``i``). What is kept of a retrained model is its label-free output on
the explained test examples, not its weights: that is all the metrics read, and it is small
enough to cache for hundreds of models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class SubsetSpec:
    """``n_subsets`` subsets of ``size`` training examples each, drawn uniformly without
    replacement; ``seed`` (with the model's seed) fixes the draw."""

    n_subsets: int
    size: int
    seed: int = 0

    def config(self) -> dict[str, Any]:
        return {"n_subsets": self.n_subsets, "size": self.size, "seed": self.seed}


@dataclass(frozen=True)
class ChosenSubsets:
    """Subsets a metric chose for one cell from the method's scores: the rows of ``keep``
    (bool ``[K, n_train]``, equal sizes), cached under the cell and the metric's ``tag``."""

    keep: torch.Tensor
    tag: str


# What a metric asks the engine to retrain: random subsets every method of a model and seed
# shares, or subsets chosen for the cell.
WantedSubsets = SubsetSpec | ChosenSubsets


@dataclass
class SubsetOutputs:
    """What models retrained on subsets do on the explained test examples.

    ``keep``: bool ``[K, n_train]``, the training examples each model saw; ``loss``:
    ``[K, n_test]``, each model's per-example training loss on each test example (for a
    stochastic objective, the same noise draws for every model and for the full one);
    ``latent_cosine``: ``[K, n_test]``, the cosine similarity of each model's latent of a
    test example to the full model's; ``reference_loss``: ``[n_test]``, the full model's
    loss; ``seconds``: the time it took to train these models (stored with them, so a cell
    reports its retraining cost whether the models were trained for it, ahead of it beside
    other cells' or by an earlier run).
    """

    keep: torch.Tensor
    loss: torch.Tensor
    latent_cosine: torch.Tensor
    reference_loss: torch.Tensor
    seconds: float = 0.0

    def payload(self) -> dict[str, Any]:
        return {
            "keep": self.keep.cpu(),
            "loss": self.loss.cpu(),
            "latent_cosine": self.latent_cosine.cpu(),
            "reference_loss": self.reference_loss.cpu(),
            "seconds": self.seconds,
        }


def draw_subsets(n: int, spec: SubsetSpec, model_seed: int) -> torch.Tensor:
    """``keep`` masks ``[spec.n_subsets, n]`` of ``spec.size`` examples each.

    Seeded by the spec's seed and the model's seed only (never the method's), so every
    method of a model and seed is judged on the same subsets.
    """
    if not 1 <= spec.size <= n:
        raise ValueError(f"subsets of {spec.size} examples from a training set of {n}")
    rng = np.random.default_rng([spec.seed, model_seed])
    keep = np.zeros((spec.n_subsets, n), dtype=bool)
    for row in keep:
        row[rng.choice(n, size=spec.size, replace=False)] = True
    return torch.from_numpy(keep)


def subset_outputs_problem(payload: dict[str, Any], keep: torch.Tensor, n_test: int) -> str | None:
    """Why cached subset outputs are not those of the models on ``keep`` for ``n_test``
    explained examples, or None."""
    stored = payload.get("keep")
    if not isinstance(stored, torch.Tensor) or stored.dtype != torch.bool:
        return "its 'keep' is not a boolean mask of the training subsets"
    if stored.shape != keep.shape or not torch.equal(stored, keep.cpu()):
        return "it holds models trained on other subsets of the training set"
    for name, shape in (
        ("loss", (len(keep), n_test)),
        ("latent_cosine", (len(keep), n_test)),
        ("reference_loss", (n_test,)),
    ):
        value = payload.get(name)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            return f"its {name!r} is not a tensor of shape {list(shape)}"
    if not isinstance(payload.get("seconds"), int | float):
        return "its 'seconds' is not a number"
    return None


def rank_rows(values: torch.Tensor) -> torch.Tensor:
    """Ranks along the last axis, ties sharing their mean rank (as Spearman's needs)."""
    from scipy.stats import rankdata

    return torch.from_numpy(rankdata(values.double().cpu().numpy(), axis=-1)).to(values.device)


def spearman_rows(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Spearman correlation of each row of ``first`` with the same row of ``second``; NaN
    for a row that is constant on either side (no ordering to agree with)."""
    a, b = rank_rows(first), rank_rows(second)
    a, b = a - a.mean(dim=-1, keepdim=True), b - b.mean(dim=-1, keepdim=True)
    scale = (a.pow(2).sum(dim=-1) * b.pow(2).sum(dim=-1)).sqrt()
    correlation = (a * b).sum(dim=-1) / scale
    return torch.where(scale > 0, correlation, torch.nan)
