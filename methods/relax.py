"""RELAX and U-RELAX: masking-based explanations of representations (Wickstrøm et al., IJCV 2023).

RELAX masks the input with many random smooth masks ``m_n`` and scores every pixel by how
similar the representation stays when that pixel is kept: ``s_n = cos(f(x), f(x̃_n))``,
importance ``R = Σ_n s_n m_n / Σ_n m_n`` and uncertainty ``U = Σ_n m_n (s_n − R)² / Σ_n m_n``
(a mask-weighted mean and variance per pixel). U-RELAX keeps ``R`` only where ``U`` is at
most its median over the pixels of the example.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lfxbench.methods.base import FeatureMethod
from lfxbench.registry import register_method

_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}
# Input values per encoder pass when ``forward_batch`` is not given (see ``Relax``).
DEFAULT_FORWARD_VALUES = 2**19


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map integer positions outside ``[0, size)`` back inside, as ``F.pad(mode="reflect")``."""
    if size == 1:
        return torch.zeros_like(index)
    # Reflection without repeating the edge is periodic with period 2 (size − 1), so it
    # holds for any shift, even one wider than the signal (where F.pad would refuse).
    period = 2 * (size - 1)
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)


def relax_masks(
    n: int,
    spatial_shape: Sequence[int],
    grid: int = 7,
    keep_probability: float = 0.5,
    shift: int | Sequence[int] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n`` smooth random masks ``[n, *spatial_shape]`` with values in ``[0, 1]`` (RISE-style).

    Each mask keeps every cell of a ``grid``-per-dimension lattice with ``keep_probability``,
    is upsampled (bi)linearly to ``spatial_shape`` and moved by a random integer offset
    along every dimension, the borders filled by reflection. ``shift`` (per dimension, or
    one value for all) is the number of offsets drawn from, centred on the unmoved mask:
    ``−(shift // 2) … shift − 1 − shift // 2`` pixels, so the reference code's 7 is ±3 px;
    0 or 1 means no shift. ``None``: one grid cell, ``ceil(size / grid)``.

    Draws from torch's global RNG on ``device``: seed it to repeat the masks.
    """
    spatial_shape = tuple(int(size) for size in spatial_shape)
    n_dims = len(spatial_shape)
    if n_dims not in _INTERPOLATION:
        raise ValueError(f"masks need 1 to 3 spatial dimensions, got shape {spatial_shape}")
    if shift is None:
        shifts = tuple(math.ceil(size / grid) for size in spatial_shape)
    elif isinstance(shift, int):
        shifts = (shift,) * n_dims
    else:
        shifts = tuple(int(s) for s in shift)
        if len(shifts) != n_dims:
            raise ValueError(f"shift {shift} does not match spatial shape {spatial_shape}")
    cells = (torch.rand(n, 1, *(grid,) * n_dims, device=device) < keep_probability).to(dtype)
    upsampled = F.interpolate(
        cells, size=spatial_shape, mode=_INTERPOLATION[n_dims], align_corners=False
    )[:, 0]
    # One advanced-indexing gather crops every mask at its own offset: index tensors for
    # the mask and for each dimension, each broadcast along the others.
    index: list[torch.Tensor] = [torch.arange(n, device=upsampled.device).view(n, *(1,) * n_dims)]
    for dim, (size, span) in enumerate(zip(spatial_shape, shifts, strict=True)):
        span = max(span, 1)
        offsets = torch.randint(span, (n, 1), device=upsampled.device) - span // 2
        positions = _reflect(torch.arange(size, device=upsampled.device) + offsets, size)
        view = [n] + [1] * n_dims
        view[dim + 1] = size
        index.append(positions.view(view))
    return upsampled[tuple(index)]


@register_method("relax")
class Relax(FeatureMethod):
    """RELAX importance: mask-weighted mean cosine similarity of masked representations.

    ``n_masks`` masks (``relax_masks``) are drawn ``mask_batch`` at a time and shared by
    all examples of a call; the paper uses 3,000 (30 batches of 100) 7×7 masks with
    ``keep_probability`` 0.5 and a 7-px shift on 224×224 images. A masked input is
    ``x·m + b·(1 − m)`` with ``b`` the suite's baseline: RELAX's ``x·m`` for a zero
    (black) baseline. Masks are shared across channels; ``[B, C, H, W]`` images and
    ``[B, C, T]`` series (1-D masks) are explained. An encoder forward sees at most
    ``forward_batch`` masked inputs (but always one example's ``mask_batch``). The default
    holds about 2**19 input values (600 MNIST images, 100 of 64×64): larger passes allocate
    activations over 32 MiB, which glibc maps afresh for every pass (even under
    ``lfxbench.timing.steady_allocator``), and on 2 CPU cores the page faults then cost
    more than the encoder (``tests/benchmarks/test_bench_relax.py`` compares the default
    with larger passes). On a GPU a larger ``forward_batch`` may fill the device better.

    The per-pixel statistics are float64 sums of ``m``, ``(s − c)·m`` and ``(s − c)²·m``,
    ``c`` each example's mean similarity over the first mask batch: the shift keeps the
    variance free of cancellation. ``U`` is the weighted variance of the paper (the
    reference code's ``uncertainty`` is the same sum not divided by ``Σ m``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_masks: Annotated[int, Field(ge=1, le=1_000_000)] = 3000,
        mask_batch: Annotated[int, Field(ge=1)] = 100,
        grid: Annotated[int, Field(ge=1)] = 7,
        keep_probability: Annotated[float, Field(gt=0, le=1)] = 0.5,
        shift: Annotated[int, Field(ge=0)] | None = None,
        forward_batch: Annotated[int, Field(ge=1)] | None = None,
    ):
        super().__init__(encoder)
        self.n_masks, self.mask_batch = n_masks, mask_batch
        self.grid, self.keep_probability, self.shift = grid, keep_probability, shift
        self.forward_batch = forward_batch

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        importance, _ = self.importance_and_uncertainty(inputs, baselines)
        return self._expand(importance, inputs)

    @staticmethod
    def _expand(spatial: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        # Masks act on all channels at once: every channel gets the same score.
        return spatial.unsqueeze(1).expand_as(inputs).to(inputs.dtype).contiguous()

    @torch.no_grad()
    def importance_and_uncertainty(
        self, inputs: torch.Tensor, baselines: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(R, U)``, each ``[B, *inputs.shape[2:]]`` in float64."""
        if inputs.dim() < 3:
            raise ValueError(
                "RELAX explains [B, C, T] series or [B, C, H, W] images; got inputs of shape "
                f"{tuple(inputs.shape)}"
            )
        inputs, baselines = inputs.detach(), baselines.detach().to(inputs.dtype)
        batch, spatial_shape = inputs.shape[0], inputs.shape[2:]
        n_pixels = math.prod(spatial_shape)
        forward_batch = self.forward_batch or max(1, DEFAULT_FORWARD_VALUES // inputs[0].numel())
        chunk = max(1, forward_batch // self.mask_batch)
        references = torch.cat(
            [self.encoder(inputs[i : i + chunk]).flatten(1) for i in range(0, batch, chunk)]
        )
        differences = inputs - baselines
        weight = inputs.new_zeros(n_pixels, dtype=torch.float64)
        first = inputs.new_zeros(batch, n_pixels, dtype=torch.float64)
        second = torch.zeros_like(first)
        centre: torch.Tensor | None = None
        for start in range(0, self.n_masks, self.mask_batch):
            n = min(self.mask_batch, self.n_masks - start)
            masks = relax_masks(
                n,
                spatial_shape,
                self.grid,
                self.keep_probability,
                self.shift,
                inputs.device,
                inputs.dtype,
            )
            similarities = torch.cat(
                [
                    self._similarities(
                        baselines[i : i + chunk],
                        differences[i : i + chunk],
                        references[i : i + chunk],
                        masks,
                    )
                    for i in range(0, batch, chunk)
                ]
            ).double()
            if centre is None:
                centre = similarities.mean(dim=1, keepdim=True)
            flat = masks.reshape(n, n_pixels).double()
            centred = similarities - centre
            weight += flat.sum(dim=0)
            first += centred @ flat
            second += centred.square() @ flat
        assert centre is not None
        # A pixel no mask ever kept has no estimate: it scores 0 (the reference code's
        # 1e-10 initial weight does the same).
        covered = weight > 0
        weight = weight.clamp_min(torch.finfo(torch.float64).tiny)
        mean_centred = first / weight
        importance = torch.where(covered, mean_centred + centre, 0)
        uncertainty = (second / weight - mean_centred.square()).clamp_min(0)
        view = (batch, *spatial_shape)
        return importance.view(view), uncertainty.view(view)

    def _similarities(
        self,
        baselines: torch.Tensor,
        differences: torch.Tensor,
        references: torch.Tensor,
        masks: torch.Tensor,
    ) -> torch.Tensor:
        """``cos(f(x), f(x̃))`` for every example × mask: ``[len(baselines), len(masks)]``."""
        n_examples, n = len(baselines), len(masks)
        # [examples, masks, C, *spatial]: the mask broadcasts over the channels.
        masked = baselines.unsqueeze(1) + masks.unsqueeze(1) * differences.unsqueeze(1)
        latents = self.encoder(masked.flatten(0, 1)).flatten(1).view(n_examples, n, -1)
        return F.cosine_similarity(latents, references.unsqueeze(1), dim=-1)


@register_method("u_relax")
class URelax(Relax):
    """U-RELAX: RELAX importance where its uncertainty is at most the median, 0 elsewhere.

    The median is taken per example over the pixels (``torch.median``: the lower of the two
    middle values for an even count, as in the reference code).
    """

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        importance, uncertainty = self.importance_and_uncertainty(inputs, baselines)
        flat = uncertainty.flatten(1)
        median = flat.median(dim=1, keepdim=True).values
        certain = (flat <= median).view_as(uncertainty)
        return self._expand(torch.where(certain, importance, 0), inputs)
