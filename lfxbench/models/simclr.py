"""SimCLR (Chen et al., 2020) on 32x32 images: the paper's CIFAR-10 model and the
reproduction's DenseNet-121 variant.

The explained ``encoder`` is the backbone (``[B, 3, 32, 32] -> [B, F]`` after global average
pooling; F = 512 for ResNet-18, 1024 for DenseNet-121, times ``width``). The projection head
``Linear(F, 2048) - ReLU - Linear(2048, 128)`` (the paper's Table 7) is trained with it and
never explained.

Backbones, written with ``torch.nn`` alone (torchvision does not import beside the CPU torch
of the default install):

* ResNet-18 adapted to CIFAR as in SimCLR's Appendix B.9: a 3x3 stride-1 stem convolution
  and no max-pool; basic blocks 2-2-2-2 with 64-128-256-512 channels.
* DenseNet-121 (growth 32, blocks 6-12-24-16, bottleneck 4 x growth, compression 0.5), the
  same adaptation: torchvision's 7x7 stride-2 stem and its max-pool become one 3x3 stride-1
  convolution (then BatchNorm and ReLU, as torchvision's ``norm0``/``relu0``); spatial sizes
  32 -> 16 -> 8 -> 4 through the three transitions.

Every ReLU is its own ``nn.ReLU`` module (never in place, never reused): Captum's DeepLift
hooks non-linear modules and needs one module per use.

Objective ``simclr``: two augmented views of each image of the minibatch go through backbone
and head together (BatchNorm sees both views); the per-example loss is the NT-Xent term of
each example averaged over its two views, so its mean over the batch is SimCLR's loss. The
"per-example" loss depends on the other examples of the batch (they are its negatives):
loss-based example importance (TracIn, Influence Functions) is not defined for it, as the
paper notes. Augmentations are SimCLR's CIFAR-10 ones, vectorised over the batch in torch
(see :func:`simclr_augment`), and are drawn inside ``loss``: in train mode from the global
RNG (seeded by the trainer), in eval mode from a generator with a fixed seed, so that the
validation loss used for early stopping compares the same views at every epoch. Inputs are
expected in [0, 1] (unnormalised RGB).

Recommended recipe (the paper's public code, ``simclr_config.yaml``, and the reproduction's
Table 4): SGD, momentum 0.9 with Nesterov, weight decay 1e-6, temperature 0.5, batch 512
with ``drop_last``, 100 epochs with no early stopping (set ``patience`` >= ``epochs``), a
per-step cosine schedule, mixed precision on. The config's lr is 0.6 (= 0.3 x batch / 256),
but the reference's ``LambdaLR`` factor itself runs from 0.6 to 1e-3, so the rates it
trained with went from 0.36 to 6e-4: ``lr: 0.36, min_lr: 6.0e-4, schedule: cosine`` (as
``suites/paper.yaml``) reproduces them.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe
from lfxbench.registry import register_model

__all__ = [
    "CifarDenseNet121",
    "CifarResNet18",
    "SimclrDensenet121",
    "SimclrResnet18",
    "hsv_to_rgb",
    "nt_xent",
    "rgb_to_hsv",
    "simclr_augment",
]

# Seed of the augmentations drawn in eval mode (the trainer's validation loss).
EVAL_AUGMENTATION_SEED = 0
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


# --------------------------------------------------------------------------- backbones


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(inputs)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(inputs))


class CifarResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs (3x3 stride-1 stem, no max-pool) -> ``[B, 512 * width]``."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        channels = [_scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=False),
        )
        stages, in_channels = [], channels[0]
        for index, out_channels in enumerate(channels):
            stride = 1 if index == 0 else 2
            stages.append(
                nn.Sequential(
                    BasicBlock(in_channels, out_channels, stride),
                    BasicBlock(out_channels, out_channels, 1),
                )
            )
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = channels[-1]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(inputs)))


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck) -BN-ReLU-3x3 conv (growth), concatenated to the input."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(in_channels, bottleneck, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bottleneck)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(bottleneck, growth, 3, 1, 1, bias=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        new = self.conv1(self.relu1(self.norm1(inputs)))
        new = self.conv2(self.relu2(self.norm2(new)))
        return torch.cat([inputs, new], dim=1)


class CifarDenseNet121(nn.Module):
    """DenseNet-121 for 32x32 inputs (3x3 stride-1 stem, no max-pool) -> ``[B, 1024 * width]``."""

    def __init__(
        self,
        width: float = 1.0,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        growth_rate: int = 32,
        bottleneck_factor: int = 4,
    ):
        super().__init__()
        growth = _scaled(growth_rate, width)
        channels = 2 * growth
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=False),
        ]
        for index, n_layers in enumerate(block_config):
            for _ in range(n_layers):
                layers.append(DenseLayer(channels, growth, bottleneck_factor * growth))
                channels += growth
            if index < len(block_config) - 1:  # transition: compression 0.5, 2x2 average pool
                layers += [
                    nn.BatchNorm2d(channels),
                    nn.ReLU(inplace=False),
                    nn.Conv2d(channels, channels // 2, 1, bias=False),
                    nn.AvgPool2d(2, 2),
                ]
                channels //= 2
        layers += [
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ]
        self.features = nn.Sequential(*layers)
        self.out_features = channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.features(inputs)


# ------------------------------------------------------------------------------- loss


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


# ----------------------------------------------------------------------- augmentations


def _uniform(
    n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` -> ``[B, 1, H, W]`` luma."""
    weights = torch.tensor(_GRAY_WEIGHTS, dtype=images.dtype, device=images.device)
    return (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` RGB in [0, 1] -> HSV in [0, 1] (hue as a fraction of a turn)."""
    r, g, b = images.unbind(dim=1)
    value = images.amax(dim=1)
    chroma = value - images.amin(dim=1)
    grey = chroma == 0
    safe_value = torch.where(value == 0, torch.ones_like(value), value)
    saturation = torch.where(grey, torch.zeros_like(value), chroma / safe_value)
    safe_chroma = torch.where(grey, torch.ones_like(chroma), chroma)
    rc, gc, bc = ((value - channel) / safe_chroma for channel in (r, g, b))
    red_max = value == r
    green_max = (value == g) & ~red_max
    blue_max = ~red_max & ~green_max
    hue = red_max * (bc - gc) + green_max * (2.0 + rc - bc) + blue_max * (4.0 + gc - rc)
    hue = torch.where(grey, torch.zeros_like(hue), hue)
    hue = torch.remainder(hue / 6.0, 1.0)
    return torch.stack([hue, saturation, value], dim=1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    hue, saturation, value = hsv.unbind(dim=1)
    sector_float = torch.floor(hue * 6.0)
    fraction = hue * 6.0 - sector_float
    sector = sector_float.long() % 6
    p = (value * (1.0 - saturation)).clamp(0.0, 1.0)
    q = (value * (1.0 - saturation * fraction)).clamp(0.0, 1.0)
    t = (value * (1.0 - saturation * (1.0 - fraction))).clamp(0.0, 1.0)
    # Per sector (0..5): (r, g, b) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q).
    red = torch.stack([value, q, p, p, t, value], dim=1)
    green = torch.stack([t, value, value, q, p, p], dim=1)
    blue = torch.stack([p, p, t, value, value, q], dim=1)
    index = sector.unsqueeze(1)
    return torch.cat([red.gather(1, index), green.gather(1, index), blue.gather(1, index)], dim=1)


def _per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def _adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (images * _per_image(factor)).clamp(0.0, 1.0)


def _adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = _grayscale(images).mean(dim=(1, 2, 3), keepdim=True)
    factor = _per_image(factor)
    return (factor * images + (1.0 - factor) * mean).clamp(0.0, 1.0)


def _adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    factor = _per_image(factor)
    return (factor * images + (1.0 - factor) * _grayscale(images)).clamp(0.0, 1.0)


def _adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    hsv = rgb_to_hsv(images)
    hue = torch.remainder(hsv[:, 0] + shift.view(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], dim=1))


def _random_resized_crop_and_flip(
    images: torch.Tensor,
    min_scale: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Per image: a crop of area ``U(min_scale, 1)`` of the image and aspect ratio log-uniform
    in [3/4, 4/3] (each side at most the image's), at a uniform position, resized back to
    the input size (bilinear), and mirrored left-right with probability 1/2. One
    ``grid_sample`` for the whole batch.
    """
    n, device = images.shape[0], images.device
    area = _uniform(n, min_scale, 1.0, generator, device)
    log_ratio = _uniform(n, math.log(3 / 4), math.log(4 / 3), generator, device)
    ratio = torch.exp(log_ratio)
    crop_w = torch.sqrt(area * ratio).clamp(max=1.0)  # fractions of the image's side
    crop_h = torch.sqrt(area / ratio).clamp(max=1.0)
    # Centres in normalised coordinates ([-1, 1] spans the image) keep the crop inside.
    centre_x = (2 * torch.rand(n, generator=generator, device=device) - 1) * (1 - crop_w)
    centre_y = (2 * torch.rand(n, generator=generator, device=device) - 1) * (1 - crop_h)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    sign = 1.0 - 2.0 * flip.to(images.dtype)
    zeros = torch.zeros_like(crop_w)
    theta = torch.stack(
        [
            torch.stack([sign * crop_w, zeros, centre_x], dim=1),
            torch.stack([zeros, crop_h, centre_y], dim=1),
        ],
        dim=1,
    )  # [B, 2, 3]
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def simclr_augment(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    crop_min_scale: float = 0.08,
    jitter_strength: float = 0.5,
    jitter_probability: float = 0.8,
    grayscale_probability: float = 0.2,
) -> torch.Tensor:
    """One random SimCLR view of every image of ``[B, 3, H, W]`` in [0, 1]; same shape, [0, 1].

    SimCLR's CIFAR-10 pipeline (the paper's code: torchvision ``RandomResizedCrop(32)``,
    ``RandomHorizontalFlip()``, ``RandomApply([ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s)], 0.8)``,
    ``RandomGrayscale(0.2)`` with ``s = 0.5``), drawn independently for every image and
    applied to the whole batch at once:

    * random resized crop (area in ``[crop_min_scale, 1]``, ratio in [3/4, 4/3]) and flip;
    * with probability ``jitter_probability``: brightness, contrast and saturation factors in
      ``[1 - 0.8 s, 1 + 0.8 s]`` and a hue shift in ``[-0.2 s, 0.2 s]`` turns, applied in a
      random order per image (as torchvision's ``ColorJitter``), clamped to [0, 1];
    * with probability ``grayscale_probability``: luma copied to the three channels.

    Differences from torchvision: a crop that would exceed the image is clamped to the
    image's side instead of re-drawn, and resizing is plain bilinear (no antialiasing).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images [B, 3, H, W], got {list(images.shape)}")
    n, device = images.shape[0], images.device
    out = _random_resized_crop_and_flip(images, crop_min_scale, generator)

    jitter = torch.rand(n, generator=generator, device=device) < jitter_probability
    spread = 0.8 * jitter_strength
    factors = [_uniform(n, 1 - spread, 1 + spread, generator, device) for _ in range(3)]
    hue_spread = 0.2 * jitter_strength
    factors.append(_uniform(n, -hue_spread, hue_spread, generator, device))
    neutral = (1.0, 1.0, 1.0, 0.0)  # images that are not jittered go through unchanged
    factors = [
        torch.where(jitter, factor, torch.full_like(factor, value))
        for factor, value in zip(factors, neutral, strict=True)
    ]
    operations = (_adjust_brightness, _adjust_contrast, _adjust_saturation, _adjust_hue)
    # A random order per image: at step k, image i gets operation order[i, k].
    order = torch.argsort(torch.rand(n, 4, generator=generator, device=device), dim=1)
    for step in range(4):
        stepped = out
        for index, operation in enumerate(operations):
            chosen = _per_image(order[:, step] == index)
            stepped = torch.where(chosen, operation(out, factors[index]), stepped)
        out = stepped

    gray = torch.rand(n, generator=generator, device=device) < grayscale_probability
    out = torch.where(_per_image(gray), _grayscale(out).expand_as(out), out)
    return out.clamp(0.0, 1.0)


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
