"""The paper's datasets: real loaders on tiny files in the official formats, and generators."""

from __future__ import annotations

import gzip
import io
import math
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from lfxbench.datasets import cifar10 as cifar_module
from lfxbench.datasets import dsprites as sprites
from lfxbench.datasets import ecg5000 as ecg
from lfxbench.datasets.dsprites_procedural import (
    SPRITE_UNIT,
    dsprites_procedural,
    generate_dsprites,
    render_dsprites,
)
from lfxbench.datasets.ecg_procedural import (
    ECG5000_NORMAL_FRACTION,
    PR_SEGMENT,
    R_PEAK_INDEX,
    ST_SEGMENT,
    class_counts,
    ecg_procedural,
    simulate_heartbeats,
)
from lfxbench.datasets.fashion_mnist import fashion_mnist
from lfxbench.datasets.mnist import MNIST_FILES
from lfxbench.errors import DataNotFoundError
from lfxbench.params import validate_params
from lfxbench.registry import DATASETS

PAPER_DATASETS = (
    "fashion_mnist",
    "cifar10",
    "natural_images_standin",
    "ecg5000",
    "ecg_procedural",
    "dsprites",
    "dsprites_procedural",
)


def test_every_dataset_is_registered_with_a_description():
    for name in PAPER_DATASETS:
        assert name in DATASETS
    described = {entry.name: entry.description for entry in DATASETS}
    assert all(described[name] for name in PAPER_DATASETS)
    assert "STAND-IN" in described["natural_images_standin"]


def test_sizes_are_validated_like_suite_params():
    _, problems = validate_params(DATASETS.get("ecg_procedural"), {"n_train": 0})
    assert [field for field, _ in problems] == ["n_train"]
    _, problems = validate_params(DATASETS.get("dsprites"), {"n_test": 5}, skip=("data_dir",))
    assert problems == []


# --- Fashion-MNIST ---------------------------------------------------------------------------


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
    path.write_bytes(data)


def write_idx_set(folder, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (20, 28, 28)),
        "train_labels": np.arange(20) % 10,
        "test_images": rng.integers(0, 256, (8, 28, 28)),
        "test_labels": (np.arange(8) * 3) % 10,
    }
    for key, stem in MNIST_FILES.items():
        write_idx(folder / stem, arrays[key], compress=True)
    return arrays


def test_fashion_mnist_reads_its_own_folder_not_mnist_files_at_the_root(tmp_path):
    write_idx_set(tmp_path, seed=1)  # MNIST-named files at the root must not be picked up
    arrays = write_idx_set(tmp_path / "FashionMNIST" / "raw", seed=2)
    data = fashion_mnist(data_dir=tmp_path)
    assert data.train_inputs.shape == (20, 1, 28, 28) and data.train_inputs.dtype == torch.float32
    torch.testing.assert_close(
        data.test_inputs[5, 0], torch.tensor(arrays["test_images"][5] / 255, dtype=torch.float32)
    )
    assert data.test_labels.tolist() == arrays["test_labels"].tolist()
    assert data.train_labels.dtype == torch.int64
    assert len(fashion_mnist(data_dir=tmp_path, n_train=7).train_inputs) == 7


def test_fashion_mnist_missing_file_names_it_and_zalando(tmp_path):
    write_idx_set(tmp_path, seed=1)
    with pytest.raises(DataNotFoundError) as error:
        fashion_mnist(data_dir=tmp_path)
    message = str(error.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "fashion_mnist") in message
    assert "zalandoresearch/fashion-mnist" in message and "ossci" not in message


# --- CIFAR-10 -----------------------------------------------------------------------------------


def cifar_batches(seed: int = 0) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    sizes = {f"data_batch_{i}": 4 for i in range(1, 6)} | {"test_batch": 6}
    return {
        name: {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (size, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, size)),
            b"filenames": [b"x.png"] * size,
        }
        for name, size in sizes.items()
    }


