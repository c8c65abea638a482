"""Train several seeds of one model side by side: one stacked model, one vmapped step.

Small models leave a GPU mostly idle when trained one after another. Here the members'
parameters and buffers are stacked (``torch.func.stack_module_state``), every step runs
all members at once through ``vmap(functional_call(...))`` and one optimiser updates the
stacked tensors, which for Adam and SGD (elementwise updates, Nesterov's too) is each
member's own optimiser. The learning-rate schedule depends on the step count alone, the
same for every member, so one scheduler serves them all; ``drop_last`` leaves out the same
positions of each member's own order. Every member keeps its own split, data order, early
stopping and checkpoints, so for a deterministic objective the result is sequential
training's, up to float reassociation in the batched kernels (a test checks it). Stochastic
objectives (denoising, inpainting, contrastive views) draw their noise inside vmap: for
several seeds statistically the same, not the same draws as a sequential run; for members
of one seed (models on subsets of a training set) the very draws of a sequential run.

On the CPU stacking pays only under ``lfxbench.timing.steady_allocator`` (the runner sets
it): stacked activations are members × as large, and glibc by default maps every
allocation above 32 MiB afresh, a page fault per 4 KiB touched (a stack of dSprites VAEs
crosses it). What stacking gains with and without it: README, Performance, and
``python tests/benchmarks/test_bench_side_by_side.py``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from lfxbench.execution import progress
from lfxbench.execution.training import (
    TrainingLog,
    batch_starts,
    checkpoint_lr,
    make_optimizer,
    make_scheduler,
    optimizer_step,
    split_for,
)
from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe


class _Loss(nn.Module):
    """``forward`` = the model's per-example loss, so ``functional_call`` can reach it."""

    def __init__(self, model: ZooModel, recipe: Recipe):
        super().__init__()
        self.model, self.recipe = model, recipe

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model.loss(inputs, labels, self.recipe)


