"""The model zoo's trainer: Adam, early stopping on a held-out split, periodic checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe


@dataclass
class TrainingLog:
    """What training leaves behind besides the final weights."""

    epochs_run: int
    best_epoch: int
    best_validation_loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    # (epoch, learning rate, state dict) every `checkpoint_every` epochs: TracIn's input.
    checkpoints: list[tuple[int, float, dict[str, Any]]] = field(default_factory=list)


def _cpu_state(model: torch.nn.Module) -> dict[str, Any]:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


@torch.no_grad()
def _mean_loss(model: ZooModel, inputs, labels, recipe: Recipe) -> float:
    model.eval()
    total = 0.0
    for start in range(0, len(inputs), recipe.batch_size):
        batch = slice(start, start + recipe.batch_size)
        total += model.loss(inputs[batch], labels[batch], recipe).sum().item()
    return total / len(inputs)


def split_for(n: int, recipe: Recipe, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, validation) indices of ``n`` examples: the seed's own held-out split."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_validation = max(1, round(recipe.validation_fraction * n))
    return order[n_validation:], order[:n_validation]


def make_optimizer(parameters, recipe: Recipe) -> torch.optim.Optimizer:
    parameters = list(parameters)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    return torch.optim.Adam(parameters, lr=recipe.lr, weight_decay=recipe.weight_decay)


def train_model(
    model: ZooModel,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    recipe: Recipe,
    seed: int,
    device: torch.device,
) -> TrainingLog:
    """Train in place; on return ``model`` holds the weights of the best validation epoch."""
    torch.manual_seed(seed)
    model.to(device)
    training, validation = split_for(len(inputs), recipe, seed)
    train_x, train_y = inputs[training].to(device), labels[training].to(device)
    val_x, val_y = inputs[validation].to(device), labels[validation].to(device)

    optimizer = make_optimizer(model.parameters(), recipe)
    # Mixed precision on CUDA only: bfloat16 needs no loss scaling and leaves CPU runs
    # (and the committed CPU leaderboards) bit-for-bit as they were.
    autocast = torch.autocast(
        device_type=device.type,
        dtype=torch.bfloat16,
        enabled=recipe.mixed_precision and device.type == "cuda",
    )
    best_loss, best_epoch, best_state = float("inf"), 0, _cpu_state(model)
    log = TrainingLog(epochs_run=0, best_epoch=0, best_validation_loss=float("inf"))
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        # Drawn on the CPU generator: the same order on every device (and for side-by-side
        # training, which replays each seed's CPU stream).
        permutation = torch.randperm(len(train_x)).to(device)
        running = 0.0
        for start in range(0, len(train_x), recipe.batch_size):
            batch = permutation[start : start + recipe.batch_size]
            if len(batch) < 2 and start > 0:  # BatchNorm cannot train on a single example
                continue
            with autocast:
                loss = model.loss(train_x[batch], train_y[batch], recipe).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(batch)
        validation_loss = _mean_loss(model, val_x, val_y, recipe)
        log.history.append(
            {
                "epoch": epoch,
                "train_loss": running / len(train_x),
                "validation_loss": validation_loss,
            }
        )
        log.epochs_run = epoch
        if epoch % recipe.checkpoint_every == 0:
            log.checkpoints.append((epoch, recipe.lr, _cpu_state(model)))
        if validation_loss < best_loss:
            best_loss, best_epoch, best_state = validation_loss, epoch, _cpu_state(model)
        elif epoch - best_epoch >= recipe.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    log.best_epoch, log.best_validation_loss = best_epoch, best_loss
    return log
