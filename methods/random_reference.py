"""The ``random`` reference: what a method that knows nothing scores."""

from __future__ import annotations

import torch
from torch import nn

from lfxbench.methods.base import FeatureMethod
from lfxbench.registry import register_method


@register_method("random")
class RandomFeatureImportance(FeatureMethod):
    """Gaussian noise scores: the reference curve every faithful method must beat."""

    def __init__(self, encoder: nn.Module):
        super().__init__(encoder)

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        # Drawn on the CPU generator so a seed gives the same scores on every device.
        return torch.randn(inputs.shape, dtype=inputs.dtype).to(inputs.device)
