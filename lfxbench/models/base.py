"""What a model-zoo entry is: a module with an explained encoder and its own objective."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from lfxbench.errors import LfxbenchError

if TYPE_CHECKING:
    from lfxbench.recipe import Recipe


class ZooModel(nn.Module):
    """A trainable model whose ``encoder`` (inputs -> latent vectors) is what gets explained.

    Subclasses set ``encoder`` in ``__init__``, list the training objectives they support,
    and return the per-example loss of an objective. Everything else (optimiser, early
    stopping, checkpoints, caching) is the engine's.
    """

    objectives: ClassVar[tuple[str, ...]] = ("reconstruction",)
    # Objectives whose per-example loss depends on the rest of the batch (contrastive
    # ones): loss-based example importance is undefined for them.
    batch_dependent_objectives: ClassVar[tuple[str, ...]] = ()
    # False for an encoder without a training objective (``ExplainedOnly``): only explained.
    has_loss: ClassVar[bool] = True
    # True where ``train: false`` without a ``checkpoint:`` may explain the seed's random
    # initial weights (a backbone); otherwise such an entry is refused as a mistake.
    random_weights_allowed: ClassVar[bool] = False
    # False where several copies cannot train as one stacked model (``torch.func.vmap``
    # lacks a rule for one of its kernels): side-by-side training trains them one by one.
    stackable: ClassVar[bool] = True
    encoder: nn.Module

    @abstractmethod
    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
        """Per-example loss ``[B]`` of ``recipe.objective`` (labels only for supervised ones)."""

    def state_dict_from_checkpoint(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        """The state dict of this model in a ``checkpoint:`` file (as saved by its library)."""
        return state_dict

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters that shape the latent space: what loss-based methods differentiate."""
        return self.encoder.parameters()


class ExplainedOnly(ZooModel):
    """A zoo entry without a training objective (a backbone, a scripted encoder): its
    loaded or initial weights are explained as they are."""

    objectives: ClassVar[tuple[str, ...]] = ("pretrained",)
    has_loss: ClassVar[bool] = False

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
        raise LfxbenchError(
            f"{type(self).__name__} has no training objective: it is only explained"
        )
