"""Your own images without a plugin: one sub-folder per class (``cat/``, ``dog/`` …), read
with Pillow, optionally resized, converted to grey and normalised."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from lfxbench.datasets.base import DatasetSplits
from lfxbench.errors import DataFileError, DataNotFoundError
from lfxbench.registry import register_dataset

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
EXPECTED = "an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP)"


def _classes(folder: Path) -> list[Path]:
    classes = sorted(entry for entry in folder.iterdir() if entry.is_dir())
    if not classes:
        raise DataNotFoundError(
            f"{folder} holds no class sub-folders (one per class, e.g. cat/, dog/)"
        )
    return classes


def _read(path: Path, size: tuple[int, int] | None, grayscale: bool) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            if size is not None:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as error:
        raise DataFileError(path, f"cannot be read ({error})", EXPECTED) from error


def _load(
    folder: Path, labels: dict[str, int], size, grayscale
) -> tuple[torch.Tensor, torch.Tensor]:
    images, targets = [], []
    for name, label in labels.items():
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in SUFFIXES)
        images += [_read(path, size, grayscale) for path in files]  # file I/O, not a hot path
        targets += [label] * len(files)
    if not images:
        raise DataNotFoundError(
            f"{folder} holds no images ({', '.join(SUFFIXES)}) in its class folders"
        )
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DataFileError(
            folder, f"holds images of {len(shapes)} sizes", "one size: give `size: [H, W]`"
        )
    array = np.stack(images).astype(np.float32) / 255.0
    inputs = torch.from_numpy(array[:, None] if grayscale else array.transpose(0, 3, 1, 2))
    return inputs.contiguous(), torch.tensor(targets, dtype=torch.int64)


@register_dataset("image_folder")
def image_folder(
    path: Path,
    size: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = None,
    grayscale: bool = False,
    mean: list[float] | None = None,
    std: list[Annotated[float, Field(gt=0)]] | None = None,
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2,
    seed: int = 0,
) -> DatasetSplits:
    """Images in class sub-folders (``train/`` and ``test/`` of them, or one set split at
    random by ``test_fraction``), scaled to [0, 1], then ``(x - mean) / std`` per channel."""
    path = Path(path)
    if not path.is_dir():
        raise DataNotFoundError(f"{path} is not a folder of class sub-folders of images")
    if (path / "train").is_dir() and (path / "test").is_dir():
        labels = {entry.name: index for index, entry in enumerate(_classes(path / "train"))}
        train = _load(path / "train", labels, size, grayscale)
        test = _load(
            path / "test",
            {n: i for n, i in labels.items() if (path / "test" / n).is_dir()},
            size,
            grayscale,
        )
    else:
        labels = {entry.name: index for index, entry in enumerate(_classes(path))}
        inputs, targets = _load(path, labels, size, grayscale)
        order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))
        n_test = max(1, round(test_fraction * len(inputs)))
        test_rows, train_rows = order[:n_test].sort().values, order[n_test:].sort().values
        train, test = (
            (inputs[train_rows], targets[train_rows]),
            (inputs[test_rows], targets[test_rows]),
        )
    if mean is not None or std is not None:
        channels = train[0].shape[1]
        shift = torch.tensor(mean or [0.0] * channels).view(1, -1, 1, 1)
        scale = torch.tensor(std or [1.0] * channels).view(1, -1, 1, 1)
        if shift.shape[1] != channels or scale.shape[1] != channels:
            raise ValueError(f"mean and std need {channels} values (one per channel)")
        train, test = ((train[0] - shift) / scale, train[1]), ((test[0] - shift) / scale, test[1])
    return DatasetSplits(*train, *test, description=f"images from {path} ({', '.join(labels)})")
