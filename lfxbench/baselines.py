"""Reference inputs: what a feature becomes when it is "removed"."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def gaussian_blur(inputs: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur over the spatial axes: the last two (images) or last one (series).

    Reflect padding as in torchvision's ``GaussianBlur``; replicate where the input is too
    small to reflect.
    """
    radius = kernel_size // 2
    offsets = torch.arange(-radius, radius + 1, dtype=inputs.dtype, device=inputs.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    spatial_dims = 2 if inputs.dim() >= 4 else 1
    leading_shape = inputs.shape[: inputs.dim() - spatial_dims]
    # Blur each spatial axis in turn as a 1-D convolution over that axis moved last.
    out = inputs.reshape(-1, *inputs.shape[inputs.dim() - spatial_dims :])
    for axis in range(1, spatial_dims + 1):
        moved = out.movedim(axis, -1)
        lines = moved.reshape(-1, 1, moved.shape[-1])
        mode = "reflect" if radius < lines.shape[-1] else "replicate"
        padded = torch.nn.functional.pad(lines, (radius, radius), mode=mode)
        blurred = torch.nn.functional.conv1d(padded, kernel.view(1, 1, -1))
        out = blurred.reshape(moved.shape).movedim(-1, axis)
    return out.reshape(*leading_shape, *out.shape[1:])


class Baseline(BaseModel):
    """``black`` (zeros), ``blur`` (Gaussian blur of the input itself) or ``mean`` (train mean).

    Written in a suite as a bare kind (``baseline: blur``) or with its parameters
    (``baseline: {kind: blur, kernel_size: 21, sigma: 5}``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["black", "blur", "mean"] = "black"
    kernel_size: int = Field(21, ge=1)
    sigma: float = Field(5.0, gt=0)
    label: int | None = Field(
        None,
        description="mean only: average the training examples with this label "
        "(ECG5000's average normal heartbeat: label 1)",
    )

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, kernel_size: int) -> int:
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd (the kernel is centred on the pixel)")
        return kernel_size

    @model_validator(mode="before")
    @classmethod
    def _from_kind(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    def reference(self, train_inputs: torch.Tensor, train_labels: torch.Tensor) -> torch.Tensor:
        """The mean baseline's reference input ``[1, ...]`` (all or one label's examples)."""
        chosen = train_inputs if self.label is None else train_inputs[train_labels == self.label]
        if len(chosen) == 0:
            raise ValueError(f"no training example has label {self.label} for the mean baseline")
        return chosen.mean(dim=0, keepdim=True)

    def __call__(self, inputs: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """The baselines of ``inputs``; the mean baseline's ``reference`` is ``reference()``."""
        if self.kind == "black":
            return torch.zeros_like(inputs)
        if self.kind == "blur":
            return gaussian_blur(inputs, self.kernel_size, self.sigma)
        if reference is None:
            raise ValueError("the 'mean' baseline needs the training mean")
        return reference.to(inputs).expand_as(inputs).clone()

    def bind(
        self, train_inputs: torch.Tensor | None, train_labels: torch.Tensor | None
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``baseline_fn(inputs) -> baselines``, with the mean baseline's reference computed
        once from the training set (the one place it is computed)."""
        if self.kind != "mean":
            return self
        if train_inputs is None or train_labels is None:
            raise ValueError("the 'mean' baseline needs the training set")
        return functools.partial(self, reference=self.reference(train_inputs, train_labels))
