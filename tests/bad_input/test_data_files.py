"""Bad real-data files: each is an LfxbenchError that names the file and what was expected.

Every case writes one broken file (and valid companions) into a scratch data directory and
calls the registered loader on it; never a traceback, never a silently wrong dataset.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from lfxbench.cli import main
from lfxbench.datasets import dsprites as sprites
from lfxbench.datasets.cifar10 import cifar10
from lfxbench.datasets.ecg5000 import ecg5000
from lfxbench.datasets.fashion_mnist import fashion_mnist
from lfxbench.datasets.mnist import MNIST_FILES, mnist
from lfxbench.errors import LfxbenchError

# --- valid files in each official format, tiny ------------------------------------------------


def idx_bytes(array: np.ndarray, magic_type: int = 0x08, shape: tuple[int, ...] | None = None):
    """An IDX file; ``shape`` overrides the header's dimensions (a header that lies)."""
    shape = array.shape if shape is None else shape
    header = struct.pack(">BBBB", 0, 0, magic_type, len(shape))
    header += b"".join(struct.pack(">I", size) for size in shape)
    return header + array.astype(np.uint8).tobytes()


RNG = np.random.default_rng(0)
MNIST_ARRAYS = {
    "train_images": RNG.integers(0, 256, (6, 28, 28)),
    "train_labels": np.arange(6) % 10,
    "test_images": RNG.integers(0, 256, (4, 28, 28)),
    "test_labels": np.arange(4) % 10,
}
TRAIN_IMAGES = MNIST_FILES["train_images"]
TRAIN_LABELS = MNIST_FILES["train_labels"]


def mnist_files(bad: dict[str, bytes], folder: str = "mnist") -> Callable[[Path], None]:
    """The four MNIST files, gzipped, in ``folder``; ``bad`` replaces some (file name -> bytes,
    the name with or without ``.gz``)."""

    def build(data_dir: Path) -> None:
        target = data_dir / folder
        target.mkdir(parents=True)
        for key, stem in MNIST_FILES.items():
            name = next((name for name in bad if name.split(".")[0] == stem), None)
            if name is None:
                (target / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(MNIST_ARRAYS[key])))
            else:
                (target / name).write_bytes(bad[name])

    return build


GOOD_TRAIN_IMAGES = idx_bytes(MNIST_ARRAYS["train_images"])
GOOD_TRAIN_IMAGES_GZ = gzip.compress(GOOD_TRAIN_IMAGES)


def cifar_batch(size: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"data": rng.integers(0, 256, (size, 3072), dtype=np.uint8),
        b"labels": rng.integers(0, 10, size).tolist(),
    }


CIFAR_BATCHES = {f"data_batch_{i}": cifar_batch(2, i) for i in range(1, 6)}
CIFAR_BATCHES["test_batch"] = cifar_batch(3, 6)
BAD_BATCH = "data_batch_3"


def cifar_folder(bad: bytes) -> Callable[[Path], None]:
    """The extracted batches in ``cifar10/cifar-10-batches-py``, ``data_batch_3`` replaced."""

    def build(data_dir: Path) -> None:
        folder = data_dir / "cifar10" / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for name, batch in CIFAR_BATCHES.items():
            payload = bad if name == BAD_BATCH else pickle.dumps(batch, protocol=2)
            (folder / name).write_bytes(payload)

    return build


