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
from typing import Annotated, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lfxbench.batching import encode
from lfxbench.methods.base import FeatureMethod
from lfxbench.params import Steps
from lfxbench.registry import METHODS, register_method

# Examples per encoder pass over the training set (a feature method is given no batch size).
ENCODE_BATCH = 256


@torch.no_grad()
def unit_embeddings(encoder: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``f(x) / |f(x)|`` of any number of inputs, moved to the encoder's device a batch at a
    time (the training set stays on the CPU)."""
    return F.normalize(encode(encoder, inputs, ENCODE_BATCH), dim=1)


class ContrastiveCorpusAuxiliary(nn.Module):
    """``g(x~, u) = <f(x~) / |f(x~)|, u>`` with one direction ``u`` per explained example.

    ``u`` plays the part of the label-free auxiliary's reference latent, so every Captum
    layout expands it with the inputs. The mean unit corpus and foil embeddings are one
    shared row (``random``), one row per label of ``classes`` (``same_class``: picked by
    the explicand's label), or, for the corpus, the mean of each explicand's nearest rows
    of ``neighbour_pool`` (``neighbours``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        foil_direction: torch.Tensor,
        corpus_direction: torch.Tensor | None = None,
        neighbour_pool: torch.Tensor | None = None,
        corpus_size: int = 100,
        classes: torch.Tensor | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.foil_direction = foil_direction
        self.corpus_direction = corpus_direction
        self.neighbour_pool = neighbour_pool
        self.corpus_size = corpus_size
        self.classes = classes  # sorted; row k of both directions belongs to label classes[k]

    def class_rows(self, labels: torch.Tensor | None) -> torch.Tensor:
        """The row of each explicand's label in the per-label directions."""
        assert self.classes is not None
        if labels is None:
            raise ValueError(
                "cocoa with corpus: same_class explains each example against training "
                "examples of its label: it needs the explained examples' labels (or use "
                "corpus: random or neighbours)"
            )
        labels = labels.to(self.classes)
        rows = torch.searchsorted(self.classes, labels).clamp_max(len(self.classes) - 1)
        unknown = self.classes[rows] != labels
        if unknown.any():
            raise ValueError(
                f"cocoa with corpus: same_class: no training example has label "
                f"{labels[unknown][0].item()!r}, so it has no corpus"
            )
        return rows

    @torch.no_grad()
    def corpus_directions(
        self, inputs: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The mean unit corpus embedding of each explained example, ``[B, d]``."""
        if self.classes is not None:
            assert self.corpus_direction is not None
            return self.corpus_direction[self.class_rows(labels)]
        if self.corpus_direction is not None:
            return self.corpus_direction.expand(len(inputs), -1)
        assert self.neighbour_pool is not None
        similarities = unit_embeddings(self.encoder, inputs) @ self.neighbour_pool.T
        nearest = similarities.topk(min(self.corpus_size, len(self.neighbour_pool)), dim=1)
        return self.neighbour_pool[nearest.indices].mean(dim=1)

    @torch.no_grad()
    def foil_directions(
        self, inputs: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The mean unit foil embedding of each explained example, ``[B, d]``."""
        if self.classes is not None:
            return self.foil_direction[self.class_rows(labels)]
        return self.foil_direction.expand(len(inputs), -1)

    @torch.no_grad()
    def reference_latents(
        self, inputs: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.corpus_directions(inputs, labels) - self.foil_directions(inputs, labels)

    def forward(self, inputs: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return (F.normalize(self.encoder(inputs).flatten(1), dim=1) * directions).sum(dim=1)


@register_method("cocoa")
class Cocoa(FeatureMethod):
    """A label-free Captum method applied to COCOA's corpus-vs-foil similarity.

    ``corpus``: ``same_class`` is the COCOA authors' protocol (their experiments: a corpus
    of 100 training images of the explicand's class, a foil of 1,500 random training
    images): per label, ``corpus_size`` random training examples with that label, shared
    by every explicand of the label, and a foil of ``foil_size`` random training examples
    outside that corpus. The foil is not restricted to other labels: the lecture slides
    say only "Randomly sampled images from training set", and the authors' code
    (``scripts/attribute.py``) draws the foil from everything left once the explicands and
    the corpus are set aside, same-class examples included; we do the same. It needs the
    training labels in ``prepare`` and the explicands' labels in ``attribute``, so it is
    not label-free. ``random`` draws ``corpus_size`` training examples shared by every
    explicand, with a disjoint random foil; ``neighbours`` takes each explicand's
    ``corpus_size`` nearest training examples in the encoder's cosine geometry (a
    label-free stand-in for the same-class corpus), with a random foil.
    """

    # Only the same-class corpus uses them; the others ignore them.
    needs_labels: ClassVar[bool] = True

    def __init__(
        self,
        encoder: nn.Module,
        base: Literal["saliency", "integrated_gradients", "gradient_shap", "deeplift"] = (
            "integrated_gradients"
        ),
        corpus: Literal["same_class", "neighbours", "random"] = "same_class",
        corpus_size: Annotated[int, Field(ge=1)] = 100,
        foil_size: Annotated[int, Field(ge=1)] = 1500,
        n_steps: Steps = 50,
        n_samples: Steps = 50,
    ):
        super().__init__(encoder)
        # The base method keeps its Captum object; COCOA only swaps the function it explains.
        base_class = METHODS.get(base)
        accepted = inspect.signature(base_class.__init__).parameters
        options = {"n_steps": n_steps, "n_samples": n_samples}
        self.base = base_class(encoder, **{k: v for k, v in options.items() if k in accepted})
        self.corpus, self.corpus_size, self.foil_size = corpus, corpus_size, foil_size
        # same_class: the training indices of each label's corpus and foil, for inspection.
        self.draws: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.prepared = False

    def prepare(self, train_inputs: torch.Tensor, train_labels: torch.Tensor | None = None) -> None:
        if self.corpus == "same_class":
            auxiliary = self.same_class_auxiliary(train_inputs, train_labels)
        else:
            order = torch.randperm(len(train_inputs))
            if self.corpus == "random":
                corpus_size = min(self.corpus_size, len(train_inputs) - 1)
                corpus, foil = order[:corpus_size], order[corpus_size:][: self.foil_size]
                corpus_direction = unit_embeddings(self.encoder, train_inputs[corpus]).mean(0)
                pool = None
            else:
                foil = order[: self.foil_size]
                corpus_direction = None
                pool = unit_embeddings(self.encoder, train_inputs)
            foil_direction = unit_embeddings(self.encoder, train_inputs[foil]).mean(dim=0)
            auxiliary = ContrastiveCorpusAuxiliary(
                self.encoder, foil_direction, corpus_direction, pool, self.corpus_size
            )
        self.base.explain_function(auxiliary)
        self.prepared = True

    def same_class_auxiliary(
        self, train_inputs: torch.Tensor, train_labels: torch.Tensor | None
    ) -> ContrastiveCorpusAuxiliary:
        """Per label: the mean unit embedding of a random corpus of that label and of a
        random foil outside that corpus."""
        if train_labels is None:
            raise ValueError(
                "cocoa with corpus: same_class picks each label's corpus among the training "
                "examples of that label: prepare needs the training labels (or use corpus: "
                "random or neighbours)"
            )
        train_labels = train_labels.cpu()
        classes = train_labels.unique()  # sorted
        corpus_directions, foil_directions = [], []
        self.draws = {}
        for label in classes:
            members = (train_labels == label).nonzero().flatten()
            corpus = members[torch.randperm(len(members))[: self.corpus_size]]
            outside = torch.ones(len(train_labels), dtype=torch.bool)
            outside[corpus] = False
            others = outside.nonzero().flatten()
            foil = others[torch.randperm(len(others))[: self.foil_size]]
            self.draws[int(label)] = (corpus, foil)
            corpus_directions.append(unit_embeddings(self.encoder, train_inputs[corpus]).mean(0))
            # A label that holds the whole training set leaves no foil: no contrast (zero).
            foil_directions.append(
                unit_embeddings(self.encoder, train_inputs[foil]).mean(0)
                if len(foil)
                else torch.zeros_like(corpus_directions[-1])
            )
        corpus_direction = torch.stack(corpus_directions)
        return ContrastiveCorpusAuxiliary(
            self.encoder,
            torch.stack(foil_directions),
            corpus_direction,
            corpus_size=self.corpus_size,
            classes=classes.to(corpus_direction.device),
        )

    def attribute(
        self, inputs: torch.Tensor, baselines: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not self.prepared:
            raise RuntimeError(
                "cocoa picks its corpus and foil in prepare(train_inputs, train_labels) first"
            )
        # The base method's own `attribute` asks the auxiliary for directions from the
        # inputs alone; a same-class corpus also needs the labels, so COCOA hands the
        # directions to the base's Captum call itself.
        directions = self.base.auxiliary.reference_latents(inputs, labels)
        return self.base.captum_attribute(inputs, baselines, (directions,)).detach()
