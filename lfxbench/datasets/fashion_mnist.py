"""Fashion-MNIST: Zalando's IDX files (same format and file names as MNIST)."""

from __future__ import annotations

from pathlib import Path

from lfxbench.datasets.base import DatasetSplits
from lfxbench.datasets.mnist import load_idx_dataset
from lfxbench.registry import register_dataset

# Not ".": Fashion-MNIST's files carry MNIST's names, so the data directory's root
# (where `mnist` also looks) could silently hold the wrong dataset.
FASHION_MNIST_FOLDERS = ("fashion_mnist", "FashionMNIST/raw", "fashion-mnist", "FashionMNIST")
FASHION_MNIST_SOURCE = (
    "https://github.com/zalandoresearch/fashion-mnist (files at "
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/)"
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@register_dataset("fashion_mnist")
def fashion_mnist(
    data_dir: Path, n_train: int | None = None, n_test: int | None = None, subset_seed: int = 0
) -> DatasetSplits:
    """Fashion-MNIST from Zalando's IDX files (60k train / 10k test, 10 classes of clothing)."""
    hint = (
        f"Download the four *-ubyte.gz files from {FASHION_MNIST_SOURCE} into "
        f"{data_dir / FASHION_MNIST_FOLDERS[0]} (they keep MNIST's file names), or point "
        f"--data-dir (or LFXBENCH_DATA) at the folder above it."
    )
    return load_idx_dataset(
        data_dir,
        FASHION_MNIST_FOLDERS,
        n_train,
        n_test,
        subset_seed,
        "Fashion-MNIST (IDX files)",
        hint,
        source=FASHION_MNIST_SOURCE,
    )