def cifar_archive_bytes(skip: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, batch in CIFAR_BATCHES.items():
            if name == skip:
                continue
            payload = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def cifar_archive(payload: bytes) -> Callable[[Path], None]:
    def build(data_dir: Path) -> None:
        (data_dir / "cifar-10-python.tar.gz").write_bytes(payload)

    return build


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def ecg_rows(n: int, length: int = 140, first: int = 1) -> str:
    rng = np.random.default_rng(n)
    labels = (np.arange(n) % 5 + first).astype(float)
    table = np.column_stack([labels, rng.normal(size=(n, length))])
    return "\n".join("  ".join(f"{value:.7e}" for value in row) for row in table) + "\n"


def ts_file(rows: list[str]) -> bytes:
    return ("@problemName ECG5000\n@seriesLength 140\n@data\n" + "\n".join(rows) + "\n").encode()


def ts_row(label: int = 1, channels: int = 1, length: int = 140) -> str:
    channel = ",".join("0.5" for _ in range(length))
    return ":".join([channel] * channels) + f":{label}"


def ecg_files(name: str, payload: bytes) -> Callable[[Path], None]:
    """A valid ``ECG5000_TEST.txt`` and a broken training file ``name``."""

    def build(data_dir: Path) -> None:
        folder = data_dir / "ECG5000"
        folder.mkdir()
        (folder / "ECG5000_TEST.txt").write_text(ecg_rows(4))
        (folder / name).write_bytes(payload)

    return build


SPRITE_CLASSES = sprites.classes_from_index(torch.arange(8) * 17_000).numpy()
SPRITE_ARRAYS = {
    "imgs": (np.random.default_rng(1).random((8, 64, 64)) < 0.1).astype(np.uint8),
    "latents_classes": SPRITE_CLASSES,
    "latents_values": sprites.factor_values(torch.from_numpy(SPRITE_CLASSES)).numpy(),
}


def npz_bytes(**replaced: np.ndarray | None) -> bytes:
    """The tiny official-format npz; a key replaced by ``None`` is left out."""
    arrays = {key: replaced.get(key, value) for key, value in SPRITE_ARRAYS.items()}
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, **{key: value for key, value in arrays.items() if value is not None}
    )
    return buffer.getvalue()


def sprites_file(payload: bytes) -> Callable[[Path], None]:
    def build(data_dir: Path) -> None:
        (data_dir / "dsprites").mkdir()
        (data_dir / "dsprites" / sprites.DSPRITES_FILE).write_bytes(payload)

    return build


def npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, SPRITE_ARRAYS["imgs"])
    return buffer.getvalue()


def corrupted(payload: bytes) -> bytes:
    """``payload`` with a run of bytes in its middle overwritten."""
    middle = len(payload) // 2
    return payload[:middle] + bytes(64) + payload[middle + 64 :]


# --- the cases ------------------------------------------------------------------------------

LOADERS = {
    "mnist": lambda data_dir: mnist(data_dir=data_dir),
    "fashion_mnist": lambda data_dir: fashion_mnist(data_dir=data_dir),
    "cifar10": lambda data_dir: cifar10(data_dir=data_dir),
    "ecg5000": lambda data_dir: ecg5000(data_dir=data_dir),
    "dsprites": lambda data_dir: sprites.dsprites(data_dir=data_dir, n_train=3, n_test=2),
}
NOT_GZIP = b"\x00\x01 plain bytes, no gzip header"
RANDOM = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
GZ = f"{TRAIN_IMAGES}.gz"

