"""The label-free XAI paper's MNIST convolutional autoencoder (its Table 5)."""

from __future__ import annotations

import torch
from torch import nn

from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe
from lfxbench.registry import register_model


def mnist_encoder(latent_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1),  # 28 -> 14
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),  # 14 -> 7
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=0),  # 7 -> 3
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 3 * 3, 128),
        nn.ReLU(),
        nn.Linear(128, latent_dim),
    )


def mnist_decoder(latent_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(latent_dim, 128),
        nn.ReLU(),
        nn.Linear(128, 32 * 3 * 3),
        nn.ReLU(),
        nn.Unflatten(1, (32, 3, 3)),
        nn.ConvTranspose2d(32, 16, 3, stride=2, output_padding=0),  # 3 -> 7
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),  # 7 -> 14
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),  # 14 -> 28
        nn.Sigmoid(),
    )


def corrupt(inputs: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """The pretext task's input: clean, with Gaussian noise, or with random pixels masked."""
    if recipe.objective == "denoising":
        return inputs + recipe.noise_std * torch.randn_like(inputs)
    if recipe.objective == "inpainting":
        keep = torch.rand_like(inputs) >= recipe.mask_fraction
        return inputs * keep
    return inputs


@register_model("mnist_autoencoder")
class MnistAutoencoder(ZooModel):
    """Conv encoder 1->8->16->32 + Linear 288->128->d_H, mirrored decoder (paper Table 5)."""

    objectives = ("reconstruction", "denoising", "inpainting")

    def __init__(self, latent_dim: int = 4):
        super().__init__()
        self.encoder = mnist_encoder(latent_dim)
        self.decoder = mnist_decoder(latent_dim)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(inputs))

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
        reconstruction = self(corrupt(inputs, recipe))
        return (reconstruction - inputs).pow(2).flatten(1).mean(dim=1)
