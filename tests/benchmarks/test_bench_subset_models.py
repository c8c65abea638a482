"""Retraining on training subsets (the ground truth of ``lds`` and ``retrain_without_top``)
stacked, as the engine trains them, against one subset model after another.

The workload is ``suites/ground_truth_smoke.yaml``'s: its model, recipe and training set,
subsets of its two sizes (LDS's random halves, and the removal check's training set less
10 %), each model started from the seed's initial weights; in the stacks ``SubsetModels``
trains (``subset_models.stacks``).

Not part of the default run:
    pytest -m benchmark --benchmark-enable tests/benchmarks/test_bench_subset_models.py

For speed-ups measured interleaved in one process (sequential, stacked, sequential, ...,
after untimed warm-up rounds), the ratio taken round by round:
    python tests/benchmarks/test_bench_subset_models.py [--models 16] [--repeats 3] [--warmup 1]
which prints min and median of each way and of the speed-up, per subset size.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path

import pytest
import torch

from lfxbench.datasets.base import DatasetSplits
from lfxbench.environment import seeded
from lfxbench.execution.ensemble import train_side_by_side
from lfxbench.execution.subset_models import stacks
from lfxbench.execution.training import train_model
from lfxbench.models.base import ZooModel
from lfxbench.registry import DATASETS, MODELS
from lfxbench.subsets import SubsetSpec, draw_subsets
from lfxbench.suite import ModelEntry, load_suite

pytestmark = pytest.mark.benchmark

SUITE = Path(__file__).parents[2] / "suites" / "ground_truth_smoke.yaml"
CPU = torch.device("cpu")
SEED = 0
# subset size as a share of the training set -> what it is in the suite
SIZES = {0.5: "LDS halves", 0.9: "training set less 10 %"}


@functools.cache
def workload() -> tuple[ModelEntry, DatasetSplits]:
    suite = load_suite(SUITE)
    entry = suite.models[0]
    dataset = suite.dataset(entry.dataset)
    return entry, DATASETS.get(dataset.name)(**dataset.params)


def subset_rows(share: float, n_models: int) -> torch.Tensor:
    """Training-set indices of ``n_models`` random subsets of ``share`` of it."""
    n_train = len(workload()[1].train_labels)
    keep = draw_subsets(n_train, SubsetSpec(n_models, round(share * n_train)), SEED)
    return keep.nonzero()[:, 1].view(n_models, -1)


def fresh_models(entry: ModelEntry, count: int) -> list[ZooModel]:
    models = []
    for _ in range(count):
        with seeded(SEED):  # every subset model starts from the seed's initial weights
            models.append(MODELS.get(entry.name)(**entry.params))
    return models


def sequential(rows: torch.Tensor) -> None:
    entry, data = workload()
    for model, row in zip(fresh_models(entry, len(rows)), rows, strict=True):
        train_model(model, data.train_inputs[row], data.train_labels[row], entry.recipe, SEED, CPU)


def stacked(rows: torch.Tensor) -> None:
    entry, data = workload()
    for stack in stacks(len(rows)):
        chunk = rows[stack]
        members = fresh_models(entry, len(chunk))
        inputs, labels = data.train_inputs, data.train_labels
        train_side_by_side(members, inputs, labels, entry.recipe, [SEED] * len(chunk), CPU, chunk)


WAYS = {"sequential": sequential, "stacked": stacked}


@pytest.mark.parametrize("share", sorted(SIZES))
@pytest.mark.parametrize("way", sorted(WAYS))
def test_retrain_subset_models(benchmark, way, share):
    rows = subset_rows(share, 8)
    workload()  # loading is not timed
    benchmark.group = f"subset models stacked vs sequential, 8 on {SIZES[share]}"
    benchmark.pedantic(WAYS[way], args=(rows,), rounds=2, iterations=1, warmup_rounds=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=16, help="subset models per size")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per way")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    args = parser.parse_args()
    from lfxbench.timing import steady_allocator

    steady_allocator()  # as a run does
    for share, named in SIZES.items():
        rows = subset_rows(share, args.models)
        seconds: dict[str, list[float]] = {way: [] for way in WAYS}
        for round_ in range(args.warmup + args.repeats):
            for way, train in WAYS.items():
                start = time.perf_counter()
                train(rows)
                if round_ >= args.warmup:
                    seconds[way].append(time.perf_counter() - start)
        seq, stack = seconds["sequential"], seconds["stacked"]
        speed_ups = [a / b for a, b in zip(seq, stack, strict=True)]  # round by round
        print(
            f"{args.models} models on {named} ({rows.shape[1]} examples), {args.repeats} "
            f"rounds: sequential min {min(seq):.1f} s median {statistics.median(seq):.1f} s, "
            f"stacked min {min(stack):.1f} s median {statistics.median(stack):.1f} s; "
            f"speed-up of a round min {min(speed_ups):.2f}x median "
            f"{statistics.median(speed_ups):.2f}x"
        )


if __name__ == "__main__":
    main()
