from __future__ import annotations

import itertools
import math

import pytest
import torch
from pydantic import ValidationError
from tiny_models import TinyAutoencoder

from lfxbench.execution.training import TrainingLog, make_optimizer, split_for, train_model
from lfxbench.models.base import ZooModel
from lfxbench.models.mnist_autoencoder import MnistAutoencoder, corrupt
from lfxbench.recipe import Recipe
from lfxbench.suite import validate_suite

CPU = torch.device("cpu")


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


class Ramp(ZooModel):
    """Loss ``w`` for every example: each SGD step (no momentum, no decay) lowers ``w`` by
    exactly the step's learning rate. Records ``w`` and the inputs of every training batch."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Identity()
        self.w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.trajectory: list[float] = []
        self.batches: list[torch.Tensor] = []

    def loss(self, inputs, labels, recipe):
        if self.training:
            self.trajectory.append(self.w.item())
            self.batches.append(inputs[:, 0].clone())
        return self.w * torch.ones(len(inputs), dtype=torch.float64)


# 30 examples, 3 held out: 27 to train on, in batches of 5 with 2 left over
RAMP_DATA = torch.arange(30, dtype=torch.float64)[:, None], torch.zeros(30, dtype=torch.long)
SGD = {"optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0, "batch_size": 5, "patience": 9}


def cosine(step: int, total: int, lr: float, min_lr: float) -> float:
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * step / total)) / 2


def ramp_trained(**recipe) -> tuple[Ramp, TrainingLog]:
    model = Ramp()
    log = train_model(model, *RAMP_DATA, Recipe(**{**SGD, **recipe}), seed=0, device=CPU)
    return model, log


def step_lrs(model: Ramp) -> list[float]:
    trajectory = [*model.trajectory, model.w.item()]  # the last epoch is the best: w falls
    return [before - after for before, after in itertools.pairwise(trajectory)]


def test_drop_last_drops_each_epochs_incomplete_batch():
    model, _ = ramp_trained(epochs=3, drop_last=True)
    assert [len(batch) for batch in model.batches] == [5] * 5 * 3
    training, _ = split_for(30, Recipe(), seed=0)
    for epoch in range(3):
        seen = torch.cat(model.batches[5 * epoch : 5 * epoch + 5]).long()
        assert len(set(seen.tolist())) == 25 and set(seen.tolist()) < set(training.tolist())
    kept, _ = ramp_trained(epochs=3)
    assert [len(batch) for batch in kept.batches] == [5, 5, 5, 5, 5, 2] * 3
    with pytest.raises(ValueError, match="drop_last"):
        ramp_trained(epochs=1, drop_last=True, batch_size=28)


@pytest.mark.parametrize(("drop_last", "steps_per_epoch"), [(True, 5), (False, 6)])
def test_cosine_schedule_anneals_every_step_to_min_lr(drop_last, steps_per_epoch):
    model, log = ramp_trained(
        epochs=4, lr=0.6, schedule="cosine", min_lr=0.01, drop_last=drop_last, checkpoint_every=2
    )
    total = 4 * steps_per_epoch
    expected = [cosine(step, total, 0.6, 0.01) for step in range(total)]
    assert step_lrs(model) == pytest.approx(expected, rel=1e-9)
    assert expected[0] == 0.6 and expected[-1] > 0.01
    # each checkpoint records the mean rate of its epoch's steps
    assert [epoch for epoch, _, _ in log.checkpoints] == [2, 4]
    for epoch, lr, state in log.checkpoints:
        steps = expected[(epoch - 1) * steps_per_epoch : epoch * steps_per_epoch]
        assert lr == pytest.approx(sum(steps) / len(steps), rel=1e-9)
        assert state["w"].item() == pytest.approx(-sum(expected[: epoch * steps_per_epoch]))


def test_constant_schedule_keeps_lr_and_records_it():
    model, log = ramp_trained(epochs=2, lr=0.25, checkpoint_every=1)
    assert step_lrs(model) == pytest.approx([0.25] * 12, rel=1e-12)
    assert [lr for _, lr, _ in log.checkpoints] == [0.25, 0.25]


def test_nesterov_reaches_the_optimizer_and_changes_the_steps():
    recipe = Recipe(optimizer="sgd", nesterov=True)
    optimizer = make_optimizer(TinyAutoencoder().parameters(), recipe)
    assert optimizer.param_groups[0]["nesterov"] is True
    plain = make_optimizer(TinyAutoencoder().parameters(), Recipe(optimizer="sgd"))
    assert plain.param_groups[0]["nesterov"] is False
    inputs, labels = torch.randn(40, 6, generator=torch.Generator().manual_seed(0)), torch.zeros(40)
    weights = {}
    for nesterov in (False, True):
        torch.manual_seed(0)
        model = TinyAutoencoder()
        recipe = Recipe(optimizer="sgd", lr=0.05, epochs=3, batch_size=8, nesterov=nesterov)
        train_model(model, inputs, labels, recipe, seed=0, device=CPU)
        weights[nesterov] = model.encoder.weight.detach().clone()
    assert not torch.allclose(weights[False], weights[True])


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"nesterov": True}, "nesterov"),  # adam is the default optimizer
        ({"nesterov": True, "optimizer": "sgd", "momentum": 0.0}, "nesterov"),
        ({"min_lr": 1e-4}, "min_lr"),  # the constant schedule has no final rate
        ({"schedule": "cosine", "lr": 0.1, "min_lr": 0.2}, "min_lr"),
    ],
)
def test_recipe_refuses_options_its_optimizer_or_schedule_lacks(options, field):
    with pytest.raises(ValidationError, match=field):
        Recipe(**options)


def test_schedule_nesterov_and_drop_last_enter_the_model_key():
    raw = {
        "name": "unit",
        "datasets": [{"name": "mnist_5k", "params": {"n_train": 100, "n_test": 10}}],
        "models": [{"name": "mnist_autoencoder", "dataset": "mnist_5k", "recipe": {}}],
        "methods": ["saliency"],
        "metrics": ["latent_shift"],
    }
    options = [
        {},
        {"optimizer": "sgd"},
        {"optimizer": "sgd", "nesterov": True},
        {"optimizer": "sgd", "schedule": "cosine"},
        {"optimizer": "sgd", "schedule": "cosine", "min_lr": 1e-5},
        {"optimizer": "sgd", "drop_last": True},
    ]
    keys = set()
    for recipe in options:
        raw["models"][0]["recipe"] = recipe
        keys.add(validate_suite(raw).cells()[0].model_key)
    assert len(keys) == len(options)
