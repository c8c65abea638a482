"""Label-free DeepLIFT with the rescale rule (Shrikumar et al., 2017)."""

from __future__ import annotations

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
