"""dSprites from the official npz file, and the factor grid it shares with its renderer.

Factors, in the official order (``latents_classes`` / ``latents_values`` columns):
color (1 value, white), shape (square, ellipse, heart; values 1, 2, 3), scale (6 values
linearly spaced in [0.5, 1]), orientation (40 values ``linspace(0, 2 pi, 40)``: the official
grid includes 2 pi, so its first and last orientation draw the same image), position X and Y
(32 values each, ``linspace(0, 1, 32)``). Image ``i`` of the official file has the factor
classes of ``classes_from_index(i)`` (posY varies fastest).

Labels of both datasets (this one and ``dsprites_procedural``, the renderer in
``dsprites_procedural.py``) are the shape class (0 square, 1 ellipse, 2 heart). The object
mask of a dSprites image is the image itself (binary, one object, no background clutter).
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

from lfxbench.datasets.base import DatasetSplits, find_data_file
from lfxbench.errors import DataFileError
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


def annotated_splits(
    classes: torch.Tensor,
    values: torch.Tensor,
    masks: torch.Tensor,
    n_train: int,
    description: str,
) -> tuple[DatasetSplits, SpriteAnnotations]:
    """Splits and annotations of images given train first (``n_train`` of them), then test."""
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


def split_indices(
    n_total: int, n_train: int, n_test: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint random train/test indices into ``n_total`` items, each sorted."""
    if n_train + n_test > n_total:
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the {n_total} images")
    chosen = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return chosen[:n_train].sort().values, chosen[n_train : n_train + n_test].sort().values


def with_annotations(splits: DatasetSplits, annotations: SpriteAnnotations) -> DatasetSplits:
    return dataclasses.replace(
        splits,
        train_factors=annotations.train_factors,
        test_factors=annotations.test_factors,
        test_masks=annotations.test_masks,
    )


# --- the official file ----------------------------------------------------------------------


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


def load_dsprites(
    data_dir: Path, n_train: int = 10_000, n_test: int = 2_000, subset_seed: int = 0
) -> tuple[DatasetSplits, SpriteAnnotations]:
    """A random subset of the official file, with its factors and masks."""
    path = find_data_file(
        data_dir,
        DSPRITES_FOLDERS,
        (DSPRITES_FILE,),
        DSPRITES_SOURCE,
        instead="the offline 'dsprites_procedural' (a re-rendering, not the official images)",
    )
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
    return annotated_splits(classes, values, masks, n_train, "dSprites (official npz)")


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
