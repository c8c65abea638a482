"""SimCLR (Chen et al., 2020) on 32x32 images: the paper's CIFAR-10 model and the
reproduction's DenseNet-121 variant.

The explained ``encoder`` is the backbone (``[B, 3, 32, 32] -> [B, F]`` after global average
pooling; F = 512 for ResNet-18, 1024 for DenseNet-121, times ``width``). The projection head
``Linear(F, 2048) - ReLU - Linear(2048, 128)`` (the paper's Table 7) is trained with it and
never explained.

The backbones (``cifar_backbones.py``): ResNet-18 and DenseNet-121 adapted to CIFAR (3x3
stride-1 stem, no max-pool), every ReLU its own module (for Captum's DeepLift).

Objective ``simclr``: two augmented views of each image of the minibatch go through backbone
and head together (BatchNorm sees both views); the per-example loss is the NT-Xent term of
each example averaged over its two views, so its mean over the batch is SimCLR's loss. The
"per-example" loss depends on the other examples of the batch (they are its negatives):
loss-based example importance (TracIn, Influence Functions) is not defined for it, as the
paper notes. Augmentations are SimCLR's CIFAR-10 ones, vectorised over the batch in torch
(``augment.py``: :func:`simclr_augment`), and are drawn inside ``loss``: in train mode from
the global RNG (seeded by the trainer), in eval mode from a generator with a fixed seed, so
that the validation loss used for early stopping compares the same views at every epoch.
Inputs are expected in [0, 1] (unnormalised RGB).

Recommended recipe (the paper's public code, ``simclr_config.yaml``, and the reproduction's
Table 4): SGD, momentum 0.9 with Nesterov, weight decay 1e-6, temperature 0.5, batch 512
with ``drop_last``, 100 epochs with no early stopping (set ``patience`` >= ``epochs``), a
per-step cosine schedule, mixed precision on. The config's lr is 0.6 (= 0.3 x batch / 256),
but the reference's ``LambdaLR`` factor itself runs from 0.6 to 1e-3, so the rates it
trained with went from 0.36 to 6e-4: ``lr: 0.36, min_lr: 6.0e-4, schedule: cosine`` (as
``suites/paper.yaml``) reproduces them.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lfxbench.models.augment import simclr_augment
from lfxbench.models.base import ZooModel
from lfxbench.models.cifar_backbones import CifarDenseNet121, CifarResNet18
from lfxbench.recipe import Recipe
from lfxbench.registry import register_model

__all__ = ["SimclrDensenet121", "SimclrResnet18", "nt_xent"]

# Seed of the augmentations drawn in eval mode (the trainer's validation loss).
EVAL_AUGMENTATION_SEED = 0


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent of SimCLR, per example ``[B]``: each example's two view terms, averaged.

    ``z1[i]`` and ``z2[i]`` are the projections of two views of example ``i``. For each of
    the ``2B`` views, the loss is the cross-entropy of picking its partner among the other
    ``2B - 1`` views, with cosine similarities divided by ``temperature`` as logits. The
    mean of the result over the batch is SimCLR's loss. Computed in float32.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"expected two [B, D] views, got {list(z1.shape)}, {list(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = (z @ z.T) / temperature
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))
    partners = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    per_view = F.cross_entropy(logits, partners, reduction="none")
    return (per_view[:n] + per_view[n:]) / 2


# ------------------------------------------------------------------------------ models


class _Simclr(ZooModel):
    """Backbone + projection head, trained with NT-Xent on two augmented views."""

    objectives = ("simclr",)
    batch_dependent_objectives = ("simclr",)  # NT-Xent needs the other views of the batch

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float,
        projection_hidden_dim: int,
        projection_dim: int,
        crop_min_scale: float,
        jitter_strength: float,
    ):
        super().__init__()
        self.temperature = temperature
        self.crop_min_scale = crop_min_scale
        self.jitter_strength = jitter_strength
        self.encoder = backbone
        self.projection_head = nn.Sequential(
            nn.Linear(backbone.out_features, projection_hidden_dim),
            nn.ReLU(inplace=False),
            nn.Linear(projection_hidden_dim, projection_dim),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Projections ``[B, projection_dim]`` (what NT-Xent compares)."""
        return self.projection_head(self.encoder(inputs))

    def augment(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One random view of every image (float32, outside any autocast, no gradient)."""
        with torch.no_grad(), torch.autocast(device_type=images.device.type, enabled=False):
            return simclr_augment(
                images.float(),
                generator,
                crop_min_scale=self.crop_min_scale,
                jitter_strength=self.jitter_strength,
            )

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
        generator = None
        if not self.training:  # the same views at every validation pass
            generator = torch.Generator(device=inputs.device)
            generator.manual_seed(EVAL_AUGMENTATION_SEED)
        first, second = self.augment(inputs, generator), self.augment(inputs, generator)
        projections = self(torch.cat([first, second]).to(inputs.dtype))
        n = inputs.shape[0]
        return nt_xent(projections[:n], projections[n:], self.temperature)


@register_model("simclr_resnet18")
class SimclrResnet18(_Simclr):
    """SimCLR, CIFAR ResNet-18 backbone (explained, [B,3,32,32]->[B,512]) + MLP head, NT-Xent."""

    def __init__(
        self,
        width: Annotated[float, Field(gt=0)] = 1.0,
        temperature: Annotated[float, Field(gt=0)] = 0.5,
        projection_hidden_dim: Annotated[int, Field(ge=1)] = 2048,
        projection_dim: Annotated[int, Field(ge=1)] = 128,
        crop_min_scale: Annotated[float, Field(gt=0, le=1)] = 0.08,
        jitter_strength: Annotated[float, Field(ge=0, le=1.25)] = 0.5,
    ):
        super().__init__(
            CifarResNet18(width),
            temperature,
            projection_hidden_dim,
            projection_dim,
            crop_min_scale,
            jitter_strength,
        )


@register_model("simclr_densenet121")
class SimclrDensenet121(_Simclr):
    """SimCLR, CIFAR DenseNet-121 backbone (explained, [B,3,32,32]->[B,1024]) + MLP head."""

    def __init__(
        self,
        width: Annotated[float, Field(gt=0)] = 1.0,
        temperature: Annotated[float, Field(gt=0)] = 0.5,
        projection_hidden_dim: Annotated[int, Field(ge=1)] = 2048,
        projection_dim: Annotated[int, Field(ge=1)] = 128,
        crop_min_scale: Annotated[float, Field(gt=0, le=1)] = 0.08,
        jitter_strength: Annotated[float, Field(ge=0, le=1.25)] = 0.5,
    ):
        super().__init__(
            CifarDenseNet121(width),
            temperature,
            projection_hidden_dim,
            projection_dim,
            crop_min_scale,
            jitter_strength,
        )
