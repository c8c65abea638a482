"""A model's training recipe, validated from the suite and part of the model cache key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Recipe(BaseModel):
    """How a model is trained; part of the model's cache key. Defaults: the paper's MNIST."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # None: the model's first objective (resolved when the suite is validated).
    objective: str | None = None
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(200, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    patience: int = Field(10, ge=1)
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    checkpoint_every: int = Field(10, ge=1, description="epochs between kept checkpoints")
    noise_std: float = Field(0.3, ge=0, description="denoising: std of the additive noise")
    mask_fraction: float = Field(0.2, ge=0, le=1, description="inpainting: share of masked pixels")
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    mixed_precision: bool = Field(True, description="bfloat16 autocast when training on CUDA")
