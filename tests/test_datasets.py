from __future__ import annotations

import gzip
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch

from lfxbench.datasets.base import DatasetSplits
from lfxbench.datasets.mnist import MNIST_FILES, mnist, mnist_5k, read_idx
from lfxbench.errors import DataNotFoundError


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    arrays = {
        "train_images": rng.integers(0, 256, (30, 28, 28)),
        "train_labels": np.arange(30) % 10,
        "test_images": rng.integers(0, 256, (12, 28, 28)),
        "test_labels": np.arange(12) % 10,
    }
    for index, (key, stem) in enumerate(MNIST_FILES.items()):
        write_idx(folder / stem, arrays[key], compress=index % 2 == 0)
    return tmp_path, arrays


def test_read_idx_known_answer(tmp_path):
    array = np.arange(24).reshape(2, 3, 4)
    write_idx(tmp_path / "x", array, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), array)


def test_mnist_reads_idx_files_plain_or_gzipped(fake_mnist):
    data_dir, arrays = fake_mnist
    data = mnist(data_dir=data_dir)
    assert data.train_inputs.shape == (30, 1, 28, 28) and data.test_inputs.shape == (12, 1, 28, 28)
    assert data.train_inputs.dtype == torch.float32
    torch.testing.assert_close(
        data.train_inputs[3, 0], torch.tensor(arrays["train_images"][3] / 255, dtype=torch.float32)
    )
    assert data.test_labels.tolist() == arrays["test_labels"].tolist()
    subset = mnist(data_dir=data_dir, n_train=10, n_test=5)
    assert len(subset.train_inputs) == 10 and len(subset.test_labels) == 5


def test_missing_file_says_which_and_where(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        mnist(data_dir=tmp_path)
    message = str(error.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path) in message
    assert "mnist_5k" in message


def test_embedded_mnist_is_deterministic_stratified_and_disjoint():
    first, second = mnist_5k(n_train=500, n_test=200), mnist_5k(n_train=500, n_test=200)
    assert first.fingerprint() == second.fingerprint()
    assert torch.bincount(first.test_labels).tolist() == [20] * 10
    assert first.train_inputs.min() >= 0 and first.train_inputs.max() <= 1
    train = {row.numpy().tobytes() for row in first.train_inputs.flatten(1)}
    assert not any(row.numpy().tobytes() in train for row in first.test_inputs.flatten(1))
    assert mnist_5k(n_train=500, n_test=200, split_seed=1).fingerprint() != first.fingerprint()


def test_a_replaced_split_gets_its_own_fingerprint():
    inputs, labels = torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long)
    splits = DatasetSplits(inputs, labels, inputs, labels)
    before = splits.fingerprint()
    assert replace(splits, train_inputs=inputs + 1).fingerprint() != before
