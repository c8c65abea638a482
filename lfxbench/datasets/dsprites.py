"""dSprites: the official npz file, and a vectorised renderer of the same six factors.

Factors, in the official order (``latents_classes`` / ``latents_values`` columns):
color (1 value, white), shape (square, ellipse, heart; values 1, 2, 3), scale (6 values
linearly spaced in [0.5, 1]), orientation (40 values ``linspace(0, 2 pi, 40)``: the official
grid includes 2 pi, so its first and last orientation draw the same image), position X and Y
(32 values each, ``linspace(0, 1, 32)``). Image ``i`` of the official file has the factor
classes of ``classes_from_index(i)`` (posY varies fastest).

Labels of both datasets are the shape class (0 square, 1 ellipse, 2 heart). The object mask
of a dSprites image is the image itself (binary, one object, no background clutter); the
renderer returns it as a bool tensor.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from lfxbench.datasets.base import DatasetSplits
from lfxbench.errors import DataFileError, DataNotFoundError
from lfxbench.registry import register_dataset

DSPRITES_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_FOLDERS = ("dsprites", "dSprites", "dsprites-dataset", ".")
DSPRITES_SOURCE = (
    "https://github.com/google-deepmind/dsprites-dataset "
    f"(raw file: .../dsprites-dataset/raw/master/{DSPRITES_FILE})"
)
DSPRITES_KEYS = ("imgs", "latents_classes", "latents_values")
IMAGE_SIZE = 64
FACTOR_NAMES = ("color", "shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
N_COMBINATIONS = math.prod(FACTOR_SIZES)  # 737,280: every combination once
SHAPE_NAMES = ("square", "ellipse", "heart")
DSPRITES_EXPECTED = (
    "the official dSprites npz (imgs uint8 [N, 64, 64], latents_classes int [N, 6] and "
    f"latents_values float [N, 6], N = {N_COMBINATIONS:,}) from {DSPRITES_SOURCE}"
)
FACTOR_VALUES = (
    torch.tensor([1.0], dtype=torch.float64),
    torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
    torch.linspace(0.5, 1.0, 6, dtype=torch.float64),
    torch.linspace(0.0, 2 * math.pi, 40, dtype=torch.float64),
    torch.linspace(0.0, 1.0, 32, dtype=torch.float64),
    torch.linspace(0.0, 1.0, 32, dtype=torch.float64),
)

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


def classes_from_index(index: torch.Tensor) -> torch.Tensor:
    """Official image index -> factor classes [N, 6] (the file's order: posY fastest)."""
    index = torch.as_tensor(index, dtype=torch.int64)
    classes = torch.empty(*index.shape, len(FACTOR_SIZES), dtype=torch.int64)
    for column in reversed(range(len(FACTOR_SIZES))):
        classes[..., column] = index % FACTOR_SIZES[column]
        index = index // FACTOR_SIZES[column]
    return classes


def factor_values(classes: torch.Tensor) -> torch.Tensor:
    """Factor classes [N, 6] -> factor values [N, 6] float64 (``latents_values`` convention)."""
    return torch.stack(
        [values[classes[:, column]] for column, values in enumerate(FACTOR_VALUES)], dim=1
    )


def sample_factors(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` distinct factor combinations, uniformly at random: classes [n, 6] int64.

    Draws image indices of the official file without replacement, so the real loader and the
    renderer sample the same combinations from the same seed.
    """
    if not 0 <= n <= N_COMBINATIONS:
        raise ValueError(f"n must lie in 0..{N_COMBINATIONS}, got {n}")
    return classes_from_index(torch.randperm(N_COMBINATIONS, generator=generator)[:n])


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


@dataclass
class SpriteAnnotations:
    """What ``DatasetSplits`` cannot hold yet: per-image factors and object masks.

    ``*_factors``: [N, 6] float64 in ``FACTOR_NAMES`` order (``latents_values`` convention);
    ``*_factor_classes``: [N, 6] int64 (``latents_classes``); ``*_masks``: [N, 1, 64, 64] bool,
    the object mask, equal to the (binary) image.
    """

    train_factors: torch.Tensor
    train_factor_classes: torch.Tensor
    train_masks: torch.Tensor
    test_factors: torch.Tensor
    test_factor_classes: torch.Tensor
    test_masks: torch.Tensor
    factor_names: tuple[str, ...] = FACTOR_NAMES


def _annotated_splits(
    classes: torch.Tensor,
    values: torch.Tensor,
    masks: torch.Tensor,
    n_train: int,
    description: str,
) -> tuple[DatasetSplits, SpriteAnnotations]:
    inputs = masks.to(torch.float32)
    labels = classes[:, 1].clone()
    train, test = slice(0, n_train), slice(n_train, None)
    splits = DatasetSplits(
        inputs[train], labels[train], inputs[test], labels[test], description=description
    )
    notes = SpriteAnnotations(
        values[train], classes[train], masks[train], values[test], classes[test], masks[test]
    )
    return splits, notes


# --- the official file ----------------------------------------------------------------------


def find_dsprites_file(data_dir: Path) -> Path:
    candidates = [data_dir / folder / DSPRITES_FILE for folder in DSPRITES_FOLDERS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = "\n  ".join(str(candidate) for candidate in candidates)
    raise DataNotFoundError(
        f"missing {DSPRITES_FILE}; searched:\n  {searched}\n"
        f"Download it from {DSPRITES_SOURCE} into {data_dir / DSPRITES_FOLDERS[0]}, point "
        f"--data-dir (or LFXBENCH_DATA) at the folder that holds it, or use the offline "
        f"'dsprites_procedural' (a re-rendering, not the official images)."
    )


def read_npy_header(handle) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype of the ``.npy`` data that ``handle`` is at."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def read_npz_rows(
    path: Path,
    key: str,
    rows: np.ndarray,
    block_rows: int = 8192,
    expected: str = "an npz file of plain, C-ordered arrays",
) -> np.ndarray:
    """Rows ``rows`` (sorted, distinct) of array ``key`` of an npz file, streamed.

    Decompresses the member block by block and keeps only the wanted rows, so the whole array
    (3 GB for dSprites' ``imgs``) never sits in memory. A member that is not a plain array,
    truncated or corrupt is a ``DataFileError`` naming the file and what was ``expected``.
    """
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as handle:
            shape, fortran_order, dtype = read_npy_header(handle)
            if fortran_order or dtype.hasobject:
                raise DataFileError(path, f"{key} is not a C-ordered plain array", expected)
            row_shape = shape[1:]
            row_bytes = math.prod(row_shape) * dtype.itemsize
            out = np.empty((len(rows), *row_shape), dtype=dtype)
            if len(rows) and (rows[0] < 0 or rows[-1] >= shape[0]):
                raise IndexError(f"{path}:{key} has {shape[0]} rows")
            done = 0
            for start in range(0, shape[0], block_rows):
                if done == len(rows):
                    break
                count = min(block_rows, shape[0] - start)
                data = handle.read(count * row_bytes)
                if len(data) != count * row_bytes:
                    raise DataFileError(path, f"{key} is truncated", expected)
                stop = done + int(np.searchsorted(rows[done:], start + count))
                if stop > done:
                    block = np.frombuffer(data, dtype=dtype).reshape(count, *row_shape)
                    out[done:stop] = block[rows[done:stop] - start]
                    done = stop
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise DataFileError(
            path, f"{key} is corrupt ({error}); download it again", expected
        ) from error
    return out


def read_dsprites_latents(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The official file's ``latents_classes`` and ``latents_values`` [N, 6], once ``imgs``
    [N, 64, 64] uint8 is checked to match them; every mismatch is a ``DataFileError``."""

    def bad(problem: str) -> DataFileError:
        return DataFileError(path, problem, DSPRITES_EXPECTED)

    if not zipfile.is_zipfile(path):
        raise bad(
            "empty file (0 bytes)"
            if path.stat().st_size == 0
            else "not a zip archive, as every npz file is (a truncated download is not one either)"
        )
    arrays, reading = {}, "the zip directory"  # reading: what an error message blames
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = sorted(set(DSPRITES_KEYS) - set(archive.files))
            if not missing:
                for reading in ("latents_classes", "latents_values"):
                    arrays[reading] = archive[reading]
                reading = "imgs"  # only its header: the 3 GB of images are streamed later
                with archive.zip.open("imgs.npy") as handle:
                    images_shape, _, images_dtype = read_npy_header(handle)
    except ValueError as error:  # an object array (a pickle), or a member that is no .npy
        raise bad(f"{reading} cannot be loaded ({error})") from error
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise bad(f"{reading} is corrupt ({error}); download it again") from error
    if missing:
        raise bad(f"lacks {missing}")
    classes, values = arrays["latents_classes"], arrays["latents_values"]
    if classes.ndim != 2 or classes.shape[1] != len(FACTOR_SIZES) or classes.dtype.kind not in "iu":
        raise bad(f"latents_classes is a {classes.dtype} array of shape {classes.shape}")
    if values.shape != classes.shape or values.dtype.kind != "f":
        raise bad(
            f"latents_values is a {values.dtype} array of shape {values.shape}, latents_classes "
            f"one of shape {classes.shape}"
        )
    if images_shape != (len(classes), IMAGE_SIZE, IMAGE_SIZE) or images_dtype != np.uint8:
        raise bad(
            f"imgs is a {images_dtype} array of shape {images_shape}, not "
            f"[{len(classes)}, {IMAGE_SIZE}, {IMAGE_SIZE}] (one image per row of latents_classes)"
        )
    outside = (classes < 0) | (classes >= np.array(FACTOR_SIZES))
    if outside.any():
        row, column = np.argwhere(outside)[0]
        raise bad(
            f"latents_classes holds class {classes[row, column]} for {FACTOR_NAMES[column]}, "
            f"outside 0-{FACTOR_SIZES[column] - 1}"
        )
    return classes, values


def split_indices(
    n_total: int, n_train: int, n_test: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint random train/test indices into ``n_total`` items, each sorted."""
    if n_train + n_test > n_total:
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the {n_total} images")
    chosen = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return chosen[:n_train].sort().values, chosen[n_train : n_train + n_test].sort().values


def load_dsprites(
    data_dir: Path, n_train: int = 10_000, n_test: int = 2_000, subset_seed: int = 0
) -> tuple[DatasetSplits, SpriteAnnotations]:
    """A random subset of the official file, with its factors and masks."""
    path = find_dsprites_file(data_dir)
    all_classes, all_values = read_dsprites_latents(path)
    train_index, test_index = split_indices(len(all_classes), n_train, n_test, subset_seed)
    index = torch.cat([train_index, test_index])
    order = index.argsort()  # read the file once, in order, then put rows back in split order
    rows = np.empty((len(index), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    rows[order.numpy()] = read_npz_rows(
        path, "imgs", index[order].numpy(), expected=DSPRITES_EXPECTED
    )
    masks = torch.from_numpy(rows != 0)[:, None]
    classes = torch.from_numpy(all_classes[index.numpy()].astype(np.int64))
    values = torch.from_numpy(all_values[index.numpy()].astype(np.float64))
    return _annotated_splits(classes, values, masks, n_train, "dSprites (official npz)")


def with_annotations(splits: DatasetSplits, annotations: SpriteAnnotations) -> DatasetSplits:
    return dataclasses.replace(
        splits,
        train_factors=annotations.train_factors,
        test_factors=annotations.test_factors,
        test_masks=annotations.test_masks,
    )


@register_dataset("dsprites")
def dsprites(
    data_dir: Path,
    n_train: Annotated[int, Field(ge=1)] = 10_000,
    n_test: Annotated[int, Field(ge=1)] = 2_000,
    subset_seed: int = 0,
) -> DatasetSplits:
    """dSprites, a random subset of the official npz (737,280 binary 64x64); label = shape.

    Labels: 0 square, 1 ellipse, 2 heart. Train and test are disjoint random images of the
    file, drawn with ``subset_seed`` (``dsprites_procedural`` with ``seed`` equal to it draws
    the same factor combinations). Factors and masks: ``load_dsprites``.
    """
    return with_annotations(*load_dsprites(data_dir, n_train, n_test, subset_seed))


dsprites.provides_object_masks = True  # localisation metrics may score its models


# --- the renderer as a dataset --------------------------------------------------------------


def generate_dsprites(
    n_train: int = 10_000, n_test: int = 2_000, seed: int = 0
) -> tuple[DatasetSplits, SpriteAnnotations]:
    """Rendered dSprites with their factors and masks (see ``dsprites_procedural``)."""
    train_index, test_index = split_indices(N_COMBINATIONS, n_train, n_test, seed)
    classes = classes_from_index(torch.cat([train_index, test_index]))
    values = factor_values(classes)
    masks = render_from_classes(classes)[:, None]
    return _annotated_splits(
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