def test_cifar10_reads_the_python_batches(tmp_path):
    batches = cifar_batches()
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    data = cifar_module.cifar10(data_dir=tmp_path)
    assert data.train_inputs.shape == (20, 3, 32, 32) and data.test_inputs.shape == (6, 3, 32, 32)
    assert data.train_inputs.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    row = batches["data_batch_2"][b"data"][1]  # 6th training image: R plane, G plane, B plane
    expected = torch.tensor(row.reshape(3, 32, 32) / 255.0, dtype=torch.float32)
    torch.testing.assert_close(data.train_inputs[5], expected)
    assert data.test_labels.tolist() == [int(v) for v in batches["test_batch"][b"labels"]]
    subset = cifar_module.cifar10(data_dir=tmp_path, n_train=5, n_test=2, subset_seed=3)
    assert subset.train_inputs.shape == (5, 3, 32, 32) and len(subset.test_labels) == 2
    assert subset.fingerprint() == cifar_module.cifar10(tmp_path, 5, 2, 3).fingerprint()


def test_cifar10_reads_the_unextracted_archive(tmp_path):
    batches = cifar_batches(seed=1)
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, batch in batches.items():
            payload = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    data = cifar_module.cifar10(data_dir=tmp_path)
    expected = batches["test_batch"][b"data"][0].reshape(3, 32, 32) / 255.0
    torch.testing.assert_close(data.test_inputs[0], torch.tensor(expected, dtype=torch.float32))


def test_cifar10_missing_file_says_which_and_where(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        cifar_module.cifar10(data_dir=tmp_path)
    message = str(error.value)
    assert "cifar-10-batches-py/data_batch_1" in message and "cifar-10-python.tar.gz" in message
    assert str(tmp_path / "cifar10") in message and "cs.toronto.edu" in message


def test_natural_images_standin_is_a_deterministic_labelled_stand_in():
    data = cifar_module.natural_images_standin(n_train=60, n_test=20, seed=0)
    assert data.train_inputs.shape == (60, 3, 32, 32) and data.test_inputs.shape == (20, 3, 32, 32)
    assert data.train_inputs.dtype == torch.float32 and data.test_labels.dtype == torch.int64
    assert data.train_inputs.min() >= 0 and data.train_inputs.max() <= 1
    assert data.train_inputs.std() > 0.05  # real photo content, not a constant
    assert torch.bincount(data.train_labels).tolist() == [30, 30]
    assert "stand-in" in data.description.lower() and "not CIFAR-10" in data.description
    again = cifar_module.natural_images_standin(n_train=60, n_test=20, seed=0)
    assert again.fingerprint() == data.fingerprint()
    other = cifar_module.natural_images_standin(n_train=60, n_test=20, seed=1)
    assert other.fingerprint() != data.fingerprint()
    # The two photos differ in colour: the label is visible in the data.
    means = [data.train_inputs[data.train_labels == k].mean((0, 2, 3)) for k in (0, 1)]
    assert (means[0] - means[1]).abs().max() > 0.05


# --- ECG5000 ------------------------------------------------------------------------------------


def ecg_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 140)).astype(np.float32), (np.arange(n) % 5 + 1)


