"""Label-free Saliency: the gradient of ``g_x`` (Simonyan et al., 2014)."""

from __future__ import annotations

from typing import Any

from captum.attr import Saliency
from torch import nn

from lfxbench.methods.labelfree import LabelFreeCaptumMethod, OwnLatents
from lfxbench.registry import register_method


@register_method("saliency")
class LabelFreeSaliency(LabelFreeCaptumMethod):
    """Gradient of <f(x), f(x~)> at x~ = x (absolute value by default)."""

    captum_method = Saliency
    # Captum runs the encoder on the explained inputs themselves: h = f(x) is that pass's.
    own_latents = OwnLatents.ROWS

    def __init__(self, encoder: nn.Module, absolute: bool = True):
        super().__init__(encoder)
        self.absolute = absolute

    def captum_kwargs(self) -> dict[str, Any]:
        return {"abs": self.absolute}
