"""Label-free Gradient SHAP (Lundberg & Lee, 2017), the paper's pretext-study method."""

from __future__ import annotations

from typing import Annotated, Any

from captum.attr import GradientShap
from pydantic import Field
from torch import nn

from lfxbench.methods.labelfree import LabelFreeCaptumMethod
from lfxbench.params import Steps
from lfxbench.registry import register_method


@register_method("gradient_shap")
class LabelFreeGradientShap(LabelFreeCaptumMethod):
    """Expected gradients of <f(x), f(x~)> on random points between baselines and x.

    Captum treats ``baselines`` as a distribution and draws from all of its rows; with
    per-example baselines (e.g. blur) an example may be paired with another's.
    """

    captum_method = GradientShap
    # Captum differentiates its own noisy, interpolated points: the inputs go detached (a
    # graph back to them kept every step's tensors alive).
    own_leaves = True
    # Captum draws the interpolation points and baseline rows from numpy's global generator.
    draws_from_numpy = True

    def __init__(
        self, encoder: nn.Module, n_samples: Steps = 50, stdevs: Annotated[float, Field(ge=0)] = 0.0
    ):
        super().__init__(encoder)
        self.n_samples = n_samples
        self.stdevs = stdevs

    def captum_kwargs(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "stdevs": self.stdevs}