def write_ucr_txt(path, series: np.ndarray, labels: np.ndarray) -> None:
    lines = [
        "  " + "  ".join(f"{v:.7e}" for v in [label, *row])
        for row, label in zip(series, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def write_ts(path, series: np.ndarray, labels: np.ndarray) -> None:
    header = [
        "# ECG5000 in sktime format",
        "@problemName ECG5000",
        "@timeStamps false",
        "@missing false",
        "@univariate true",
        "@equalLength true",
        "@seriesLength 140",
        "@classLabel true 1 2 3 4 5",
        "@data",
    ]
    rows = [
        ",".join(repr(float(v)) for v in row) + f":{label}"
        for row, label in zip(series, labels, strict=True)
    ]
    path.write_text("\n".join(header + rows) + "\n")


@pytest.mark.parametrize("fmt", ["txt", "ts"])
def test_ecg5000_reads_ucr_text_and_ts_files(tmp_path, fmt):
    folder = tmp_path / "ECG5000"
    folder.mkdir()
    writer = write_ucr_txt if fmt == "txt" else write_ts
    train, test = ecg_arrays(10, seed=0), ecg_arrays(7, seed=1)
    writer(folder / f"ECG5000_TRAIN.{fmt}", *train)
    writer(folder / f"ECG5000_TEST.{fmt}", *test)
    data = ecg.ecg5000(data_dir=tmp_path)
    assert data.train_inputs.shape == (10, 1, 140) and data.test_inputs.shape == (7, 1, 140)
    assert data.train_inputs.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    np.testing.assert_allclose(data.test_inputs[:, 0].numpy(), test[0], rtol=1e-6)
    assert data.train_labels.tolist() == train[1].tolist()  # original classes, 1 = normal
    binary = ecg.ecg5000(data_dir=tmp_path, binary=True)
    assert binary.train_labels.tolist() == [int(c != 1) for c in train[1]]


def test_ecg5000_missing_file_says_which_and_where(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        ecg.ecg5000(data_dir=tmp_path)
    message = str(error.value)
    assert "ECG5000_TRAIN.txt" in message and str(tmp_path / "ECG5000") in message
    assert "timeseriesclassification.com" in message and "ecg_procedural" in message


def st_level(beats: torch.Tensor) -> torch.Tensor:
    """ST segment minus the isoelectric PR segment, per beat."""
    return beats[:, slice(*ST_SEGMENT)].mean(1) - beats[:, slice(*PR_SEGMENT)].mean(1)


def test_ecg_procedural_beats_have_the_documented_morphologies():
    data = ecg_procedural(n_train=500, n_test=100, seed=0)
    assert data.train_inputs.shape == (500, 1, 140) and data.test_inputs.shape == (100, 1, 140)
    assert data.train_inputs.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    counts = torch.bincount(data.train_labels, minlength=6)[1:].tolist()
    assert counts == class_counts(500, ECG5000_NORMAL_FRACTION) == [292, 52, 52, 52, 52]
    beats, labels = data.train_inputs[:, 0], data.train_labels
    torch.testing.assert_close(beats.mean(1), torch.zeros(500), atol=1e-5, rtol=0)  # z-normalised
    normal = labels == 1
    assert (beats[normal].argmax(1) - R_PEAK_INDEX).abs().max() <= 1
    level = {c: st_level(beats[labels == c]) for c in range(1, 6)}
    assert level[2].min() > level[1].max() - 0.5 and level[2].mean() > level[1].mean() + 0.8
    assert level[3].mean() < level[1].mean() - 0.6
    # T wave (around index 80): upright in normal beats, inverted in class 3 and 4.
    t_wave = {
        c: beats[labels == c, 75:86].mean(1) - beats[labels == c, 31:36].mean(1) for c in level
    }
    assert t_wave[1].min() > 0 and t_wave[3].max() < 0 and t_wave[4].max() < 0

    # Wide QRS in class 4: more samples above half of the R peak.
    def qrs_width(c):
        x = beats[labels == c, 30:55]
        return (x > x.max(1, keepdim=True).values / 2).sum(1).float()

    assert qrs_width(4).mean() > 2 * qrs_width(1).mean()
    # No P wave in classes 4 and 5: the P window (around index 24) sits lower.
    p_wave = {
        c: beats[labels == c, 21:28].mean(1) - beats[labels == c, 31:36].mean(1) for c in level
    }
    assert p_wave[5].mean() < p_wave[1].mean() - 0.3 and p_wave[4].mean() < p_wave[1].mean() - 0.3


def test_ecg_procedural_is_deterministic_and_can_be_balanced():
    first = ecg_procedural(n_train=50, n_test=20, seed=3)
    assert first.fingerprint() == ecg_procedural(n_train=50, n_test=20, seed=3).fingerprint()
    assert first.fingerprint() != ecg_procedural(n_train=50, n_test=20, seed=4).fingerprint()
    balanced = ecg_procedural(n_train=50, n_test=20, normal_fraction=0.2)
    assert torch.bincount(balanced.test_labels)[1:].tolist() == [4] * 5
    raw = ecg_procedural(n_train=50, n_test=20, normalize=False)
    normal = raw.train_inputs[raw.train_labels == 1, 0]
    assert 0.6 < normal.max(1).values.mean() < 1.4  # R amplitude ~1 in model units
    with pytest.raises(ValueError):
        simulate_heartbeats(torch.tensor([0, 6]), torch.Generator())


# --- dSprites -----------------------------------------------------------------------------------


def test_dsprites_reads_the_official_npz_keys(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    classes = sprites.classes_from_index(torch.arange(n) * 17_000).numpy()
    values = sprites.factor_values(torch.from_numpy(classes)).numpy()
    imgs = (rng.random((n, 64, 64)) < 0.1).astype(np.uint8)
    folder = tmp_path / "dsprites"
    folder.mkdir()
    np.savez_compressed(
        folder / sprites.DSPRITES_FILE, imgs=imgs, latents_values=values, latents_classes=classes
    )
    splits, notes = sprites.load_dsprites(tmp_path, n_train=12, n_test=5, subset_seed=2)
    assert splits.train_inputs.shape == (12, 1, 64, 64) and splits.test_inputs.shape == (
        5,
        1,
        64,
        64,
    )
    assert splits.train_inputs.dtype == torch.float32 and splits.train_labels.dtype == torch.int64
    train_index, test_index = sprites.split_indices(n, 12, 5, seed=2)
    assert set(train_index.tolist()).isdisjoint(test_index.tolist())
    np.testing.assert_array_equal(splits.test_inputs[:, 0].numpy(), imgs[test_index.numpy()])
    assert splits.train_labels.tolist() == classes[train_index.numpy(), 1].tolist()
    np.testing.assert_array_equal(notes.test_factors.numpy(), values[test_index.numpy()])
    assert torch.equal(notes.train_masks, splits.train_inputs.bool())
    registered = sprites.dsprites(data_dir=tmp_path, n_train=12, n_test=5, subset_seed=2)
    assert registered.fingerprint() == splits.fingerprint()
    with pytest.raises(ValueError, match="exceeds"):
        sprites.dsprites(data_dir=tmp_path, n_train=40, n_test=1)


def test_read_npz_rows_streams_across_blocks(tmp_path):
    array = np.arange(50 * 6, dtype=np.uint8).reshape(50, 2, 3)
    np.savez_compressed(tmp_path / "a.npz", imgs=array)
    rows = np.array([0, 3, 4, 17, 18, 49])
    got = sprites.read_npz_rows(tmp_path / "a.npz", "imgs", rows, block_rows=4)
    np.testing.assert_array_equal(got, array[rows])


def test_dsprites_missing_file_says_which_and_where(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        sprites.dsprites(data_dir=tmp_path)
    message = str(error.value)
    assert sprites.DSPRITES_FILE in message and str(tmp_path / "dsprites") in message
    assert "dsprites-dataset" in message and "dsprites_procedural" in message


def render(shape, scale=1.0, orientation=0.0, pos_x=0.5, pos_y=0.5) -> torch.Tensor:
    return render_dsprites(
        torch.tensor([shape]),
        torch.tensor([scale]),
        torch.tensor([orientation]),
        torch.tensor([pos_x]),
        torch.tensor([pos_y]),
    )[0]


def centroid(image: torch.Tensor) -> tuple[float, float]:
    rows, cols = image.nonzero().double().mean(0).tolist()
    return rows + 0.5, cols + 0.5  # pixel centres


def test_factor_order_matches_the_official_file():
    assert sprites.N_COMBINATIONS == 737_280
    index = torch.tensor([0, 1, 32, 32 * 32, 32 * 32 * 40, 32 * 32 * 40 * 6, 737_279])
    expected = [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 2, 5, 39, 31, 31],
    ]
    assert sprites.classes_from_index(index).tolist() == expected
    values = sprites.factor_values(sprites.classes_from_index(index))
    assert values[-1].tolist() == pytest.approx([1.0, 3.0, 1.0, 2 * math.pi, 1.0, 1.0])
    assert values[4, 2].item() == pytest.approx(0.6)


def test_scale_grows_the_mask_and_shapes_differ_in_area():
    for shape in range(3):
        areas = [int(render(shape, scale=s).sum()) for s in sprites.FACTOR_VALUES[2].tolist()]
        assert areas == sorted(areas) and len(set(areas)) == 6
        ratio = areas[-1] / areas[0]
        assert 3.2 < ratio < 4.8  # area ~ scale^2 (0.5 -> 1)
    square, ellipse, heart = (int(render(shape).sum()) for shape in range(3))
    assert square > heart > ellipse
    assert abs(square - (2 * SPRITE_UNIT) ** 2) < 0.1 * square  # ~ a 20.6-px square


def test_centroid_follows_position():
    for shape in range(3):
        for pos_x, pos_y in [(0.0, 0.0), (1.0, 0.2), (0.3, 1.0), (0.5, 0.5)]:
            image = render(shape, scale=0.8, orientation=1.0, pos_x=pos_x, pos_y=pos_y)
            row, col = centroid(image)
            assert abs(col - (16 + 32 * pos_x)) < 0.6 and abs(row - (16 + 32 * pos_y)) < 0.6
    # pos_x moves right (columns), pos_y moves down (rows)
    assert centroid(render(0, pos_x=1.0))[1] > centroid(render(0, pos_x=0.0))[1] + 31


def test_rotation_is_counter_clockwise_about_the_centroid():
    for shape in range(3):
        base = render(shape, scale=0.9, orientation=0.4)
        quarter = render(shape, scale=0.9, orientation=0.4 + math.pi / 2)
        assert torch.equal(quarter, torch.rot90(base, 1, dims=(0, 1)))  # CCW on screen
    square = render(0, pos_x=0.23, pos_y=0.71, orientation=0.3)
    assert torch.equal(square, render(0, pos_x=0.23, pos_y=0.71, orientation=0.3 + math.pi / 2))
    heart = render(2)
    assert not torch.equal(heart, render(2, orientation=math.pi))
    assert (heart ^ torch.flip(heart, dims=(0,))).sum() > 20  # lobes up, point down
    assert torch.equal(heart, torch.flip(heart, dims=(1,)))  # left-right symmetric
    ellipse = render(1)
    assert torch.equal(ellipse, render(1, orientation=math.pi))
    cols, rows = ellipse.any(0).sum(), ellipse.any(1).sum()
    assert cols > 1.8 * rows  # major axis along x at orientation 0
    # The official grid includes 2 pi: its first and last orientations draw the same image.
    assert torch.equal(render(2, orientation=0.0), render(2, orientation=2 * math.pi))


def test_every_sprite_on_the_grid_stays_inside_the_image():
    n = 40 * 3
    shape = torch.arange(3).repeat_interleave(40)
    orientation = sprites.FACTOR_VALUES[3].repeat(3)
    for pos in (0.0, 1.0):
        images = render_dsprites(shape, torch.ones(n), orientation, pos, pos)
        border = images[:, 0].sum() + images[:, -1].sum() + images[:, :, 0].sum()
        assert border + images[:, :, -1].sum() == 0


def test_dsprites_procedural_returns_labels_factors_and_masks():
    splits, notes = generate_dsprites(n_train=300, n_test=100, seed=0)
    assert splits.train_inputs.shape == (300, 1, 64, 64) and splits.test_inputs.shape == (
        100,
        1,
        64,
        64,
    )
    assert set(splits.train_inputs.unique().tolist()) == {0.0, 1.0}
    assert splits.test_labels.tolist() == notes.test_factor_classes[:, 1].tolist()
    assert torch.equal(notes.test_masks, splits.test_inputs.bool())
    assert notes.factor_names == sprites.FACTOR_NAMES
    rerendered = render_dsprites(
        notes.test_factor_classes[:, 1], *notes.test_factors[:, 2:].unbind(1)
    )
    assert torch.equal(rerendered, splits.test_inputs[:, 0].bool())
    every = torch.cat([notes.train_factor_classes, notes.test_factor_classes])
    assert len(torch.unique(every, dim=0)) == 400  # distinct combinations, train/test disjoint
    assert 0.035 < splits.train_inputs.mean() < 0.05  # official mean pixel ~0.043
    registered = dsprites_procedural(n_train=300, n_test=100, seed=0)
    assert registered.fingerprint() == splits.fingerprint()
    assert dsprites_procedural(300, 100, seed=1).fingerprint() != splits.fingerprint()


def test_dsprites_background_noise_keeps_the_sprites_and_their_masks():
    clean = dsprites_procedural(n_train=50, n_test=20, seed=0)
    noisy = dsprites_procedural(n_train=50, n_test=20, seed=0, background_noise=0.3)
    assert torch.equal(noisy.test_masks, clean.test_masks)
    assert torch.equal(noisy.test_labels, clean.test_labels)
    sprite, background = noisy.test_inputs[noisy.test_masks], noisy.test_inputs[~noisy.test_masks]
    assert (sprite == 1).all() and background.min() >= 0 and background.max() <= 0.3
    assert background.std() > 0.05  # noise, not a constant grey
    assert noisy.fingerprint() != clean.fingerprint()


def test_cifar_batches_that_would_run_code_are_refused(tmp_path):
    import os
    import pickle

    from lfxbench.datasets.cifar10 import _unpickle

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit(), b"labels": [0]}))
    with open(path, "rb") as handle, pytest.raises(pickle.UnpicklingError, match="refusing"):
        _unpickle(handle)
