"""Side-by-side training of several seeds equals training them one after another."""

from __future__ import annotations

import math

import pytest
import torch
from suite_runs import run
from tiny_models import TinyAutoencoder

from lfxbench.datasets.mnist import mnist_5k
from lfxbench.execution.ensemble import train_side_by_side
from lfxbench.execution.training import train_model
from lfxbench.models.mnist_autoencoder import MnistAutoencoder
from lfxbench.recipe import Recipe

SEEDS = [0, 1, 2, 3]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    data = mnist_5k(n_train=200, n_test=10)
    return data.train_inputs, data.train_labels


def fresh(seed: int) -> MnistAutoencoder:
    torch.manual_seed(seed)
    return MnistAutoencoder()


def both_ways(digits, recipe):
    sequential = []
    for seed in SEEDS:
        model = fresh(seed)
        sequential.append((model, train_model(model, *digits, recipe, seed, CPU)))
    stacked = [fresh(seed) for seed in SEEDS]
    logs = train_side_by_side(stacked, *digits, recipe, SEEDS, CPU)
    return sequential, list(zip(stacked, logs, strict=True))


# SimCLR's reference recipe, scaled down: 180 training examples in 3 batches of 48 (36 left
# over and dropped), Nesterov momentum, the lr annealed every step.
REFERENCE_LIKE = Recipe(
    epochs=4,
    batch_size=48,
    checkpoint_every=2,
    optimizer="sgd",
    lr=0.05,
    momentum=0.9,
    nesterov=True,
    weight_decay=1e-6,
    schedule="cosine",
    drop_last=True,
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe",
    [Recipe(epochs=4, batch_size=50, checkpoint_every=2), REFERENCE_LIKE],
    ids=["adam", "sgd-nesterov-cosine-drop-last"],
)
def test_side_by_side_gives_the_weights_of_sequential_training(digits, recipe):
    sequential, side_by_side = both_ways(digits, recipe)
    for (model, expected), (member, log) in zip(sequential, side_by_side, strict=True):
        assert [h["validation_loss"] for h in log.history] == pytest.approx(
            [h["validation_loss"] for h in expected.history], rel=1e-4
        )
        assert [c[0] for c in log.checkpoints] == [2, 4]
        # the same schedule: the same rate recorded with every checkpoint
        assert [c[1] for c in log.checkpoints] == [c[1] for c in expected.checkpoints]
        for name, value in model.state_dict().items():
            # batched kernels reassociate float sums; Adam carries the difference along (on
            # a near-zero gradient its step is about lr = 1e-3 whatever the sign noise: 16
            # steps here, so an element may drift by a few 1e-3)
            torch.testing.assert_close(member.state_dict()[name], value, atol=1e-2, rtol=1e-2)


class TinyBatchNormAutoencoder(TinyAutoencoder):
    """TinyAutoencoder with a BatchNorm in the encoder: running statistics as buffers."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(6, 2), torch.nn.BatchNorm1d(2))


@pytest.mark.parametrize("model_class", [TinyAutoencoder, TinyBatchNormAutoencoder])
def test_side_by_side_follows_the_schedule_and_drops_the_last_batch(model_class):
    # a tiny linear autoencoder: exact enough to compare checkpoints element by element
    inputs = torch.randn(60, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(60, dtype=torch.long)
    recipe = REFERENCE_LIKE.model_copy(update={"batch_size": 8, "lr": 0.2, "checkpoint_every": 1})

    def tiny(seed):
        torch.manual_seed(seed)
        return model_class()

    sequential = []
    for seed in SEEDS:
        model = tiny(seed)
        sequential.append(train_model(model, inputs, labels, recipe, seed, CPU))
    stacked = train_side_by_side([tiny(seed) for seed in SEEDS], inputs, labels, recipe, SEEDS, CPU)
    # 54 training examples: 6 full batches of 8 per epoch, 24 steps in all
    rates = [0.2 * (1 + math.cos(math.pi * step / 24)) / 2 for step in range(24)]
    for expected, log in zip(sequential, stacked, strict=True):
        assert [c[0] for c in log.checkpoints] == [1, 2, 3, 4]
        for epoch, lr, state in log.checkpoints:
            assert lr == pytest.approx(sum(rates[(epoch - 1) * 6 : epoch * 6]) / 6, rel=1e-9)
            _, expected_lr, expected_state = expected.checkpoints[epoch - 1]
            assert lr == expected_lr
            assert state.keys() == expected_state.keys()  # BatchNorm's running stats too
            for name, value in expected_state.items():
                torch.testing.assert_close(state[name], value, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_each_member_stops_early_as_it_would_alone(digits):
    # patience 1 at this rate stops one member at epoch 3 while the others run all 5; the
    # validation losses of consecutive epochs differ by > 4e-4, far above float noise
    recipe = Recipe(epochs=5, batch_size=50, patience=1, lr=0.05, checkpoint_every=1)
    sequential, side_by_side = both_ways(digits, recipe)
    assert len({log.epochs_run for _, log in sequential}) > 1  # the test needs real stops
    for (_, expected), (_, log) in zip(sequential, side_by_side, strict=True):
        assert (log.epochs_run, log.best_epoch) == (expected.epochs_run, expected.best_epoch)
        assert [c[0] for c in log.checkpoints] == [c[0] for c in expected.checkpoints]
        assert log.best_validation_loss == pytest.approx(expected.best_validation_loss, rel=5e-3)


@pytest.mark.slow
def test_a_suite_can_train_its_seeds_side_by_side(tiny_suite, tmp_path, monkeypatch):
    import pandas as pd

    import lfxbench.execution.trained_models

    calls = []
    original = lfxbench.execution.trained_models.train_side_by_side
    monkeypatch.setattr(
        lfxbench.execution.trained_models,
        "train_side_by_side",
        lambda models, *args: calls.append(len(models)) or original(models, *args),
    )
    tables = {}
    suite_text = tiny_suite.read_text()
    for side_by_side in (False, True):
        tiny_suite.write_text(
            suite_text.replace(
                "batch_size: 16\n",
                f"batch_size: 16\ntrain_side_by_side: {str(side_by_side).lower()}\n",
            )
        )
        out = tmp_path / str(side_by_side)
        assert run(tiny_suite, out) == 0
        tables[side_by_side] = pd.read_csv(out / "runs" / "tiny" / "results.csv")
    assert calls == [2]  # both seeds of the one model, in one stack
    # the model key records side-by-side training, so `random` draws other noise: skip it
    kept = {flag: table[table["method"] != "random"] for flag, table in tables.items()}
    pd.testing.assert_series_equal(kept[True]["value"], kept[False]["value"], rtol=0.01)
