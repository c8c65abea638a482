"""SimCLR's CIFAR-10 augmentations, vectorised over the batch in torch.

Random draws come from ``generator`` (the global RNG when it is ``None``), independently
for every image, so the views are reproducible from a seed. Images are ``[B, 3, H, W]`` RGB
in [0, 1]. See :func:`simclr_augment`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["hsv_to_rgb", "rgb_to_hsv", "simclr_augment"]

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


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
