"""Per-unit attributions: a Captum method applied to each latent unit of the encoder."""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from captum.attr import DeepLift, GradientShap, IntegratedGradients, Saliency
from torch import nn

from lfxbench.methods.base import UnitMethod
from lfxbench.params import Steps
from lfxbench.registry import register_method

CAPTUM_METHODS = {
    "saliency": Saliency,
    "integrated_gradients": IntegratedGradients,
    "gradient_shap": GradientShap,
    "deeplift": DeepLift,
}


@register_method("per_unit")
class PerUnitAttribution(UnitMethod):
    """Attribution of every latent unit f_j separately, all units in one Captum call."""

    def __init__(
        self,
        encoder: nn.Module,
        method: Literal["saliency", "integrated_gradients", "gradient_shap", "deeplift"] = (
            "gradient_shap"
        ),
        n_steps: Steps = 50,
        n_samples: Steps = 50,
        scale_by_unit: bool = True,
        absolute: bool = True,
    ):
        # The label-free XAI paper's VAE study scores unit j by |mu_j(x) * a_j(x)|: the
        # attribution of the unit weighted by how active the unit is.
        super().__init__(encoder)
        self.method = method
        self.captum = CAPTUM_METHODS[method](encoder)
        self.n_steps, self.n_samples = n_steps, n_samples
        self.scale_by_unit, self.absolute = scale_by_unit, absolute

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            latents = self.encoder(inputs).flatten(1)
        batch, n_units = latents.shape
        # Example-major rows: row b * d_H + j explains unit j of example b; Captum's
        # per-row `target` picks the unit, so every unit of the batch is one call.
        expanded = inputs.repeat_interleave(n_units, dim=0).detach().requires_grad_()
        references = baselines.repeat_interleave(n_units, dim=0)
        target = torch.arange(n_units, device=inputs.device).repeat(batch)
        kwargs = {"target": target}
        if self.method == "integrated_gradients":
            kwargs.update(baselines=references, n_steps=self.n_steps)
        elif self.method == "gradient_shap":
            kwargs.update(baselines=references, n_samples=self.n_samples)
        elif self.method == "deeplift":
            kwargs.update(baselines=references)
        else:
            kwargs.update(abs=False)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            attributions = self.captum.attribute(expanded, **kwargs).detach()
        attributions = attributions.view(batch, n_units, *inputs.shape[1:])
        if self.scale_by_unit:
            attributions = attributions * latents.view(batch, n_units, *[1] * (inputs.dim() - 1))
        return attributions.abs() if self.absolute else attributions
