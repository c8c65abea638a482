"""A toy world for ROAR: only features 0-3 of 16 carry signal; the rest are always 0."""

import torch
from torch import nn

from lfxbench import FeatureMethod, ZooModel, register_dataset, register_method, register_model
from lfxbench.datasets.base import DatasetSplits

INFORMATIVE = 4


@register_dataset("toy_signal")
def toy_signal(n_train: int = 512, n_test: int = 128, seed: int = 0) -> DatasetSplits:
    """16 features, the first 4 uniform in [0, 1], the others 0 (the black baseline)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.zeros(n_train + n_test, 16)
    inputs[:, :INFORMATIVE] = torch.rand(n_train + n_test, INFORMATIVE, generator=generator)
    labels = torch.zeros(n_train + n_test, dtype=torch.long)
    return DatasetSplits(inputs[:n_train], labels[:n_train], inputs[n_train:], labels[n_train:])


@register_model("toy_linear_autoencoder")
class ToyLinearAutoencoder(ZooModel):
    """Linear 16 -> 4 -> 16 autoencoder with a mean squared reconstruction loss."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(16, INFORMATIVE)
        self.decoder = nn.Linear(INFORMATIVE, 16)

    def loss(self, inputs, labels, recipe):
        return (self.decoder(self.encoder(inputs)) - inputs).pow(2).mean(dim=1)


@register_method("toy_oracle")
class ToyOracle(FeatureMethod):
    """Knows the truth: the informative features first."""

    def attribute(self, inputs, baselines):
        scores = torch.zeros_like(inputs)
        scores[:, :INFORMATIVE] = 1.0
        return scores
