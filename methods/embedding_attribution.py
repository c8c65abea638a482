"""Aggregated embedding attributions of an intermediate layer (Bertolini et al., 2023).

Bertolini, Clevert and Montanari, "Explaining, evaluating and enhancing neural networks'
learned representations" (ICANN 2023), explain a whole embedding rather than one output:
every latent unit ``f_j`` is attributed to the activations ``A`` (``[C, h, w]`` or
``[C, t]``) of an intermediate layer with a gradient-based layer method, the per-channel
scores are aggregated into one map per unit, and the per-unit maps are aggregated into one
map of the embedding. The layer methods:

* ``gradient``: vanilla gradients ``∂f_j/∂A``;
* ``activation_x_gradient``: ``A ⊙ ∂f_j/∂A``;
* ``grad_cam``: Grad-CAM, ``ReLU(Σ_c w_c A_c)`` with ``w_c`` the spatial mean of
  ``∂f_j/∂A_c`` (the channels are already aggregated, so ``channel_aggregation`` is unused).

The aggregation schemes over channels and over units are the paper's: ``mean``, ``abs`` (the
mean absolute value) and ``var`` (the population variance). Maps of a layer smaller than the
input are upsampled (bilinear for images, linear for series) and copied over the input's
channels, so that they have the input's shape.

``layer_units`` returns the per-unit maps (a unit method), ``embedding_attribution`` the
embedding's map (a feature method); the metrics that score them are ``noise_score`` and
``variance_score``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from lfxbench.errors import LfxbenchError, UnknownNameError
from lfxbench.methods.base import FeatureMethod, UnitMethod
from lfxbench.registry import register_method

Aggregation = Literal["mean", "abs", "var"]
LayerAttribution = Literal["gradient", "activation_x_gradient", "grad_cam"]


def aggregate(values: torch.Tensor, how: Aggregation, dim: int) -> torch.Tensor:
    """``values`` reduced along ``dim``: its mean, mean absolute value or variance."""
    if how == "mean":
        return values.mean(dim=dim)
    if how == "abs":
        return values.abs().mean(dim=dim)
    if how == "var":
        # Population variance: the paper's spread over channels/units, defined for one too.
        return values.var(dim=dim, correction=0)
    raise ValueError(f"unknown aggregation {how!r}; use 'mean', 'abs' or 'var'")


def find_layer(encoder: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """The module called ``name`` in ``encoder.named_modules()``; by default the last
    Conv1d/Conv2d (the last layer that still has a spatial map)."""
    modules = {key: module for key, module in encoder.named_modules() if key}
    if name is None:
        convolutions = [key for key, m in modules.items() if isinstance(m, nn.Conv1d | nn.Conv2d)]
        if not convolutions:
            raise LfxbenchError(
                f"{type(encoder).__name__} has no Conv1d/Conv2d module; name the layer to "
                f"explain with the `layer` parameter (one of: {', '.join(modules)})"
            )
        name = convolutions[-1]
    if name not in modules:
        raise UnknownNameError("layer", name, modules)
    return name, modules[name]


def layer_unit_maps(
    encoder: nn.Module,
    layer: nn.Module,
    inputs: torch.Tensor,
    attribution: LayerAttribution = "gradient",
    channel_aggregation: Aggregation = "mean",
) -> torch.Tensor:
    """One map per latent unit at the layer's resolution: ``[B, d_H, *layer_spatial]``.

    One forward pass keeps the layer's activations ``A``; one backward per unit, through
    the part of the encoder after the layer, gives ``∂f_j/∂A`` for the whole batch.
    Captum's layer attributions (the reference the tests compare with) take one target per
    row, so they would run the whole encoder once per example and unit.
    """
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, args, output: captured.append(output))
    with torch.enable_grad():
        try:
            latents = encoder(inputs.detach()).flatten(1)
        finally:
            handle.remove()
        activations = captured[-1]
        if not isinstance(activations, torch.Tensor) or activations.dim() not in (3, 4):
            shape = list(activations.shape) if isinstance(activations, torch.Tensor) else "a tuple"
            raise ValueError(
                f"the layer's output is {shape}; embedding attributions need a convolutional "
                "layer whose activations are [B, C, h, w] or [B, C, t]"
            )
        # Examples are independent in eval mode: the gradient of a unit summed over the
        # batch holds every example's gradient of that unit.
        unit_sums = latents.sum(dim=0)
        gradients = torch.stack(
            [torch.autograd.grad(total, activations, retain_graph=True)[0] for total in unit_sums],
            dim=1,
        )  # [B, d_H, C, *spatial]
    values = activations.detach().unsqueeze(1)
    if attribution == "grad_cam":
        spatial = tuple(range(3, gradients.dim()))
        weights = gradients.mean(dim=spatial, keepdim=True)
        return (weights * values).sum(dim=2).relu()
    if attribution == "activation_x_gradient":
        gradients = gradients * values
    return aggregate(gradients, channel_aggregation, dim=2)


def to_input_shape(maps: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Maps ``[B, K, *layer_spatial]`` as ``[B, K, *inputs.shape[1:]]``: upsampled to the
    input's spatial size and copied over its channels."""
    spatial = tuple(inputs.shape[2:])
    if maps.dim() - 2 != len(spatial):
        raise ValueError(
            f"layer maps with {maps.dim() - 2} spatial dimension(s) cannot explain inputs of "
            f"shape {list(inputs.shape)}: the inputs must be [B, C, *spatial] with as many "
            "spatial dimensions as the layer"
        )
    if tuple(maps.shape[2:]) != spatial:
        mode = "bilinear" if len(spatial) == 2 else "linear"
        maps = F.interpolate(maps, size=spatial, mode=mode, align_corners=False)
    batch, n_maps = maps.shape[:2]
    # Contiguous: metrics may write into the maps, which a stride-0 view forbids.
    return maps.unsqueeze(2).expand(batch, n_maps, inputs.shape[1], *spatial).contiguous()


