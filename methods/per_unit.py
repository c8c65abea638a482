"""Per-unit attributions: a Captum method applied to each latent unit of the encoder."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lfxbench.methods.base import UnitMethod
from lfxbench.methods.deeplift import LabelFreeDeepLift
from lfxbench.methods.gradient_shap import LabelFreeGradientShap
from lfxbench.methods.integrated_gradients import LabelFreeIntegratedGradients
from lfxbench.methods.labelfree import LabelFreeCaptumMethod, call_captum
from lfxbench.methods.saliency import LabelFreeSaliency
from lfxbench.params import Steps
from lfxbench.registry import register_method

# The label-free wrappers lend their Captum class and options; the units are explained
# through the encoder itself, not the label-free auxiliary.
CAPTUM_METHODS: dict[str, type[LabelFreeCaptumMethod]] = {
    "saliency": LabelFreeSaliency,
    "integrated_gradients": LabelFreeIntegratedGradients,
    "gradient_shap": LabelFreeGradientShap,
    "deeplift": LabelFreeDeepLift,
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
        options = {
            # Signed saliency: `absolute` applies to the (scaled) attribution at the end.
            "saliency": {"absolute": False},
            "integrated_gradients": {"n_steps": n_steps},
            "gradient_shap": {"n_samples": n_samples},
        }
        self.wrapper = CAPTUM_METHODS[method](encoder, **options.get(method, {}))
        self.captum = self.wrapper.captum_method(encoder)
        self.n_steps, self.n_samples = n_steps, n_samples
        self.scale_by_unit, self.absolute = scale_by_unit, absolute

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            latents = self.encoder(inputs).flatten(1)
        batch, n_units = latents.shape
        # Example-major rows: row b * d_H + j explains unit j of example b; Captum's
        # per-row `target` picks the unit, so every unit of the batch is one call.
        expanded = inputs.repeat_interleave(n_units, dim=0)
        references = baselines.repeat_interleave(n_units, dim=0)
        target = torch.arange(n_units, device=inputs.device).repeat(batch)
        # Unlike the label-free wrapper, numpy's generator is not reseeded from torch's
        # here (Gradient SHAP draws from it as the run left it).
        attributions = call_captum(
            self.captum,
            expanded,
            references,
            own_leaves=self.wrapper.own_leaves,
            target=target,
            **self.wrapper.captum_kwargs(),
        ).detach()
        attributions = attributions.view(batch, n_units, *inputs.shape[1:])
        if self.scale_by_unit:
            attributions = attributions * latents.view(batch, n_units, *[1] * (inputs.dim() - 1))
        return attributions.abs() if self.absolute else attributions
