"""CIFAR-10 from the official python batches, and an offline natural-image stand-in."""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from lfxbench.datasets.base import DatasetSplits, find_data_file, read_file_bytes, subsample
from lfxbench.errors import DataFileError, DataNotFoundError
from lfxbench.registry import register_dataset

CIFAR10_BATCHES_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
# Folders (under the data directory) that may hold `cifar-10-batches-py/` or the archive.
CIFAR10_FOLDERS = (".", "cifar10", "CIFAR10", "cifar-10", "CIFAR-10")
CIFAR10_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz)"
CIFAR10_IMAGE_BYTES = 3 * 32 * 32  # one image: the red, green, then blue 32x32 plane
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_BATCH_EXPECTED = (
    "a CIFAR-10 python batch, a pickled dict with b'data' (uint8 [N, 3072]) and b'labels' "
    f"(N classes 0-9), from {CIFAR10_SOURCE}"
)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds (dicts, lists, bytes, numpy arrays): a
    file in the data directory must not be able to run code."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how protocol-2 pickles carry an array's raw bytes
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a CIFAR-10 batch")
        return super().find_class(module, name)


def _unpickle(handle) -> dict:
    # The official batches are Python-2 pickles of dicts with bytes keys.
    return _BatchUnpickler(handle, encoding="bytes").load()


