"""Label-free DeepLIFT with the rescale rule (Shrikumar et al., 2017)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from captum.attr import DeepLift
from torch import nn

from lfxbench.methods.labelfree import LabelFreeCaptumMethod, OwnLatents
from lfxbench.registry import register_method


@register_method("deeplift")
class LabelFreeDeepLift(LabelFreeCaptumMethod):
    """DeepLIFT (rescale) contributions to <f(x), f(x~)> relative to the baseline."""

    captum_method = DeepLift
    # Captum runs the encoder once on cat([inputs, baselines]): h = f(x) is the first half's.
    own_latents = OwnLatents.FIRST_HALF

    def __init__(self, encoder: nn.Module):
        super().__init__(encoder)

    def captum_attribute(
        self,
        inputs: torch.Tensor,
        baselines: torch.Tensor,
        additional_forward_args: tuple[Any, ...],
    ) -> torch.Tensor:
        inputs = inputs.detach().requires_grad_()  # Captum warns when it must do this itself
        with warnings.catch_warnings():
            # Captum announces, on every call, that it hooks the ReLUs: expected, not news.
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            return self.captum.attribute(
                inputs, baselines=baselines, additional_forward_args=additional_forward_args
            )