# (id, dataset, build the data directory, the bad file's name, words the message must hold)
CASES = [
    # IDX (MNIST and Fashion-MNIST share one reader)
    ("idx-empty-gz", "mnist", mnist_files({GZ: b""}), GZ, ["empty", "gzip-compressed IDX"]),
    ("idx-empty", "mnist", mnist_files({TRAIN_IMAGES: b""}), TRAIN_IMAGES, ["empty", "IDX"]),
    (
        "idx-truncated-data",
        "mnist",
        mnist_files({GZ: gzip.compress(GOOD_TRAIN_IMAGES[:1000])}),
        GZ,
        ["6 images of 28x28", "984 bytes", "truncated"],
    ),
    (
        "idx-truncated-header",
        "mnist",
        mnist_files({TRAIN_IMAGES: GOOD_TRAIN_IMAGES[:9]}),
        TRAIN_IMAGES,
        ["header", "truncated"],
    ),
    (
        "idx-wrong-magic",
        "mnist",
        mnist_files({GZ: gzip.compress(b"PK\x03\x04" + GOOD_TRAIN_IMAGES[4:])}),
        GZ,
        ["magic number 0x504b0304", "0x00000803"],
    ),
    (
        "idx-float-magic",
        "mnist",
        mnist_files({GZ: gzip.compress(idx_bytes(MNIST_ARRAYS["train_images"], 0x0D))}),
        GZ,
        ["magic number 0x00000d03", "unsigned bytes"],
    ),
    (
        "idx-dims-disagree-with-size",
        "mnist",
        mnist_files(
            {GZ: gzip.compress(idx_bytes(MNIST_ARRAYS["train_images"], shape=(5, 28, 28)))}
        ),
        GZ,
        ["5 images of 28x28", "4704 bytes", "more"],
    ),
    (
        "idx-not-28x28",
        "mnist",
        mnist_files({GZ: gzip.compress(idx_bytes(np.zeros((6, 32, 32))))}),
        GZ,
        ["6 images of 32x32", "28x28"],
    ),
    (
        "idx-images-where-labels-belong",
        "mnist",
        mnist_files({f"{TRAIN_LABELS}.gz": GOOD_TRAIN_IMAGES_GZ}),
        f"{TRAIN_LABELS}.gz",
        ["6 images of 28x28", "labels"],
    ),
    (
        "idx-image-and-label-counts-differ",
        "mnist",
        mnist_files({f"{TRAIN_LABELS}.gz": gzip.compress(idx_bytes(np.arange(5) % 10))}),
        TRAIN_LABELS,
        [TRAIN_IMAGES, "6 images", "5 labels"],
    ),
    (
        "idx-labels-out-of-range",
        "mnist",
        mnist_files({f"{TRAIN_LABELS}.gz": gzip.compress(idx_bytes(np.arange(6) * 40))}),
        TRAIN_LABELS,
        ["label 200", "0-9"],
    ),
    ("gz-not-gzip", "mnist", mnist_files({GZ: NOT_GZIP}), GZ, ["not a gzip file", "ossci"]),
    (
        "gz-truncated",
        "mnist",
        mnist_files({GZ: GOOD_TRAIN_IMAGES_GZ[:-100]}),
        GZ,
        ["gzip", "truncated"],
    ),
    (
        "gz-corrupt",
        "mnist",
        mnist_files({GZ: corrupted(GOOD_TRAIN_IMAGES_GZ)}),
        GZ,
        ["gzip", "corrupt"],
    ),
    (
        "idx-gzipped-without-gz-name",
        "mnist",
        mnist_files({TRAIN_IMAGES: GOOD_TRAIN_IMAGES_GZ}),
        TRAIN_IMAGES,
        ["gzip-compressed", ".gz"],
    ),
    (
        "fashion-gz-not-gzip",
        "fashion_mnist",
        mnist_files({GZ: NOT_GZIP}, folder="fashion_mnist"),
        GZ,
        ["not a gzip file", "zalandoresearch/fashion-mnist"],
    ),
    # CIFAR-10 python batches
    ("cifar-random-bytes", "cifar10", cifar_folder(RANDOM), BAD_BATCH, ["CIFAR-10 python batch"]),
    ("cifar-empty", "cifar10", cifar_folder(b""), BAD_BATCH, ["empty", "CIFAR-10 python batch"]),
    (
        "cifar-refused-by-allow-list",
        "cifar10",
        cifar_folder(pickle.dumps({b"data": RunsCode(), b"labels": [0]})),
        BAD_BATCH,
        ["refusing", "system", "CIFAR-10 python batch"],
    ),
    (
        "cifar-not-a-dict",
        "cifar10",
        cifar_folder(pickle.dumps([1, 2, 3], protocol=2)),
        BAD_BATCH,
        ["a list", "b'data'"],
    ),
    (
        "cifar-no-labels",
        "cifar10",
        cifar_folder(pickle.dumps({b"data": CIFAR_BATCHES["data_batch_1"][b"data"]})),
        BAD_BATCH,
        ["keys [b'data']", "b'labels'"],
    ),
    (
        "cifar-str-keys",
        "cifar10",
        cifar_folder(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})),
        BAD_BATCH,
        ["keys ['data', 'labels']", "b'data'"],
    ),
    (
        "cifar-wrong-image-size",
        "cifar10",
        cifar_folder(pickle.dumps({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]})),
        BAD_BATCH,
        ["(2, 1024)", "[N, 3072]"],
    ),
    (
        "cifar-not-uint8",
        "cifar10",
        cifar_folder(pickle.dumps({b"data": np.zeros((2, 3072)), b"labels": [0, 1]})),
        BAD_BATCH,
        ["float64", "uint8"],
    ),
    (
        "cifar-counts-differ",
        "cifar10",
        cifar_folder(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})),
        BAD_BATCH,
        ["2 images", "1 labels"],
    ),
    (
        "cifar-labels-out-of-range",
        "cifar10",
        cifar_folder(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]})),
        BAD_BATCH,
        ["label 10", "0-9"],
    ),
    (
        "cifar-archive-not-gzip",
        "cifar10",
        cifar_archive(NOT_GZIP),
        "cifar-10-python.tar.gz",
        ["not a gzip file", "cs.toronto.edu"],
    ),
    (
        "cifar-archive-truncated",
        "cifar10",
        cifar_archive(cifar_archive_bytes()[:-200]),
        "cifar-10-python.tar.gz",
        ["truncated", "cifar-10-python.tar.gz"],
    ),
    (
        "cifar-archive-missing-a-batch",
        "cifar10",
        cifar_archive(cifar_archive_bytes(skip="test_batch")),
        "cifar-10-python.tar.gz",
        ["holds no cifar-10-batches-py/test_batch"],
    ),
    # ECG5000 text files
    (
        "ecg-binary",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.txt", RANDOM),
        "ECG5000_TRAIN.txt",
        ["binary", "text"],
    ),
    (
        "ecg-not-utf8",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.txt", "1 0.5 caf\xe9\n".encode("latin-1")),
        "ECG5000_TRAIN.txt",
        ["UTF-8", "line 1"],
    ),
    ("ecg-empty", "ecg5000", ecg_files("ECG5000_TRAIN.txt", b""), "ECG5000_TRAIN.txt", ["empty"]),
    (
        "ecg-non-numeric",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.txt", (ecg_rows(2) + "1 0.5 oops 0.25\n").encode()),
        "ECG5000_TRAIN.txt",
        ["line 3", "'oops'", "number"],
    ),
    (
        "ecg-ragged",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.txt", (ecg_rows(3) + ecg_rows(1, length=120)).encode()),
        "ECG5000_TRAIN.txt",
        ["line 4", "121 values", "141"],
    ),
    (
        "ecg-wrong-length",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.txt", ecg_rows(3, length=96).encode()),
        "ECG5000_TRAIN.txt",
        ["96 samples", "140"],
    ),
    (
        "ecg-labels-outside-1-5",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.txt", ecg_rows(6, first=0).encode()),
        "ECG5000_TRAIN.txt",
        ["label 0", "1-5"],
    ),
    (
        "ecg-fractional-labels",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.txt", b"1.5 " + b" ".join([b"0.1"] * 140) + b"\n"),
        "ECG5000_TRAIN.txt",
        ["line 1", "1.5", "whole"],
    ),
    (
        "ecg-not-finite",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.txt", b"1 nan " + b" ".join([b"0.1"] * 139) + b"\n"),
        "ECG5000_TRAIN.txt",
        ["line 1", "finite"],
    ),
    (
        "ts-non-numeric",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.ts", ts_file([ts_row(), ts_row().replace("0.5", "x", 1)])),
        "ECG5000_TRAIN.ts",
        ["line 5", "'x'", "number"],
    ),
    (
        "ts-no-label",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.ts", ts_file([ts_row(), "0.1,0.2"])),
        "ECG5000_TRAIN.ts",
        ["line 5", "v1,v2,...:label"],
    ),
    (
        "ts-ragged",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.ts", ts_file([ts_row(), ts_row(length=139)])),
        "ECG5000_TRAIN.ts",
        ["line 5", "139", "140"],
    ),
    (
        "ts-two-channels",
        "ecg5000",
        ecg_files("ECG5000_TRAIN.ts", ts_file([ts_row(channels=2)] * 2)),
        "ECG5000_TRAIN.ts",
        ["2 channels", "one"],
    ),
    # dSprites npz
    (
        "npz-not-a-zip",
        "dsprites",
        sprites_file(RANDOM),
        sprites.DSPRITES_FILE,
        ["not a zip", "npz"],
    ),
    ("npz-empty", "dsprites", sprites_file(b""), sprites.DSPRITES_FILE, ["empty", "npz"]),
    (
        "npz-is-an-npy",
        "dsprites",
        sprites_file(npy_bytes()),
        sprites.DSPRITES_FILE,
        ["not a zip", "npz"],
    ),
    (
        "npz-truncated",
        "dsprites",
        sprites_file(npz_bytes()[:-300]),
        sprites.DSPRITES_FILE,
        ["not a zip", "truncated"],
    ),
    (
        "npz-corrupt-member",
        "dsprites",
        sprites_file(corrupted(npz_bytes())),
        sprites.DSPRITES_FILE,
        ["corrupt"],
    ),
    (
        "npz-no-imgs",
        "dsprites",
        sprites_file(npz_bytes(imgs=None)),
        sprites.DSPRITES_FILE,
        ["lacks ['imgs']", "official dSprites"],
    ),
    (
        "npz-no-latents-classes",
        "dsprites",
        sprites_file(npz_bytes(latents_classes=None)),
        sprites.DSPRITES_FILE,
        ["lacks ['latents_classes']"],
    ),
    (
        "npz-imgs-not-64x64",
        "dsprites",
        sprites_file(npz_bytes(imgs=np.zeros((8, 32, 32), np.uint8))),
        sprites.DSPRITES_FILE,
        ["imgs", "(8, 32, 32)", "[N, 64, 64]"],
    ),
    (
        "npz-latents-classes-wrong-width",
        "dsprites",
        sprites_file(npz_bytes(latents_classes=SPRITE_CLASSES[:, :5])),
        sprites.DSPRITES_FILE,
        ["latents_classes", "(8, 5)", "[N, 6]"],
    ),
    (
        "npz-counts-differ",
        "dsprites",
        sprites_file(npz_bytes(imgs=SPRITE_ARRAYS["imgs"][:7])),
        sprites.DSPRITES_FILE,
        ["imgs", "(7, 64, 64)", "8"],
    ),
    (
        "npz-class-out-of-range",
        "dsprites",
        sprites_file(npz_bytes(latents_classes=SPRITE_CLASSES + np.array([0, 3, 0, 0, 0, 0]))),
        sprites.DSPRITES_FILE,
        ["latents_classes", "shape", "0-2"],
    ),
    (
        "npz-pickled-member",
        "dsprites",
        sprites_file(npz_bytes(latents_values=np.array([None] * 8))),
        sprites.DSPRITES_FILE,
        ["latents_values", "Object arrays"],
    ),
]


