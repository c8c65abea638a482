"""dSprites' six factors re-rendered offline (a vectorised renderer); not the official file.

The factor grid, its order and the annotations are the official dataset's (``dsprites.py``);
the geometry below is this module's reasoned approximation of the official generator's.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import torch
from pydantic import Field

from lfxbench.datasets.base import DatasetSplits
from lfxbench.datasets.dsprites import (
    IMAGE_SIZE,
    N_COMBINATIONS,
    SHAPE_NAMES,
    SpriteAnnotations,
    annotated_splits,
    classes_from_index,
    factor_values,
    split_indices,
    with_annotations,
)
from lfxbench.registry import register_dataset

# --- geometry of the renderer (assumptions; the official generator is not published) -----
#
# Coordinates: the image spans [0, 64] x [0, 64] pixels, pixel (row r, col c) has its centre
# at (r + 0.5, c + 0.5) and is on iff that centre lies inside the shape (binary, no
# anti-aliasing, like the official images). pos_x moves the sprite right (columns), pos_y
# down (rows): the sprite's area centroid sits at column 16 + 32 pos_x, row 16 + 32 pos_y,
# a 32-pixel range whose 31 steps of ~1 px are "the smallest step changes while ensuring that
# all pixel outputs were different" (official README) and keep every sprite inside the image.
# Size: at scale s, the square's half-side is SPRITE_UNIT * s pixels (a 20.6-px square at
# s = 1, about a third of the image); the ellipse has semi-axes SPRITE_UNIT * s (along x at
# orientation 0) and half that; the heart is the curve (x^2 + y^2 - 1)^3 = x^2 y^3 (lobes
# up at orientation 0) scaled to half-width SPRITE_UNIT * s and centred on its centroid.
# SPRITE_UNIT = 10.3 px makes the mean pixel over all factor combinations ~0.043, the value
# reported for the official images (mean 0.043, std 0.202). Orientation rotates the sprite
# counter-clockwise on screen about its centroid.
POSITION_OFFSET, POSITION_RANGE = 16.0, 32.0
SPRITE_UNIT = 10.3
ELLIPSE_MINOR = 0.5  # minor / major semi-axis
# The heart curve spans x in [-1.1388, 1.1388]; its area centroid is at y = 0.2935.
HEART_HALF_WIDTH, HEART_CENTROID_Y = 1.1388, 0.2935
_RENDER_CHUNK = 1024


def render_dsprites(
    shape: torch.Tensor,
    scale: torch.Tensor,
    orientation: torch.Tensor,
    pos_x: torch.Tensor,
    pos_y: torch.Tensor,
) -> torch.Tensor:
    """Binary dSprites images [N, 64, 64] bool, from per-image factor values.

    ``shape`` is the class (0 square, 1 ellipse, 2 heart); ``scale``, ``orientation``
    (radians), ``pos_x`` and ``pos_y`` (in [0, 1]) are values, not necessarily on the official
    grid. Vectorised over the batch (in chunks of 1,024 images). The image is also the
    object's mask.
    """
    shape = torch.as_tensor(shape, dtype=torch.int64).reshape(-1)
    n = len(shape)
    factors = [
        torch.as_tensor(value, dtype=torch.float64).reshape(-1).expand(n)
        for value in (scale, orientation, pos_x, pos_y)
    ]
    images = torch.empty(n, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
    for start in range(0, n, _RENDER_CHUNK):
        chunk = slice(start, start + _RENDER_CHUNK)
        images[chunk] = _render_chunk(shape[chunk], *(value[chunk] for value in factors))
    return images


def _render_chunk(shape, scale, orientation, pos_x, pos_y) -> torch.Tensor:
    # float64 for the per-image transform; float32 on the pixel grid (~1e-6 px, no ties seen).
    centres = (torch.arange(IMAGE_SIZE, dtype=torch.float64) + 0.5)[None, :]
    size = SPRITE_UNIT * scale[:, None]
    # Offsets from the sprite's centroid in units of its size, y pointing up on screen.
    dx = ((centres - (POSITION_OFFSET + POSITION_RANGE * pos_x)[:, None]) / size).float()
    dy = (((POSITION_OFFSET + POSITION_RANGE * pos_y)[:, None] - centres) / size).float()
    cos, sin = torch.cos(orientation).float(), torch.sin(orientation).float()
    images = torch.empty(len(shape), IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
    for kind in range(len(SHAPE_NAMES)):
        chosen = (shape == kind).nonzero().squeeze(1)
        if len(chosen) == 0:
            continue
        # Rotate the pixel grid by -orientation, i.e. the sprite by +orientation.
        c, s = cos[chosen, None, None], sin[chosen, None, None]
        x, y = dx[chosen, None, :], dy[chosen, :, None]  # [k, 1, 64] columns, [k, 64, 1] rows
        u, v = c * x + s * y, c * y - s * x
        if kind == 0:  # square
            inside = torch.maximum(u.abs(), v.abs()) <= 1
        elif kind == 1:  # ellipse
            w = v / ELLIPSE_MINOR
            inside = u * u + w * w <= 1
        else:  # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0
            hx, hy = u * HEART_HALF_WIDTH, v * HEART_HALF_WIDTH + HEART_CENTROID_Y
            hx2, hy2 = hx * hx, hy * hy
            r = hx2 + hy2 - 1
            inside = r * r * r <= hx2 * hy2 * hy
        images[chosen] = inside
    return images


def render_from_classes(classes: torch.Tensor) -> torch.Tensor:
    """Factor classes [N, 6] -> binary images [N, 64, 64] bool."""
    values = factor_values(classes)
    return render_dsprites(classes[:, 1], *values[:, 2:].unbind(1))


def generate_dsprites(
    n_train: int = 10_000, n_test: int = 2_000, seed: int = 0
) -> tuple[DatasetSplits, SpriteAnnotations]:
    """Rendered dSprites with their factors and masks (see ``dsprites_procedural``)."""
    train_index, test_index = split_indices(N_COMBINATIONS, n_train, n_test, seed)
    classes = classes_from_index(torch.cat([train_index, test_index]))
    values = factor_values(classes)
    masks = render_from_classes(classes)[:, None]
    return annotated_splits(
        classes, values, masks, n_train, "dSprites re-rendered offline (not the official images)"
    )


@register_dataset("dsprites_procedural")
def dsprites_procedural(
    n_train: Annotated[int, Field(ge=1)] = 10_000,
    n_test: Annotated[int, Field(ge=1)] = 2_000,
    seed: int = 0,
    background_noise: Annotated[float, Field(ge=0, le=1)] = 0.0,
) -> DatasetSplits:
    """dSprites' six factors re-rendered offline (binary 64x64, label = shape); not the file.

    Same factor grid as the official set; train and test are disjoint combinations drawn with
    ``seed`` (the same ones ``dsprites`` draws with ``subset_seed=seed``). The geometry is this
    module's reasoned approximation of the official one (see its comments). Factors and
    object masks (= the images): ``generate_dsprites``, ``render_dsprites``.

    ``background_noise`` > 0 fills the background with uniform noise in [0, level] (the
    masks stay the sprites). On the binary images a black baseline alone tells every
    difference-from-baseline method where the object is; noise makes localisation a test.
    """
    splits = with_annotations(*generate_dsprites(n_train, n_test, seed))
    if background_noise == 0:
        return splits
    generator = torch.Generator().manual_seed(seed)
    noisy = {}
    for split in ("train", "test"):
        inputs = getattr(splits, f"{split}_inputs")
        noise = torch.rand(inputs.shape, generator=generator) * background_noise
        noisy[f"{split}_inputs"] = torch.where(inputs > 0, inputs, noise)
    description = f"{splits.description}; background noise U[0, {background_noise:g}]"
    return dataclasses.replace(splits, **noisy, description=description)


dsprites_procedural.provides_object_masks = True
