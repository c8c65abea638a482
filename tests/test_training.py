from __future__ import annotations

import pytest
import torch

from lfxbench.models.mnist_autoencoder import MnistAutoencoder, corrupt
from lfxbench.recipe import Recipe
from lfxbench.training import train_model


@pytest.fixture(scope="module")
def digits():
    from lfxbench.datasets.mnist import mnist_5k

    data = mnist_5k(n_train=300, n_test=10)
    return data.train_inputs, data.train_labels


def test_autoencoder_shapes_match_the_paper():
    model = MnistAutoencoder(latent_dim=4).eval()
    images = torch.rand(5, 1, 28, 28)
    assert model.encoder(images).shape == (5, 4)
    reconstruction = model(images)
    assert reconstruction.shape == images.shape
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    # The encoder's Linear 288 -> 128 -> 4 follows a 32 x 3 x 3 feature map.
    linears = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(288, 128), (128, 4)]
    assert set(model.encoder_parameters()) < set(model.parameters())


def test_pretext_corruptions():
    images = torch.rand(4, 1, 28, 28)
    assert torch.equal(corrupt(images, Recipe(objective="reconstruction")), images)
    noisy = corrupt(images, Recipe(objective="denoising", noise_std=0.3))
    assert 0.25 < (noisy - images).std() < 0.35
    masked = corrupt(images, Recipe(objective="inpainting", mask_fraction=0.2))
    zeroed = (masked == 0).float().mean()
    assert 0.15 < zeroed < 0.25


@pytest.mark.slow
def test_training_lowers_the_loss_is_seeded_and_keeps_checkpoints(digits):
    inputs, labels = digits
    recipe = Recipe(epochs=4, batch_size=50, checkpoint_every=2, patience=10)
    torch.manual_seed(3)
    model = MnistAutoencoder()
    log = train_model(model, inputs, labels, recipe, seed=3, device=torch.device("cpu"))
    losses = [epoch["validation_loss"] for epoch in log.history]
    assert log.best_validation_loss == min(losses) < losses[0]
    assert [epoch for epoch, _, _ in log.checkpoints] == [2, 4]
    torch.manual_seed(3)
    again = MnistAutoencoder()
    train_model(again, inputs, labels, recipe, seed=3, device=torch.device("cpu"))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value)


@pytest.mark.slow
def test_early_stopping_restores_the_best_epoch(digits):
    inputs, labels = digits
    # A learning rate this large makes the validation loss stall or diverge quickly.
    recipe = Recipe(epochs=30, batch_size=50, lr=0.5, patience=2)
    model = MnistAutoencoder()
    log = train_model(model, inputs, labels, recipe, seed=0, device=torch.device("cpu"))
    assert log.epochs_run < recipe.epochs
    assert log.epochs_run == log.best_epoch + recipe.patience
    best = log.history[log.best_epoch - 1]["validation_loss"]
    assert best == log.best_validation_loss