@register_method("layer_units")
class LayerUnitAttribution(UnitMethod):
    """Per-unit gradient/activation×gradient/Grad-CAM maps of a layer, upsampled to the input."""

    def __init__(
        self,
        encoder: nn.Module,
        attribution: LayerAttribution = "gradient",
        layer: str | None = None,
        channel_aggregation: Aggregation = "mean",
    ):
        super().__init__(encoder)
        # Resolved now so that a wrong layer name fails before any attribution is computed.
        self.layer_name, self.layer = find_layer(encoder, layer)
        self.attribution = attribution
        self.channel_aggregation = channel_aggregation

    def unit_maps(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[B, d_H, *layer_spatial]``, before upsampling."""
        return layer_unit_maps(
            self.encoder, self.layer, inputs, self.attribution, self.channel_aggregation
        )

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        return to_input_shape(self.unit_maps(inputs), inputs)


@register_method("embedding_attribution")
class EmbeddingAttribution(FeatureMethod):
    """Bertolini et al.'s embedding map: layer attributions aggregated over channels and units."""

    def __init__(
        self,
        encoder: nn.Module,
        attribution: LayerAttribution = "gradient",
        layer: str | None = None,
        channel_aggregation: Aggregation = "mean",
        unit_aggregation: Aggregation = "abs",
    ):
        super().__init__(encoder)
        self.units = LayerUnitAttribution(encoder, attribution, layer, channel_aggregation)
        self.unit_aggregation = unit_aggregation

    @property
    def layer_name(self) -> str:
        return self.units.layer_name

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        # Units are aggregated at the layer's resolution, before upsampling: for `abs` and
        # `var` the order matters, and the aggregate should be of the layer's own values.
        embedding = aggregate(self.units.unit_maps(inputs), self.unit_aggregation, dim=1)
        return to_input_shape(embedding.unsqueeze(1), inputs).squeeze(1)
