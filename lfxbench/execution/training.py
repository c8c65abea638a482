"""The model zoo's trainer: Adam or SGD (optionally Nesterov, optionally on a cosine schedule),
early stopping on a held-out split, periodic checkpoints."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from lfxbench.execution import progress
from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe


@dataclass
class TrainingLog:
    """What training leaves behind besides the final weights."""

    epochs_run: int
    best_epoch: int
    best_validation_loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    # (epoch, learning rate, state dict) every `checkpoint_every` epochs: TracIn's input. The
    # rate is the one of that epoch's steps (see `checkpoint_lr`).
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


def batch_starts(n: int, recipe: Recipe) -> list[int]:
    """Where the training batches of an epoch over ``n`` examples start: with ``drop_last``
    the last incomplete batch is left out; a later batch of a single example always is
    (BatchNorm cannot train on one)."""
    end = n - n % recipe.batch_size if recipe.drop_last else n
    if recipe.drop_last and end == 0:
        raise ValueError(
            f"drop_last: the {n} training examples do not fill one batch of {recipe.batch_size}"
        )
    return [
        start
        for start in range(0, end, recipe.batch_size)
        if start == 0 or min(recipe.batch_size, end - start) >= 2
    ]


def make_optimizer(parameters, recipe: Recipe) -> torch.optim.Optimizer:
    parameters = list(parameters)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
            nesterov=recipe.nesterov,
        )
    return torch.optim.Adam(parameters, lr=recipe.lr, weight_decay=recipe.weight_decay)


def make_scheduler(
    optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The recipe's schedule, to step after every optimizer step (None: a constant rate).

    Cosine, as the SimCLR reference code anneals (per step, over the planned ``epochs``):
    step ``t`` of ``T = epochs * steps_per_epoch`` runs at
    ``min_lr + (lr - min_lr) * (1 + cos(pi * t / T)) / 2``, so the first at ``lr`` and the
    last just above ``min_lr``.
    """
    if recipe.schedule == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=recipe.epochs * steps_per_epoch, eta_min=recipe.min_lr
    )


def optimizer_step(loss: torch.Tensor, optimizer, scheduler, step_lrs: list[float]) -> None:
    """One step on ``loss``, recording the rate it ran at (``checkpoint_lr`` averages them)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    step_lrs.append(optimizer.param_groups[0]["lr"])
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


def checkpoint_lr(recipe: Recipe, step_lrs: list[float]) -> float:
    """The learning rate recorded with an epoch's checkpoint: the mean of the rates that
    epoch's optimizer steps ran at (``lr`` itself under the constant schedule)."""
    if recipe.schedule == "constant" or not step_lrs:
        return recipe.lr
    return math.fsum(step_lrs) / len(step_lrs)


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
    starts = batch_starts(len(train_x), recipe)
    scheduler = make_scheduler(optimizer, recipe, len(starts))
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
        running, seen, step_lrs = 0.0, 0, []
        for start in starts:
            batch = permutation[start : start + recipe.batch_size]
            with autocast:
                loss = model.loss(train_x[batch], train_y[batch], recipe).mean()
            optimizer_step(loss, optimizer, scheduler, step_lrs)
            running += loss.item() * len(batch)
            seen += len(batch)
        validation_loss = _mean_loss(model, val_x, val_y, recipe)
        log.history.append(
            {
                "epoch": epoch,
                "train_loss": running / seen,
                "validation_loss": validation_loss,
            }
        )
        log.epochs_run = epoch
        progress.step(f"loss {running / seen:.4g}, validation {validation_loss:.4g}")
        if epoch % recipe.checkpoint_every == 0:
            log.checkpoints.append((epoch, checkpoint_lr(recipe, step_lrs), _cpu_state(model)))
        if validation_loss < best_loss:
            best_loss, best_epoch, best_state = validation_loss, epoch, _cpu_state(model)
        elif epoch - best_epoch >= recipe.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    log.best_epoch, log.best_validation_loss = best_epoch, best_loss
    return log