@pytest.mark.parametrize(
    ("dataset", "build", "file_name", "wording"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_bad_data_file_is_an_error_naming_it(tmp_path, dataset, build, file_name, wording):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    build(data_dir)
    with pytest.raises(LfxbenchError) as error:
        LOADERS[dataset](data_dir)
    message = str(error.value)
    assert str(data_dir) in message and file_name in message, message
    assert "\n" not in message, message  # one paragraph
    for words in wording:
        assert words in message, f"{words!r} not in {message!r}"
    assert "expected" in message or "holds no" in message, message


def test_the_cli_reports_a_bad_file_without_a_traceback(tiny_suite, tmp_path, capsys, monkeypatch):
    embedded = "- name: mnist_5k\n    params: {n_train: 200, n_test: 24}"
    tiny_suite.write_text(
        tiny_suite.read_text().replace(embedded, "- name: mnist\n    id: mnist_5k")
    )
    data_dir = tmp_path / "data"
    mnist_files({GZ: NOT_GZIP})(data_dir)
    # Anything the run wrote by a default, relative path would land in this empty folder.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    for variable in ("LFXBENCH_DATA", "LFXBENCH_CACHE"):
        monkeypatch.delenv(variable, raising=False)
    argv = ["run", str(tiny_suite), "--out", str(tmp_path / "runs"), "--quiet"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--data-dir", str(data_dir)]

    assert main(argv) == 2

    out, err = capsys.readouterr()
    first_line = err.splitlines()[0]
    assert first_line.startswith("lfxbench: error:"), err
    assert str(data_dir / "mnist" / GZ) in first_line and "not a gzip file" in first_line
    assert "Traceback" not in out + err
    assert not any(workdir.iterdir())
    assert not (tmp_path / "runs" / "tiny" / "results.csv").exists()