def train_side_by_side(
    models: list[ZooModel],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    recipe: Recipe,
    seeds: list[int],
    device: torch.device,
    examples: torch.Tensor | None = None,
) -> list[TrainingLog]:
    """Train ``models`` (one per seed, same architecture) in place, as ``train_model`` would
    train each; returns their logs in order.

    ``examples`` (``[n_members, n]`` indices into ``inputs``) gives each member a training
    set of its own: member ``m`` trains as ``train_model`` would on ``inputs[examples[m]]``
    (its split, data order and stopping drawn over those ``n``). Equal sizes keep the
    members' batches aligned, which stacking needs. None: every member on all ``inputs``.
    """
    if recipe.optimizer != "adam" and recipe.optimizer != "sgd":
        raise ValueError(f"unsupported optimizer {recipe.optimizer!r}")
    n_members = len(models)
    wrappers = [_Loss(model.to(device), recipe) for model in models]
    params, buffers = stack_module_state(wrappers)
    template = copy.deepcopy(wrappers[0]).to("meta")

    def member_loss(p, b, x, y):
        return functional_call(template, (p, b), (x, y))

    # One seed for every member (models on subsets of one training set): one random stream,
    # drawn as `train_model` draws it, each draw the same for every member. Each member then
    # trains exactly as `train_model` would on its examples, stochastic objectives included,
    # whatever else is in the stack. Several seeds: each its own draws ("different").
    common_stream = len(set(seeds)) == 1
    losses = vmap(member_loss, randomness="same" if common_stream else "different")
    if examples is None:
        examples = torch.arange(len(inputs)).expand(n_members, -1)
    if examples.dim() != 2 or len(examples) != n_members:
        raise ValueError(f"examples: one row of indices per member, got {tuple(examples.shape)}")
    # Members index one copy of the data on the device rather than each holding its own:
    # a hundred subsets of a training set cost the set once.
    inputs, labels = inputs.to(device), labels.to(device)
    examples = examples.cpu()
    splits = [split_for(examples.shape[1], recipe, seed) for seed in seeds]
    train_rows = torch.stack([examples[m, train] for m, (train, _) in enumerate(splits)])
    val_rows = torch.stack([examples[m, val] for m, (_, val) in enumerate(splits)])
    train_rows, val_rows = train_rows.to(device), val_rows.to(device)
    rng_states = []  # each member's own stream of data orders, as `train_model` draws it
    if common_stream:
        torch.manual_seed(seeds[0])
    else:
        for seed in seeds:
            torch.manual_seed(seed)
            rng_states.append(torch.get_rng_state())

    optimizer = make_optimizer(params.values(), recipe)  # updates the stacked leaves
    n_train = train_rows.shape[1]
    starts = batch_starts(n_train, recipe)  # as train_model: drop_last, no batch of one
    scheduler = make_scheduler(optimizer, recipe, len(starts))
    logs = [
        TrainingLog(epochs_run=0, best_epoch=0, best_validation_loss=float("inf")) for _ in models
    ]
    best_states = [member_state(params, buffers, m) for m in range(n_members)]
    stopped = [False] * n_members
    frozen: dict[int, dict[str, torch.Tensor]] = {}
    members = torch.arange(n_members, device=device)
    for epoch in range(1, recipe.epochs + 1):
        template.train()
        if common_stream:
            order = torch.randperm(n_train).to(device).expand(n_members, -1)
        else:
            permutations = []
            for m in range(n_members):
                torch.set_rng_state(rng_states[m])
                permutations.append(torch.randperm(n_train).to(device))
                rng_states[m] = torch.get_rng_state()
            order = torch.stack(permutations)
        step_lrs = []
        for start in starts:
            rows = train_rows[members[:, None], order[:, start : start + recipe.batch_size]]
            x, y = inputs[rows], labels[rows]
            loss = losses(params, buffers, x, y).mean(dim=1).sum()
            optimizer_step(loss, optimizer, scheduler, step_lrs)
            for m, state in frozen.items():  # a stopped member does not move
                load_member(params, buffers, m, state)
        template.eval()
        with torch.no_grad():
            validation = (
                torch.stack(
                    [
                        losses(
                            params,
                            buffers,
                            inputs[val_rows[:, s : s + recipe.batch_size]],
                            labels[val_rows[:, s : s + recipe.batch_size]],
                        ).sum(dim=1)
                        for s in range(0, val_rows.shape[1], recipe.batch_size)
                    ]
                ).sum(dim=0)
                / val_rows.shape[1]
            )
        for m, log in enumerate(logs):
            if stopped[m]:
                continue
            value = validation[m].item()
            log.history.append({"epoch": epoch, "validation_loss": value})
            log.epochs_run = epoch
            if epoch % recipe.checkpoint_every == 0:
                state = member_state(params, buffers, m)
                log.checkpoints.append((epoch, checkpoint_lr(recipe, step_lrs), state))
            if value < log.best_validation_loss:
                log.best_validation_loss, log.best_epoch = value, epoch
                best_states[m] = member_state(params, buffers, m)
            elif epoch - log.best_epoch >= recipe.patience:
                stopped[m] = True
                frozen[m] = member_state(params, buffers, m, device=device)
        progress.step(f"validation {validation.mean().item():.4g} (mean of {n_members})")
        if all(stopped):
            break
    for model, state in zip(models, best_states, strict=True):
        model.load_state_dict(state)
        model.eval()
    return logs


def member_state(params, buffers, m: int, device: str | torch.device = "cpu") -> dict:
    """Member ``m``'s state dict (names of the model itself, not of the loss wrapper)."""
    return {
        name.removeprefix("model."): tensor[m].detach().to(device).clone()
        for name, tensor in {**params, **buffers}.items()
    }


@torch.no_grad()
def load_member(params, buffers, m: int, state: dict[str, torch.Tensor]) -> None:
    for name, tensor in {**params, **buffers}.items():
        tensor[m].copy_(state[name.removeprefix("model.")])
