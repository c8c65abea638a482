"""COCOA: contrastive corpus attribution (Lin et al., ICLR 2023).

COCOA explains a representation relative to a *corpus* (examples like the explicand) and
a *foil* (examples it should be told apart from) through the scalar

    g(x~) = mean_c cos(f(x~), f(c)) - mean_b cos(f(x~), f(b)),

and any label-free Captum method attributes ``g``. Both means are linear in the unit
vector ``f(x~) / |f(x~)|``, so each collapses to one direction: ``g(x~) = <f^(x~), u>`` with
``u`` the mean unit corpus embedding minus the mean unit foil embedding. The corpus and
foil are never re-encoded inside the attribution.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lfxbench.explanation import FeatureMethod
from lfxbench.registry import METHODS, register_method

ENCODE_BATCH = 256


@torch.no_grad()
def unit_embeddings(encoder: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``f(x) / |f(x)|`` of any number of inputs, moved to the encoder's device a chunk at a
    time (the training set stays on the CPU)."""
    device = next(encoder.parameters()).device
    chunks = inputs.split(ENCODE_BATCH)
    latents = torch.cat([encoder(chunk.to(device)).flatten(1) for chunk in chunks])
    return F.normalize(latents, dim=1)


class ContrastiveCorpusAuxiliary(nn.Module):
    """``g(x~, u) = <f(x~) / |f(x~)|, u>`` with one direction ``u`` per explained example.

    ``u`` plays the part of the label-free auxiliary's reference latent, so every Captum
    layout expands it with the inputs.
    """

    def __init__(
        self,
        encoder: nn.Module,
        foil_direction: torch.Tensor,
        corpus_direction: torch.Tensor | None = None,
        neighbour_pool: torch.Tensor | None = None,
        corpus_size: int = 100,
    ):
        super().__init__()
        self.encoder = encoder
        self.foil_direction = foil_direction
        self.corpus_direction = corpus_direction
        self.neighbour_pool = neighbour_pool
        self.corpus_size = corpus_size

    @torch.no_grad()
    def corpus_directions(self, inputs: torch.Tensor) -> torch.Tensor:
        """The mean unit corpus embedding of each explained example, ``[B, d]``."""
        if self.corpus_direction is not None:
            return self.corpus_direction.expand(len(inputs), -1)
        assert self.neighbour_pool is not None
        similarities = unit_embeddings(self.encoder, inputs) @ self.neighbour_pool.T
        nearest = similarities.topk(min(self.corpus_size, len(self.neighbour_pool)), dim=1)
        return self.neighbour_pool[nearest.indices].mean(dim=1)

    @torch.no_grad()
    def reference_latents(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.corpus_directions(inputs) - self.foil_direction

    def forward(self, inputs: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return (F.normalize(self.encoder(inputs).flatten(1), dim=1) * directions).sum(dim=1)


@register_method("cocoa")
class Cocoa(FeatureMethod):
    """A label-free Captum method applied to COCOA's corpus-vs-foil similarity.

    ``corpus``: ``random`` draws ``corpus_size`` training examples shared by every
    explicand; ``neighbours`` takes each explicand's ``corpus_size`` nearest training
    examples in the encoder's cosine geometry (a label-free stand-in for the authors'
    same-class corpus). The foil is ``foil_size`` random training examples, disjoint from
    a random corpus.
    """

    def __init__(
        self,
        encoder: nn.Module,
        base: Literal["saliency", "integrated_gradients", "gradient_shap", "deeplift"] = (
            "integrated_gradients"
        ),
        corpus: Literal["random", "neighbours"] = "random",
        corpus_size: Annotated[int, Field(ge=1)] = 100,
        foil_size: Annotated[int, Field(ge=1)] = 1500,
        n_steps: Annotated[int, Field(ge=1)] = 50,
        n_samples: Annotated[int, Field(ge=1)] = 50,
    ):
        super().__init__(encoder)
        # The base method keeps its Captum object; COCOA only swaps the function it explains.
        base_class = METHODS.get(base)
        accepted = inspect.signature(base_class.__init__).parameters
        options = {"n_steps": n_steps, "n_samples": n_samples}
        self.base = base_class(encoder, **{k: v for k, v in options.items() if k in accepted})
        self.corpus, self.corpus_size, self.foil_size = corpus, corpus_size, foil_size
        self.prepared = False

    def prepare(self, train_inputs: torch.Tensor) -> None:
        order = torch.randperm(len(train_inputs))
        if self.corpus == "random":
            corpus_size = min(self.corpus_size, len(train_inputs) - 1)
            corpus, foil = order[:corpus_size], order[corpus_size:][: self.foil_size]
            corpus_direction = unit_embeddings(self.encoder, train_inputs[corpus]).mean(dim=0)
            pool = None
        else:
            foil = order[: self.foil_size]
            corpus_direction = None
            pool = unit_embeddings(self.encoder, train_inputs)
        foil_direction = unit_embeddings(self.encoder, train_inputs[foil]).mean(dim=0)
        self.base.explain_function(
            ContrastiveCorpusAuxiliary(
                self.encoder, foil_direction, corpus_direction, pool, self.corpus_size
            )
        )
        self.prepared = True

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        if not self.prepared:
            raise RuntimeError("cocoa picks its corpus and foil in prepare(train_inputs) first")
        return self.base.attribute(inputs, baselines)
