"""Your own weights, explained without training: a zoo state dict or a scripted encoder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from lfxbench.cli import main
from lfxbench.models.mnist_autoencoder import MnistAutoencoder
from lfxbench.suite import load_suite

SUITE = """\
name: pretrained
device: cpu
seeds: [0]
batch_size: 16
datasets:
  - {{name: mnist_5k, params: {{n_train: 100, n_test: 12}}}}
models:
{models}
methods: [saliency, deep_knn, tracin]
examples: {{n_corpus: 20, n_test: 10}}
metrics:
  - {{name: latent_shift, params: {{fractions: [0.5, 1.0]}}}}
  - similarity_rate
"""
ZOO = "  - {id: ae, name: mnist_autoencoder, dataset: mnist_5k, checkpoint: ae.pt, train: false}"
SCRIPTED = (
    "  - {id: mine, name: scripted_encoder, dataset: mnist_5k, checkpoint: enc.pt, train: false}"
)


def weights(folder: Path, latent_dim: int = 4, seed: int = 0) -> MnistAutoencoder:
    torch.manual_seed(seed)
    model = MnistAutoencoder(latent_dim=latent_dim)
    torch.save(model.state_dict(), folder / "ae.pt")
    torch.jit.save(torch.jit.script(model.encoder), folder / "enc.pt")
    return model


def suite_file(folder: Path, *models: str) -> Path:
    path = folder / "suite.yaml"
    path.write_text(SUITE.format(models="\n".join(models)))
    return path


def run(folder: Path, suite: Path) -> int:
    out, cache = folder / "out", folder / "cache"
    return main(["run", str(suite), "--out", str(out), "--cache-dir", str(cache), "--quiet"])


def test_a_checkpoint_is_explained_as_it_is_and_nothing_trains(tmp_path, capsys, caplog):
    weights(tmp_path)
    with caplog.at_level("INFO", logger="lfxbench"):
        assert run(tmp_path, suite_file(tmp_path, ZOO, SCRIPTED)) == 0
    assert "model ae: loaded from" in caplog.text and "not trained" in caplog.text
    results = pd.read_csv(tmp_path / "out" / "pretrained" / "results.csv")
    assert (results["training_epochs"] == 0).all() and (results["training_seconds"] == 0).all()
    assert not (tmp_path / "cache" / "models").exists()  # nothing trained, nothing cached
    assert "tracin" not in set(results["method"])  # it needs training checkpoints
    shift = results[results.metric == "latent_shift"].set_index("model")["value"]
    # The scripted encoder is the same network: the same explanation and score.
    assert shift["ae"] == pytest.approx(shift["mine"], rel=1e-6)


def test_the_checkpoints_content_is_part_of_the_model_key(tmp_path):
    weights(tmp_path, seed=0)
    first = load_suite(suite_file(tmp_path, ZOO)).cells()[0].model_key
    weights(tmp_path, seed=1)
    assert load_suite(suite_file(tmp_path, ZOO)).cells()[0].model_key != first


def test_a_checkpoint_that_does_not_fit_names_the_keys(tmp_path, capsys):
    weights(tmp_path, latent_dim=7)
    assert run(tmp_path, suite_file(tmp_path, ZOO)) == 2
    err = capsys.readouterr().err
    assert "ae.pt" in err and "the model needs" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("models", "field", "message"),
    [
        (ZOO.replace("ae.pt", "missing.pt"), "models[0].checkpoint", "is not a file"),
        (ZOO.replace(", checkpoint: ae.pt", ""), "models[0]", "train: false needs a `checkpoint:`"),
    ],
)
def test_a_bad_checkpoint_entry_is_refused_at_validation(tmp_path, capsys, models, field, message):
    weights(tmp_path)
    assert main(["validate", str(suite_file(tmp_path, models))]) == 2
    err = capsys.readouterr().err
    assert f": {field}" in err and message in err


def test_a_file_that_is_no_archive_is_named(tmp_path, capsys):
    weights(tmp_path)
    (tmp_path / "enc.pt").write_bytes(b"not an archive")
    assert run(tmp_path, suite_file(tmp_path, SCRIPTED)) == 2
    assert "enc.pt: not a TorchScript" in capsys.readouterr().err


def test_roar_cannot_score_an_encoder_without_a_training_objective(tmp_path, capsys):
    weights(tmp_path)
    suite = suite_file(tmp_path, SCRIPTED)
    suite.write_text(suite.read_text() + "  - roar\n")
    assert main(["validate", str(suite)]) == 2
    assert "'roar' retrains its models, and 'mine'" in capsys.readouterr().err


def test_a_torch_export_archive_is_explained_like_the_network_it_holds(tmp_path):
    model = weights(tmp_path).eval()
    example = torch.rand(3, 1, 28, 28)
    batch = torch.export.Dim("batch")
    exported = torch.export.export(model.encoder, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(exported, tmp_path / "enc.pt2")
    suite = suite_file(tmp_path, ZOO, SCRIPTED.replace("enc.pt", "enc.pt2"))
    assert run(tmp_path, suite) == 0
    results = pd.read_csv(tmp_path / "out" / "pretrained" / "results.csv")
    shift = results[results.metric == "latent_shift"].set_index("model")["value"]
    assert shift["ae"] == pytest.approx(shift["mine"], rel=1e-6)


def test_side_by_side_training_leaves_loaded_models_alone(tmp_path):
    weights(tmp_path)
    suite = suite_file(tmp_path, ZOO, SCRIPTED)
    text = suite.read_text().replace("seeds: [0]", "seeds: [0, 1]\ntrain_side_by_side: true")
    suite.write_text(text)
    assert run(tmp_path, suite) == 0
    assert not (tmp_path / "cache" / "models").exists()  # nothing stacked, nothing trained
