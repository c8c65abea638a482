"""Base classes of explanation methods for encoders (one ``attribute`` signature per kind)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe


class FeatureMethod(ABC):
    """Explains an encoder ``f: X -> R^d`` by a score for every input feature.

    Subclasses take the encoder first and their own parameters as keyword arguments with
    type hints and defaults: the suite's ``params:`` are validated against that signature.
    """

    explains: ClassVar[str] = "feature"
    # A method that sets this gets the explained examples' labels as a third argument of
    # ``attribute`` (e.g. COCOA's same-class corpus); labels are evaluation data, so only
    # methods that explain relative to labelled training examples ask for them.
    needs_labels: ClassVar[bool] = False
    # Checked when the class is registered (``registry.Registry``).
    DECLARED: ClassVar[dict[str, tuple[object, ...]]] = {
        "explains": ("feature", "unit"),
        "needs_labels": (True, False),
    }

    def __init__(self, encoder: nn.Module):
        self.encoder = encoder

    def prepare(  # noqa: B027 (optional hook)
        self, train_inputs: torch.Tensor, train_labels: torch.Tensor | None = None
    ) -> None:
        """Sees the training inputs and labels (on the CPU) once before any ``attribute``.

        Most methods need nothing from them; a method that explains relative to training
        examples (COCOA's corpus and foil) picks them here. ``train_labels`` is None for
        callers that have none.
        """

    @abstractmethod
    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        """Attributions shaped like ``inputs`` for a batch ``inputs[B, ...]``.

        ``baselines`` has the shape of ``inputs``: the reference each example is compared
        with (methods that need none ignore it). A method with ``needs_labels`` takes
        ``attribute(inputs, baselines, labels)``, ``labels[B]`` or None where the caller
        has none.
        """


class UnitMethod(FeatureMethod):
    """Explains every latent unit ``f_j`` of an encoder separately (not label-free).

    ``attribute`` returns ``[B, d_H, *inputs.shape[1:]]``: one attribution map per unit.
    """

    explains: ClassVar[str] = "unit"


@dataclass
class TrainingCorpus:
    """The training examples an example method scores, and what loss-based methods need.

    ``inputs``/``labels`` are the corpus (a balanced subset of the training set, on the
    device); ``train_inputs``/``train_labels`` the whole training set (e.g. for LiSSA's
    Hessian samples). Labels reach a method only through the model's own loss: a
    label-free objective ignores them.
    """

    model: ZooModel
    recipe: Recipe
    inputs: torch.Tensor
    labels: torch.Tensor
    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    # (epoch, learning rate, state dict on the CPU) saved during training, oldest first.
    checkpoints: list[tuple[int, float, dict[str, Any]]] = field(default_factory=list)
    batch_size: int = 256
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder


class ExampleMethod(ABC):
    """Explains an encoder by a score for every training example of a corpus.

    Parameters are typed keyword arguments with defaults, as for feature methods. ``fit``
    sees the corpus once; ``attribute`` scores test batches against it.
    """

    explains: ClassVar[str] = "example"
    # Loss-based methods differentiate the model's loss of one example at a time.
    needs_per_example_loss: ClassVar[bool] = False
    DECLARED: ClassVar[dict[str, tuple[object, ...]]] = {
        "explains": ("example",),
        "needs_per_example_loss": (True, False),
    }

    @abstractmethod
    def fit(self, corpus: TrainingCorpus) -> None:
        """Precompute what does not depend on the explained examples (latents, gradients)."""

    @abstractmethod
    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n_corpus]``: higher means the training example matters more."""
