"""A toy world whose example importance is known exactly.

Training example ``k`` is the unit vector ``e_k``; the model scales each coordinate by a
weight of its own that starts at 0, and one SGD step on ``e_k`` (the suite's recipe) sets
that weight to 1 and leaves the others alone. A model trained on a subset ``S`` therefore
reconstructs coordinate ``k`` exactly when ``k`` was trained on and not at all otherwise,
so the loss of a test input ``x`` is ``Σ_{k not trained} x_k² / d``: minus the loss is
linear in the subset, with coefficients ``x_k²``, which the oracle returns as its scores.
"""

import torch
from torch import nn

from lfxbench import ExampleMethod, ZooModel, register_dataset, register_method, register_model
from lfxbench.datasets.base import DatasetSplits

DIMENSIONS = 64


@register_dataset("toy_unit_vectors")
def toy_unit_vectors(n_test: int = 32, seed: int = 0) -> DatasetSplits:
    """The 64 unit vectors as the training set; dense uniform test vectors."""
    generator = torch.Generator().manual_seed(seed)
    test = torch.rand(n_test, DIMENSIONS, generator=generator)
    train_labels = torch.arange(DIMENSIONS) % 2
    test_labels = torch.arange(n_test) % 2
    return DatasetSplits(torch.eye(DIMENSIONS), train_labels, test, test_labels)


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(DIMENSIONS))

    def forward(self, inputs):
        return inputs * self.weight


@register_model("toy_scaling_autoencoder")
class ToyScalingAutoencoder(ZooModel):
    """Encoder ``x -> w * x`` (``w`` from 0), identity decoder, squared error."""

    def __init__(self):
        super().__init__()
        self.encoder = Scale()

    def loss(self, inputs, labels, recipe):
        return (self.encoder(inputs) - inputs).pow(2).mean(dim=1)


@register_model("toy_mlp_autoencoder")
class ToyMlpAutoencoder(ZooModel):
    """A small non-linear autoencoder on the same data (for stacked-vs-sequential checks)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(DIMENSIONS, 8), nn.Tanh(), nn.Linear(8, 3))
        self.decoder = nn.Linear(3, DIMENSIONS)

    def loss(self, inputs, labels, recipe):
        return (self.decoder(self.encoder(inputs)) - inputs).pow(2).mean(dim=1)


@register_method("toy_example_oracle")
class ToyExampleOracle(ExampleMethod):
    """The true linear effect of training example ``k`` on ``-loss(x)``: ``x_k²``."""

    def fit(self, corpus):
        self.corpus = corpus.inputs

    def attribute(self, inputs, labels):
        return inputs.pow(2) @ self.corpus.pow(2).T