def read_batch(payload: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One official batch's bytes -> (uint8 [N, 3072], int64 [N]); a ``DataFileError`` naming
    ``source`` when they are not a CIFAR-10 batch."""
    try:
        # From memory, not the file: a corrupt length field then reads as truncated data.
        batch = _unpickle(io.BytesIO(payload))
    except Exception as error:  # bytes that are no pickle make the unpickler raise nearly anything
        problem = f"cannot be unpickled ({type(error).__name__}: {error})"
        raise DataFileError(source, problem, CIFAR10_BATCH_EXPECTED) from error
    return _batch_arrays(batch, source)


def _batch_arrays(batch: object, source: str) -> tuple[np.ndarray, np.ndarray]:
    def bad(problem: str) -> DataFileError:
        return DataFileError(source, problem, CIFAR10_BATCH_EXPECTED)

    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        found = (
            f"a dict with keys {sorted(batch, key=repr)}"
            if isinstance(batch, dict)
            else f"a {type(batch).__name__}"
        )
        raise bad(f"the pickle holds {found}")
    data = batch[b"data"]
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == CIFAR10_IMAGE_BYTES
    ):
        found = (
            f"a {data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else f"a {type(data).__name__}"
        )
        raise bad(f"b'data' is {found}")
    try:
        labels = np.asarray(batch[b"labels"])
    except ValueError as error:  # a ragged list
        raise bad(f"b'labels' is not a list of classes ({error})") from error
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise bad(f"b'labels' is a {labels.dtype} array of shape {labels.shape}")
    if len(data) != len(labels):
        raise bad(f"b'data' holds {len(data)} images but b'labels' holds {len(labels)} labels")
    outside = labels[(labels < 0) | (labels >= len(CIFAR10_CLASSES))]
    if len(outside):
        raise bad(f"b'labels' holds label {outside[0]}, outside the classes 0-9")
    return data, labels.astype(np.int64)


def _archive_batches(archive: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The raw batches ``names`` from the official archive, read in one pass over it."""
    expected = f"the gzip-compressed tar archive from {CIFAR10_SOURCE}"
    wanted = {f"{CIFAR10_BATCHES_DIR}/{name}": name for name in names}
    payloads = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    payloads[wanted[member.name]] = tar.extractfile(member).read()
    except EOFError as error:
        problem = "truncated (the compressed data ends early); download it again"
        raise DataFileError(archive, problem, expected) from error
    except (tarfile.TarError, OSError, zlib.error) as error:
        problem = f"cannot be read as a gzip-compressed tar archive ({error})"
        raise DataFileError(archive, problem, expected) from error
    missing = [member for member, name in wanted.items() if name not in payloads]
    if missing:
        raise DataNotFoundError(
            f"{archive} holds no {missing[0]}; expected the archive from {CIFAR10_SOURCE}, with "
            f"{CIFAR10_BATCHES_DIR}/data_batch_1 to 5 and {CIFAR10_TEST_BATCH}"
        )
    return payloads


def read_cifar10_batches(data_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every official batch as (uint8 [N, 3072], int64 [N]), from the folder or the archive.

    The extracted folder (with all six batches) in any of the folders comes first, then the
    archive.
    """
    names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)

    def present(path: Path) -> bool:
        if path.name == CIFAR10_ARCHIVE:
            return path.is_file()
        return all((path.parent / name).is_file() for name in names)

    found = find_data_file(
        data_dir,
        CIFAR10_FOLDERS,
        (f"{CIFAR10_BATCHES_DIR}/{CIFAR10_TRAIN_BATCHES[0]}", CIFAR10_ARCHIVE),
        CIFAR10_SOURCE,
        names_first=True,
        present=present,
        missing=(
            f"{CIFAR10_BATCHES_DIR}/{CIFAR10_TRAIN_BATCHES[0]} (with data_batch_2..5 and "
            f"{CIFAR10_TEST_BATCH}) or {CIFAR10_ARCHIVE}"
        ),
        download=CIFAR10_ARCHIVE,
        into=f"{data_dir} (extracted or not)",
        instead="the offline 'natural_images_standin' (not CIFAR-10)",
    )
    if found.name == CIFAR10_ARCHIVE:
        payloads = _archive_batches(found, names)
        return {name: read_batch(payloads[name], f"{found}:{name}") for name in names}
    paths = {name: found.parent / name for name in names}
    return {
        name: read_batch(read_file_bytes(path, CIFAR10_BATCH_EXPECTED), str(path))
        for name, path in paths.items()
    }


def _cifar_split(
    batches: list[tuple[np.ndarray, np.ndarray]], n: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    data = torch.from_numpy(np.concatenate([data for data, _ in batches]))
    labels = torch.from_numpy(np.concatenate([labels for _, labels in batches]))
    data, labels = subsample(data, labels, n, seed)  # still uint8: subsample, then convert
    images = data.reshape(-1, 3, 32, 32).to(torch.float32) / 255.0
    return images, labels


@register_dataset("cifar10")
def cifar10(
    data_dir: Path,
    n_train: Annotated[int, Field(ge=1)] | None = None,
    n_test: Annotated[int, Field(ge=1)] | None = None,
    subset_seed: int = 0,
) -> DatasetSplits:
    """CIFAR-10 from the official python batches (50k train / 10k test, 3x32x32 in [0, 1])."""
    batches = read_cifar10_batches(data_dir)
    train = _cifar_split([batches[name] for name in CIFAR10_TRAIN_BATCHES], n_train, subset_seed)
    test = _cifar_split([batches[CIFAR10_TEST_BATCH]], n_test, subset_seed + 1)
    return DatasetSplits(*train, *test, description="CIFAR-10 (python batches)")


# --- offline stand-in --------------------------------------------------------------------

STANDIN_SOURCES = ("china.jpg", "flower.jpg")  # label 0, label 1
# Each photo (427 x 640) is shrunk by one of these factors (area averaging, no aliasing)
# before a 32 x 32 crop is cut out of it: a crop covers 96-192 px of the original photo.
STANDIN_DOWNSCALES = (3, 4, 5, 6)
# Each photo is cut into a 2 x 3 checkerboard of cells (row from, row to, col from, col to,
# as fractions of the photo); every crop lies inside one cell. Train and test take alternate
# cells, so no pixel of a test image was seen in training and both splits show each photo's
# subject and its background.
_HALVES, _THIRDS = ((0.0, 0.5), (0.5, 1.0)), ((0.0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1.0))
STANDIN_CELLS = {
    split: tuple(
        (*rows, *cols)
        for i, rows in enumerate(_HALVES)
        for j, cols in enumerate(_THIRDS)
        if (i + j) % 2 == parity
    )
    for split, parity in (("train", 0), ("test", 1))
}


def _standin_pyramids() -> list[list[torch.Tensor]]:
    """For each photo, its shrunk versions [3, H, W] in [0, 1]."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    by_name = {
        Path(name).name: image for name, image in zip(photos.filenames, photos.images, strict=True)
    }
    pyramids = []
    for name in STANDIN_SOURCES:
        photo = torch.tensor(by_name[name], dtype=torch.float32).permute(2, 0, 1) / 255.0
        levels = []
        for factor in STANDIN_DOWNSCALES:
            size = (photo.shape[1] // factor, photo.shape[2] // factor)
            levels.append(F.interpolate(photo[None], size=size, mode="area")[0].clamp(0, 1))
        pyramids.append(levels)
    return pyramids


def _standin_crops(
    pyramids: list[list[torch.Tensor]], n: int, split: str, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    cells = torch.tensor(STANDIN_CELLS[split])
    labels = torch.arange(n) % len(pyramids)
    labels = labels[torch.randperm(n, generator=generator)]
    levels = torch.randint(len(STANDIN_DOWNSCALES), (n,), generator=generator)
    cell = cells[torch.randint(len(cells), (n,), generator=generator)]  # [n, 4] fractions
    unit = torch.rand(n, 2, generator=generator)  # crop offsets in [0, 1) of the free range
    flips = torch.rand(n, generator=generator) < 0.5
    images = torch.empty(n, 3, 32, 32)
    steps = torch.arange(32)
    for label, pyramid in enumerate(pyramids):
        for level, image in enumerate(pyramid):
            chosen = ((labels == label) & (levels == level)).nonzero().squeeze(1)
            if len(chosen) == 0:
                continue
            height, width = image.shape[1:]
            row_lo, row_hi = (cell[chosen, :2] * height).round().long().unbind(1)
            col_lo, col_hi = (cell[chosen, 2:] * width).round().long().unbind(1)
            rows = row_lo + (unit[chosen, 0] * (row_hi - row_lo - 32 + 1)).long()
            cols = col_lo + (unit[chosen, 1] * (col_hi - col_lo - 32 + 1)).long()
            row_index = (rows[:, None] + steps)[:, :, None]  # [k, 32, 1]
            col_index = (cols[:, None] + steps)[:, None, :]  # [k, 1, 32]
            images[chosen] = image[:, row_index, col_index].permute(1, 0, 2, 3)
    images[flips] = images[flips].flip(-1)
    return images, labels.to(torch.int64)


@register_dataset("natural_images_standin")
def natural_images_standin(
    n_train: Annotated[int, Field(ge=1)] = 2000,
    n_test: Annotated[int, Field(ge=1)] = 500,
    seed: int = 0,
) -> DatasetSplits:
    """STAND-IN for CIFAR-10, not CIFAR-10: 3x32x32 crops of scikit-learn's 2 sample photos.

    Offline and deterministic from ``seed``. Each image is a 32 x 32 crop of ``china.jpg``
    (label 0) or ``flower.jpg`` (label 1), the two photos scikit-learn ships, after the photo
    was shrunk 3x, 4x, 5x or 6x by area averaging; half the crops are mirrored left-right.
    Labels are balanced. Each photo is cut into a 2 x 3 checkerboard; train crops come
    from three alternate cells and test crops from the other three, so train and test share
    no pixel. Use it to exercise colour-image code
    paths (blur baselines, 3-channel encoders) when the CIFAR-10 files are absent; its
    numbers say nothing about CIFAR-10.
    """
    generator = torch.Generator().manual_seed(seed)
    pyramids = _standin_pyramids()
    train = _standin_crops(pyramids, n_train, "train", generator)
    test = _standin_crops(pyramids, n_test, "test", generator)
    return DatasetSplits(
        *train,
        *test,
        description=(
            "STAND-IN for CIFAR-10 (not CIFAR-10): 32x32 crops of scikit-learn's sample "
            "photos china.jpg (label 0) / flower.jpg (label 1)"
        ),
    )
