"""A method defined in a user's own file, outside the package: enters via `plugins:`."""

import torch

from lfxbench import FeatureMethod, register_method


@register_method("input_magnitude")
class InputMagnitude(FeatureMethod):
    """|x|: scores bright pixels, knows nothing about the encoder."""

    def __init__(self, encoder, power: float = 1.0):
        super().__init__(encoder)
        self.power = power

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        return inputs.abs() ** self.power
