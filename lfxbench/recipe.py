"""A model's training recipe, validated from the suite and part of the model cache key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Recipe(BaseModel):
    """How a model is trained; part of the model's cache key. Defaults: the paper's MNIST."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # None: the model's first objective (resolved when the suite is validated).
    objective: str | None = None
    epochs: int = Field(100, ge=1, le=100_000)
    batch_size: int = Field(200, ge=1, le=2**20)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    patience: int = Field(10, ge=1)
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    checkpoint_every: int = Field(10, ge=1, description="epochs between kept checkpoints")
    noise_std: float = Field(0.3, ge=0, description="denoising: std of the additive noise")
    mask_fraction: float = Field(0.2, ge=0, le=1, description="inpainting: share of masked pixels")
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    nesterov: bool = Field(False, description="sgd only: Nesterov momentum (needs momentum > 0)")
    schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="cosine: torch's CosineAnnealingLR stepped after every optimizer step "
        "(as the SimCLR reference code), from `lr` at the first step to `min_lr` after the "
        "last of the planned epochs x batches per epoch (early stopping cuts it short); a "
        "checkpoint records the mean lr of its epoch's steps",
    )
    min_lr: float = Field(0.0, ge=0, description="cosine only: the lr the schedule ends at")
    drop_last: bool = Field(False, description="drop each epoch's last incomplete batch")
    mixed_precision: bool = Field(True, description="bfloat16 autocast when training on CUDA")

    @model_validator(mode="after")
    def _options_of_their_optimizer_and_schedule(self) -> Recipe:
        if self.nesterov and self.optimizer != "sgd":
            raise ValueError(
                f"nesterov: Nesterov momentum needs optimizer sgd, not {self.optimizer}"
            )
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0")
        if self.min_lr and self.schedule != "cosine":
            raise ValueError("min_lr: only the cosine schedule has a final learning rate")
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr: {self.min_lr} exceeds lr {self.lr}")
        return self
