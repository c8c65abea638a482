"""Base class of feature-importance methods for encoders (one ``attribute`` signature)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn


class FeatureMethod(ABC):
    """Explains an encoder ``f: X -> R^d`` by a score for every input feature.

    Subclasses take the encoder first and their own parameters as keyword arguments with
    type hints and defaults: the suite's ``params:`` are validated against that signature.
    """

    explains: ClassVar[str] = "feature"

    def __init__(self, encoder: nn.Module):
        self.encoder = encoder

    @abstractmethod
    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        """Attributions shaped like ``inputs`` for a batch ``inputs[B, ...]``.

        ``baselines`` has the shape of ``inputs``: the reference each example is compared
        with (methods that need none ignore it).
        """
