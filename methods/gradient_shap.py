"""Label-free Gradient SHAP (Lundberg & Lee, 2017), the paper's pretext-study method."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
from captum.attr import GradientShap
from pydantic import Field
from torch import nn

from lfxbench.methods.labelfree import LabelFreeCaptumMethod
from lfxbench.params import Steps
from lfxbench.registry import register_method


@register_method("gradient_shap")
class LabelFreeGradientShap(LabelFreeCaptumMethod):
    """Expected gradients of <f(x), f(x~)> on random points between baselines and x."""

    captum_method = GradientShap

    def __init__(
        self, encoder: nn.Module, n_samples: Steps = 50, stdevs: Annotated[float, Field(ge=0)] = 0.0
    ):
        super().__init__(encoder)
        self.n_samples = n_samples
        self.stdevs = stdevs

    def captum_attribute(
        self,
        inputs: torch.Tensor,
        baselines: torch.Tensor,
        additional_forward_args: tuple[Any, ...],
    ) -> torch.Tensor:
        # Captum treats `baselines` as a distribution and draws from all of its rows; with
        # per-example baselines (e.g. blur) an example may be paired with another's.
        # Captum draws the interpolation points and baseline rows from numpy's global
        # generator; seed it from torch's so torch.manual_seed alone makes a run repeatable.
        np.random.seed(int(torch.randint(2**31 - 1, (1,)).item()))
        # Captum differentiates its own noisy, interpolated leaves; a graph from them back to
        # the inputs would only cost time and memory (it kept every step's tensors alive).
        return self.captum.attribute(
            inputs.detach(),
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            n_samples=self.n_samples,
            stdevs=self.stdevs,
        )
