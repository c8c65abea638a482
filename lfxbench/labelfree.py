"""Label-free feature importance (Crabbé & van der Schaar, 2022).

Any attribution method that is linear in the explained function explains an encoder
``f`` at ``x`` through the scalar auxiliary function ``g_x(x~) = <f(x), f(x~)>``.
Captum computes the attribution; this module only supplies ``g_x`` in batched form.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from captum.attr import Attribution
from torch import nn

from lfxbench.explanation import FeatureMethod


class LabelFreeAuxiliary(nn.Module):
    """``g(x~, h) = <h, f(x~)>`` with ``h = f(x)`` precomputed for every explained example.

    ``h`` travels as an additional forward argument rather than as module state: Captum
    expands additional arguments exactly as it expands the inputs (step-major for
    Integrated Gradients, sample-interleaved for the noise tunnel behind Gradient SHAP,
    concatenated with baselines for DeepLift), so every expanded row meets its own
    reference latent whatever the method's layout.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    @torch.no_grad()
    def reference_latents(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encoder(inputs).flatten(1).detach()

    def forward(self, inputs: torch.Tensor, reference_latents: torch.Tensor) -> torch.Tensor:
        return (self.encoder(inputs).flatten(1) * reference_latents).sum(dim=1)


class LabelFreeCaptumMethod(FeatureMethod):
    """A Captum attribution method applied to the label-free auxiliary function."""

    captum_method: ClassVar[type[Attribution]]

    def __init__(self, encoder: nn.Module):
        super().__init__(encoder)
        self.explain_function(LabelFreeAuxiliary(encoder))

    def explain_function(self, auxiliary: nn.Module) -> None:
        """Point the Captum method at another scalar auxiliary: a module with
        ``reference_latents(inputs)`` (one row per explained example, expanded by Captum with
        the inputs) and ``forward(inputs, reference_latents) -> [len(inputs)]`` (COCOA)."""
        self.auxiliary = auxiliary
        self.captum = self.captum_method(auxiliary)

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        reference_latents = self.auxiliary.reference_latents(inputs)
        inputs = inputs.detach().requires_grad_()  # Captum warns when it must do this itself
        attributions = self.captum_attribute(inputs, baselines, (reference_latents,))
        return attributions.detach()

    @abstractmethod
    def captum_attribute(
        self,
        inputs: torch.Tensor,
        baselines: torch.Tensor,
        additional_forward_args: tuple[Any, ...],
    ) -> torch.Tensor:
        """One call of ``self.captum.attribute`` for the whole batch."""
