"""Side-by-side (stacked, vmapped) training of five seeds against training them one by one.

Not part of the default run:
    pytest -m benchmark --benchmark-enable tests/benchmarks/test_bench_side_by_side.py

One group per model, ``side by side vs sequential, 5 seeds, <model>``: the MNIST
autoencoder, the MNIST VAE and the dSprites VAE (β-VAE objective), each trained for
``EPOCHS`` epochs at batch ``BATCH_SIZE`` (the vae_smoke suite's recipe) on a few hundred
embedded images, five fresh seeds per round; the speed-up is the ratio of the two means.

pytest-benchmark runs all rounds of one test before the next, so on a shared machine the
two sides see different loads, and its warm-up rounds leave the heap grown (freed memory
that glibc reuses), which hides the page faults of a run's first training. For ratios
measured interleaved (sequential, side by side, sequential, ...), each training in a fresh
process as a run's:
    python tests/benchmarks/test_bench_side_by_side.py [--repeats 3] [--batch-size 100]
which prints min and median of each side and their ratios, for the first training of a
process (a run's situation) and a second one, under glibc's default malloc settings and
under ``lfxbench.timing.steady_allocator`` (what a run uses).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time

import pytest
import torch

from lfxbench.datasets.dsprites_procedural import dsprites_procedural
from lfxbench.datasets.mnist import mnist_5k
from lfxbench.execution.ensemble import train_side_by_side
from lfxbench.execution.training import train_model
from lfxbench.models.mnist_autoencoder import MnistAutoencoder
from lfxbench.models.vae import DspritesVae, MnistVae
from lfxbench.recipe import Recipe

pytestmark = pytest.mark.benchmark

SEEDS = [0, 1, 2, 3, 4]
EPOCHS, BATCH_SIZE = 2, 100
CPU = torch.device("cpu")
# glibc's own malloc settings against lfxbench.timing.steady_allocator (what a run uses)
ALLOCATORS = ("glibc", "steady")
# model -> (class, objective, images): 90% of them train, in batches of BATCH_SIZE
WORKLOADS = {
    "mnist_autoencoder": (MnistAutoencoder, None, 1000),
    "mnist_vae": (MnistVae, "beta_vae", 1000),
    "dsprites_vae": (DspritesVae, "beta_vae", 500),
}


@functools.cache
def images(model: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = WORKLOADS[model][2]
    if model == "dsprites_vae":
        data = dsprites_procedural(n_train=n, n_test=10)
    else:
        data = mnist_5k(n_train=n, n_test=10)
    return data.train_inputs, data.train_labels


def fresh_models(model: str) -> list:
    cls = WORKLOADS[model][0]
    models = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        models.append(cls())
    return models


def recipe_for(model: str, batch_size: int = BATCH_SIZE) -> Recipe:
    return Recipe(epochs=EPOCHS, batch_size=batch_size, objective=WORKLOADS[model][1])


def sequential(model: str, batch_size: int = BATCH_SIZE) -> list:
    recipe, (inputs, labels) = recipe_for(model, batch_size), images(model)
    return [
        train_model(member, inputs, labels, recipe, seed, CPU)
        for member, seed in zip(fresh_models(model), SEEDS, strict=True)
    ]


def side_by_side(model: str, batch_size: int = BATCH_SIZE, train=train_side_by_side) -> list:
    recipe, (inputs, labels) = recipe_for(model, batch_size), images(model)
    return train(fresh_models(model), inputs, labels, recipe, SEEDS, CPU)


@pytest.mark.parametrize("model", sorted(WORKLOADS))
@pytest.mark.parametrize("way", ["sequential", "side_by_side"])
def test_train_five_seeds(benchmark, model, way):
    images(model)  # loading is not timed
    benchmark.group = f"side by side vs sequential, {len(SEEDS)} seeds, {model}"
    train = {"sequential": sequential, "side_by_side": side_by_side}[way]
    logs = benchmark.pedantic(train, args=(model,), rounds=3, iterations=1, warmup_rounds=1)
    assert len(logs) == len(SEEDS)
    assert all(log.epochs_run == EPOCHS for log in logs)


def time_in_this_process(
    way: str, model: str, allocator: str, batch_size: int, runs: int
) -> list[float]:
    """Seconds of ``runs`` trainings one way, the first the process's first (as a run's)."""
    from lfxbench.timing import steady_allocator

    if allocator == "steady":
        steady_allocator()  # as a run and the pytest benchmarks (conftest.py)
    images(model)  # loading is not timed
    train = {"sequential": sequential, "side_by_side": side_by_side}[way]
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        train(model, batch_size)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per way and model")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--models", nargs="*", default=sorted(WORKLOADS))
    parser.add_argument("--one", nargs=3, metavar=("WAY", "MODEL", "ALLOC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: print its seconds
        way, model, allocator = args.one
        print(json.dumps(time_in_this_process(way, model, allocator, args.batch_size, runs=2)))
        return
    ways = [(way, allocator) for allocator in ALLOCATORS for way in ("sequential", "side_by_side")]
    for model in args.models:
        seconds: dict[tuple[str, str], list[list[float]]] = {way: [] for way in ways}
        for _ in range(args.repeats):
            for way, allocator in ways:  # interleaved, each in a fresh process
                command = [sys.executable, __file__, "--one", way, model, allocator]
                child = subprocess.run(
                    [*command, "--batch-size", str(args.batch_size)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                seconds[way, allocator].append(json.loads(child.stdout))
        print(f"{model}, batch {args.batch_size}, {args.repeats} processes a way:")
        for run, label in ((0, "first run in a process"), (1, "second run")):
            for allocator in ALLOCATORS:
                seq = [times[run] for times in seconds["sequential", allocator]]
                stacked = [times[run] for times in seconds["side_by_side", allocator]]
                print(
                    f"  {label:22s} {allocator:6s} sequential min {min(seq):.2f} s median "
                    f"{statistics.median(seq):.2f} s, side by side min {min(stacked):.2f} s "
                    f"median {statistics.median(stacked):.2f} s: speed-up min "
                    f"{min(seq) / min(stacked):.2f}x median "
                    f"{statistics.median(seq) / statistics.median(stacked):.2f}x"
                )


if __name__ == "__main__":
    main()
