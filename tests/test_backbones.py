"""Classification backbones as encoders: the pooled features, a library's checkpoint loaded
without its classifier, random or loaded weights explained and nothing trained."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lfxbench.cli import main
from lfxbench.errors import LfxbenchError
from lfxbench.models.backbones import PooledBackbone, import_library, without_classifier
from lfxbench.storage import state_dict_problem

PLUGIN = '''
import torch
from torch import nn
from lfxbench import register_model
from lfxbench.models.backbones import PooledBackbone, without_classifier


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 10)

    def forward(self, inputs):
        return self.fc(self.pool(torch.relu(self.conv(inputs))).flatten(1))


@register_model("tiny_backbone")
class TinyBackbone(PooledBackbone):
    """A ResNet-shaped network of a few weights."""

    def __init__(self):
        super().__init__(*without_classifier(TinyResNet()))
'''

SUITE = """\
name: backbone
device: cpu
seeds: [0]
batch_size: 8
plugins: [tiny_backbone.py]
datasets:
  - {{name: tensor_file, params: {{path: {data}}}}}
models:
  - {{id: net, name: {model}, dataset: tensor_file, train: false{extra}}}
methods: [saliency, random, deep_knn]
examples: {{n_corpus: 10, n_test: 6}}
metrics:
  - {{name: latent_shift, params: {{fractions: [0.5, 1.0]}}}}
  - similarity_rate
"""


class ConvNeXtShaped(nn.Module):
    """The classifier inside a Sequential after a normalisation, as torchvision's ConvNeXt."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 5, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.LayerNorm(5), nn.Linear(5, 7))

    def forward(self, inputs):
        return self.classifier(self.pool(self.features(inputs)))


def test_the_encoder_is_the_network_up_to_its_classifier():
    torch.manual_seed(0)
    network, inputs = ConvNeXtShaped(), torch.rand(4, 3, 9, 9)
    expected = network.classifier[1](network.pool(network.features(inputs)).flatten(1))
    encoder, removed = without_classifier(network)
    assert removed == "classifier.2"
    torch.testing.assert_close(encoder(inputs), expected)


class VitShaped(nn.Module):
    """A submodule named ``encoder`` and a ``heads.head`` classifier, as torchvision's ViT:
    its checkpoint's keys start with ``encoder.`` as this model's own do."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = nn.Sequential(nn.Linear(6, 6), nn.GELU(), nn.LayerNorm(6))
        self.heads = nn.Sequential()
        self.heads.head = nn.Linear(6, 3)

    def forward(self, inputs):
        return self.heads(self.encoder.layers(inputs).mean(1))


@pytest.mark.parametrize(
    ("network", "shape"), [(ConvNeXtShaped, (2, 3, 9, 9)), (VitShaped, (2, 4, 6))]
)
def test_a_whole_network_checkpoint_loads_without_its_classifier(network, shape):
    torch.manual_seed(0)
    saved = network()
    whole = saved.state_dict()  # as the library saves it, classifier included
    reference, _ = without_classifier(copy.deepcopy(saved))
    torch.manual_seed(1)
    model = PooledBackbone(*without_classifier(network()))
    state_dict = model.state_dict_from_checkpoint(whole)
    assert state_dict_problem(state_dict, model) is None
    model.load_state_dict(state_dict)
    inputs = torch.rand(*shape)
    torch.testing.assert_close(model.encoder(inputs), reference(inputs))
    own = model.state_dict()  # a checkpoint of this model passes as it is
    assert model.state_dict_from_checkpoint(own).keys() == own.keys()


def suite_in(folder: Path, model: str = "tiny_backbone", extra: str = "", size: int = 8) -> Path:
    generator = np.random.default_rng(0)
    np.savez(
        folder / "images.npz",
        x_train=generator.random((40, 3, size, size), dtype=np.float32),
        y_train=generator.integers(0, 2, 40),
        x_test=generator.random((12, 3, size, size), dtype=np.float32),
        y_test=generator.integers(0, 2, 12),
    )
    (folder / "tiny_backbone.py").write_text(PLUGIN)
    path = folder / "suite.yaml"
    path.write_text(SUITE.format(data=folder / "images.npz", model=model, extra=extra))
    return path


def run(folder: Path, suite: Path) -> int:
    out, cache = folder / "out", folder / "cache"
    return main(["run", str(suite), "--out", str(out), "--cache-dir", str(cache), "--quiet"])


def test_random_weights_are_explained_and_nothing_trains(tmp_path, caplog):
    with caplog.at_level("INFO", logger="lfxbench"):
        assert run(tmp_path, suite_in(tmp_path)) == 0
    assert "model net: random initial weights of seed 0, not trained" in caplog.text
    results = pd.read_csv(tmp_path / "out" / "backbone" / "results.csv")
    assert set(results["method"]) == {"saliency", "random", "deep_knn"}
    assert results["value"].notna().all() and (results["training_epochs"] == 0).all()
    assert not (tmp_path / "cache" / "models").exists()


def test_a_checkpoint_that_is_not_the_architecture_names_the_keys(tmp_path, capsys):
    torch.save({"conv.weight": torch.zeros(6, 3, 3, 3)}, tmp_path / "other.pt")
    suite = suite_in(tmp_path, extra=", checkpoint: other.pt")
    assert run(tmp_path, suite) == 2
    err = capsys.readouterr().err
    assert "other.pt" in err and "missing: ['encoder.conv.bias']" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("train", [", train: true", ""])  # train defaults to true
def test_a_backbone_cannot_train(tmp_path, capsys, train):
    suite = suite_in(tmp_path)
    suite.write_text(suite.read_text().replace(", train: false", train))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert ": models[0].train" in err and "has no training objective: set `train: false`" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("library", "architecture"),
    [("torchvision", "resnet18"), ("timm", "resnet18"), ("torchvision", "convnext_tiny")],
)
def test_a_library_backbone_runs_with_its_own_checkpoint(tmp_path, library, architecture):
    try:
        module = import_library(library)
    except LfxbenchError as error:
        pytest.skip(str(error))
    if library == "torchvision":
        whole = module.models.get_model(architecture)
    else:
        whole = module.create_model(architecture, pretrained=False)
    torch.save(whole.state_dict(), tmp_path / "weights.pt")  # classifier included
    suite = suite_in(
        tmp_path,
        model=f"{library}_backbone",
        extra=f", checkpoint: weights.pt, params: {{architecture: {architecture}}}",
        size=32,
    )
    assert run(tmp_path, suite) == 0
    results = pd.read_csv(tmp_path / "out" / "backbone" / "results.csv")
    assert results["value"].notna().all()
