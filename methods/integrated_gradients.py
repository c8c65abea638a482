"""Label-free Integrated Gradients (Sundararajan et al., 2017)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from captum.attr import IntegratedGradients
from pydantic import Field
from torch import nn

from lfxbench.methods.labelfree import LabelFreeCaptumMethod
from lfxbench.params import Steps
from lfxbench.registry import register_method


@register_method("integrated_gradients")
class LabelFreeIntegratedGradients(LabelFreeCaptumMethod):
    """Path integral of the gradient of <f(x), f(x~)> from the baseline to x; complete."""

    captum_method = IntegratedGradients
    # Captum differentiates its own interpolated points: the inputs go detached.
    own_leaves = True

    def __init__(
        self,
        encoder: nn.Module,
        n_steps: Steps = 50,
        method: Literal[
            "gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"
        ] = "gausslegendre",
        internal_batch_size: Annotated[int, Field(ge=1)] | None = None,
    ):
        super().__init__(encoder)
        self.n_steps = n_steps
        self.method = method
        self.internal_batch_size = internal_batch_size

    def captum_kwargs(self) -> dict[str, Any]:
        return {
            "n_steps": self.n_steps,
            "method": self.method,
            "internal_batch_size": self.internal_batch_size,
        }
