"""lfxbench from Python: evaluate an encoder of your own, run a suite, read your tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lfxbench
from lfxbench.cli import main
from lfxbench.datasets.tensor_file import tensor_file


def small_encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 3))


def test_evaluate_explains_your_encoder_on_your_tensors_and_reuses_the_cache(tmp_path):
    encoder, inputs = small_encoder(), torch.rand(40, 1, 8, 8)
    labels = torch.randint(0, 2, (40,))
    arguments = dict(
        methods=["saliency", "random", "deep_knn"],
        metrics=["latent_shift", "similarity_rate"],
        out=tmp_path / "runs",
        cache_dir=tmp_path / "cache",
        device="cpu",
    )
    results = lfxbench.evaluate(encoder, inputs, labels, **arguments)
    assert set(zip(results["method"], results["metric"], strict=True)) == {
        ("saliency", "latent_shift"),
        ("random", "latent_shift"),
        ("deep_knn", "similarity_rate"),
    }
    assert results["value"].notna().all() and (results["training_epochs"] == 0).all()
    explanations = sorted((tmp_path / "cache" / "attributions").glob("*.pt"))
    again = lfxbench.evaluate(encoder, inputs, labels, **arguments)
    assert sorted((tmp_path / "cache" / "attributions").glob("*.pt")) == explanations
    assert again["value"].tolist() == results["value"].tolist()
    assert encoder.training  # left in the mode it was given in


def test_run_takes_a_shipped_suite_with_overrides_and_returns_its_leaderboard(tmp_path):
    finished = lfxbench.run(
        "smoke",
        overrides=[
            "seeds=[0]",
            "models.0.recipe.epochs=1",
            "datasets.0.params.n_train=200",
            "datasets.0.params.n_test=40",
            "examples.n_corpus=20",
            "examples.n_test=10",
        ],
        out=tmp_path / "runs",
        cache_dir=tmp_path / "cache",
        device="cpu",
    )
    assert finished.leaderboard().startswith("# smoke")
    assert set(finished.results["seed"]) == {0} and len(finished.results) == len(finished.records)


def test_a_suite_may_be_a_dict(tmp_path):
    finished = lfxbench.run(
        {
            "name": "from_python",
            "device": "cpu",
            "datasets": [{"name": "mnist_5k", "params": {"n_train": 100, "n_test": 20}}],
            "models": [
                {
                    "id": "ae",
                    "name": "mnist_autoencoder",
                    "dataset": "mnist_5k",
                    "recipe": {"epochs": 1},
                }
            ],
            "methods": ["saliency"],
            "metrics": [{"name": "latent_shift", "params": {"fractions": [1.0]}}],
        },
        out=tmp_path / "runs",
        cache_dir=tmp_path / "cache",
    )
    assert finished.run_dir == tmp_path / "runs" / "from_python"
    assert finished.results["metric"].tolist() == ["latent_shift"]


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_a_tensor_file_gives_its_splits_labels_optional(tmp_path, suffix):
    arrays = {
        "x_train": np.random.rand(6, 3).astype(np.float32),
        "x_test": np.zeros((2, 3), np.float32),
    }
    arrays["y_test"] = np.array([1, 0])
    path = tmp_path / f"data{suffix}"
    if suffix == ".npz":
        np.savez(path, **arrays)
    else:
        torch.save({name: torch.from_numpy(value) for name, value in arrays.items()}, path)
    data = tensor_file(path)
    assert data.train_inputs.shape == (6, 3) and data.test_labels.tolist() == [1, 0]
    assert data.train_labels.tolist() == [0] * 6  # absent: evaluation labels only


def test_a_bad_tensor_file_is_named_with_what_it_should_hold(tmp_path, capsys):
    (tmp_path / "data.npz").write_bytes(b"garbage")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: mine\ndevice: cpu\n"
        f"datasets: [{{id: d, name: tensor_file, params: {{path: {tmp_path / 'data.npz'}}}}}]\n"
        "models: [{id: ae, name: mnist_autoencoder, dataset: d, recipe: {epochs: 1}}]\n"
        "methods: [saliency]\nmetrics: [latent_shift]\n"
    )
    assert (
        main(["run", str(suite), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "data.npz: cannot be read" in err and "x_train and x_test" in err and "Traceback" not in err
    )


def write_images(folder, colours, size=(6, 5)):
    from PIL import Image

    for label, colour in colours.items():
        (folder / label).mkdir(parents=True)
        for index in range(4):
            Image.new("RGB", size, tuple(c * (index + 1) // 4 for c in colour)).save(
                folder / label / f"{index}.png"
            )


def test_an_image_folder_gives_one_label_per_class_folder(tmp_path):
    from lfxbench.datasets.image_folder import image_folder

    write_images(tmp_path, {"blue": (0, 0, 255), "red": (255, 0, 0)})
    data = image_folder(tmp_path, size=(4, 4), test_fraction=0.25)
    assert data.train_inputs.shape == (6, 3, 4, 4) and data.test_inputs.shape == (2, 3, 4, 4)
    assert data.train_inputs.min() >= 0.0 and data.train_inputs.max() <= 1.0
    red = data.train_labels == 1  # classes in sorted order: blue 0, red 1
    assert (data.train_inputs[red][:, 0] > 0).all() and (data.train_inputs[red][:, 2] == 0).all()
    grey = image_folder(tmp_path, grayscale=True, mean=[0.5], std=[0.25])
    assert grey.train_inputs.shape[1:] == (1, 5, 6)


def test_an_unreadable_image_is_named(tmp_path):
    from lfxbench.datasets.image_folder import image_folder
    from lfxbench.errors import DataFileError

    write_images(tmp_path, {"blue": (0, 0, 255)})
    (tmp_path / "blue" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataFileError, match=r"broken\.png: cannot be read"):
        image_folder(tmp_path)
