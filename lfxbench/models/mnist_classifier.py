"""The pretext study's supervised reference: the paper's MNIST encoder with a linear head."""

from __future__ import annotations

import torch
from torch import nn

from lfxbench.models.base import ZooModel
from lfxbench.models.mnist_autoencoder import mnist_encoder
from lfxbench.recipe import Recipe
from lfxbench.registry import register_model


@register_model("mnist_classifier")
class MnistClassifier(ZooModel):
    """Paper Table 5 encoder + Linear d_H->10, cross-entropy; the encoder is explained."""

    objectives = ("classification",)

    def __init__(self, latent_dim: int = 4, n_classes: int = 10):
        super().__init__()
        self.encoder = mnist_encoder(latent_dim)
        self.head = nn.Linear(latent_dim, n_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(inputs))

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
        return nn.functional.cross_entropy(self(inputs), labels, reduction="none")
