"""Runtime of every registered feature method on a fixed encoder and batch.

Not part of the default run:  pytest -m benchmark --benchmark-enable tests/benchmarks
The `overhead` group times label-free Integrated Gradients beside a bare Captum call
on the same encoder (one latent unit as target): the wrapper's cost is their ratio.

The `label-free wrapper vs bare Captum` groups time each label-free Captum method beside
the work it cannot avoid: one Captum call on ``<h, f(x~)>`` (``LabelFreeAuxiliary``) with
``h = f(x)`` already computed. Run one after the other, the two rows drift apart on a
shared machine; the wrapper's row therefore also times a bare call before each of its
rounds (untimed by pytest-benchmark) and stores the interleaved ratio, wrapper / bare of
the min and of the median, in ``extra_info`` (``--benchmark-json``; printed with ``-s``).

The `Deep-KNN first call` group times Deep-KNN's fit + attribute in steady state and, in
``extra_info``, its first call in fresh processes: cold (the first torch work of the
process) and after ``calibration_seconds`` (what the runner runs before each stopwatch).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import DeepLift, GradientShap, IntegratedGradients, Saliency

from lfxbench.methods.labelfree import LabelFreeAuxiliary
from lfxbench.models.mnist_autoencoder import mnist_encoder
from lfxbench.registry import METHODS

pytestmark = pytest.mark.benchmark

BATCH, N_STEPS = 256, 50


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return mnist_encoder(latent_dim=4).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0))


FEATURE_METHODS = [name for name in METHODS.names() if METHODS.get(name).explains == "feature"]
# Defaults sized for a GPU would make one round take minutes on the CPU.
# COCOA's random corpus: the benchmark's inputs carry no labels for a same-class one.
SCALED_DOWN = {
    "relax": {"n_masks": 500},
    "u_relax": {"n_masks": 500},
    "cocoa": {"corpus": "random"},
}


@pytest.mark.parametrize("name", FEATURE_METHODS)  # example methods: test_bench_loss_based.py
def test_feature_method(benchmark, encoder, images, name):
    method = METHODS.get(name)(encoder, **SCALED_DOWN.get(name, {}))
    method.prepare(torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    benchmark.group = "feature methods, 256 MNIST images (RELAX: 500 masks)"
    attributions = benchmark(method.attribute, images, torch.zeros_like(images))
    assert attributions.shape == images.shape


def test_overhead_label_free_integrated_gradients(benchmark, encoder, images):
    method = METHODS.get("integrated_gradients")(encoder, n_steps=N_STEPS)
    benchmark.group = "overhead: IG, 256 images x 50 steps"
    benchmark(method.attribute, images, torch.zeros_like(images))


def test_overhead_bare_captum_integrated_gradients(benchmark, encoder, images):
    captum_ig = IntegratedGradients(encoder)
    benchmark.group = "overhead: IG, 256 images x 50 steps"
    benchmark(
        captum_ig.attribute,
        images.clone().requires_grad_(),
        torch.zeros_like(images),
        target=0,
        n_steps=N_STEPS,
    )


# --------------------------------------------------------------- wrapper vs bare Captum

# name: (group, wrapper parameters, rounds); the rounds fit a few minutes on 2 CPU cores.
WRAPPED = {
    "integrated_gradients": (
        f"label-free wrapper vs bare Captum, IG {BATCH} MNIST x {N_STEPS} steps",
        {"n_steps": N_STEPS},
        7,
    ),
    "gradient_shap": (
        f"label-free wrapper vs bare Captum, Gradient SHAP {BATCH} MNIST x {N_STEPS} samples",
        {"n_samples": N_STEPS},
        5,
    ),
    "deeplift": (f"label-free wrapper vs bare Captum, DeepLift {BATCH} MNIST", {}, 30),
    "saliency": (f"label-free wrapper vs bare Captum, Saliency {BATCH} MNIST", {}, 30),
}


def bare_captum_call(name: str, encoder, images) -> Callable[[], torch.Tensor]:
    """The unavoidable work: one Captum call on <h, f(x~)> with h = f(x) precomputed
    (inputs that require gradients where Captum would otherwise set it and warn)."""
    auxiliary = LabelFreeAuxiliary(encoder)
    h = auxiliary.reference_latents(images)
    baselines = torch.zeros_like(images)
    if name == "integrated_gradients":
        ig = IntegratedGradients(auxiliary)
        return lambda: ig.attribute(
            images, baselines, additional_forward_args=(h,), n_steps=N_STEPS
        )
    if name == "gradient_shap":
        shap = GradientShap(auxiliary)

        def gradient_shap() -> torch.Tensor:
            np.random.seed(0)
            return shap.attribute(
                images, baselines, additional_forward_args=(h,), n_samples=N_STEPS
            )

        return gradient_shap
    differentiable = images.clone().requires_grad_()
    if name == "deeplift":
        deeplift = DeepLift(auxiliary)
        return lambda: deeplift.attribute(differentiable, baselines, additional_forward_args=(h,))
    saliency = Saliency(auxiliary)
    return lambda: saliency.attribute(differentiable, additional_forward_args=(h,))


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")
@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_label_free_wrapper(benchmark, encoder, images, name):
    group, params, rounds = WRAPPED[name]
    method = METHODS.get(name)(encoder, **params)
    bare = bare_captum_call(name, encoder, images)
    baselines = torch.zeros_like(images)
    bare_seconds: list[float] = []

    def time_bare_first() -> None:  # pytest-benchmark's setup: before every round, untimed
        start = time.perf_counter()
        bare()
        bare_seconds.append(time.perf_counter() - start)

    benchmark.group = group
    benchmark.pedantic(
        method.attribute,
        (images, baselines),
        setup=time_bare_first,
        rounds=rounds,
        warmup_rounds=1,
    )
    wrapped_seconds = list(benchmark.stats.stats.data)
    bare_seconds = bare_seconds[-len(wrapped_seconds) :]  # the warm-up's setup ran too
    ratios = {
        "ratio_of_min": min(wrapped_seconds) / min(bare_seconds),
        "ratio_of_median": statistics.median(wrapped_seconds) / statistics.median(bare_seconds),
        "median_pairwise_ratio": statistics.median(
            w / b for w, b in zip(wrapped_seconds, bare_seconds, strict=True)
        ),
    }
    benchmark.extra_info.update(ratios, interleaved_bare_seconds=bare_seconds)
    print(
        f"\n{group}: wrapper / bare, interleaved over {rounds} rounds: "
        + ", ".join(f"{key} {value:.3f}" for key, value in ratios.items())
    )


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")
@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_bare_captum(benchmark, encoder, images, name):
    group, _, rounds = WRAPPED[name]
    benchmark.group = group
    benchmark.pedantic(bare_captum_call(name, encoder, images), rounds=rounds, warmup_rounds=1)


# --------------------------------------------------------------- Deep-KNN's first call

N_CORPUS = N_TEST = 1000
FIRST_CALL_PROCESSES = 5
# Run as ``python -c FIRST_CALL MODE N_CORPUS N_TEST``: the same model and inputs as below.
FIRST_CALL = """
import json, sys, time
import torch
from lfxbench.timing import calibration_seconds, steady_allocator
steady_allocator()
from lfxbench.methods.base import TrainingCorpus
from lfxbench.models.mnist_autoencoder import MnistAutoencoder
from lfxbench.recipe import Recipe
from lfxbench.registry import METHODS
mode, n_corpus, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = MnistAutoencoder(latent_dim=4).eval()
inputs = torch.rand(n_corpus + n_test, 1, 28, 28, generator=torch.Generator().manual_seed(0))
labels = torch.zeros(len(inputs), dtype=torch.long)
corpus = TrainingCorpus(model, Recipe(), inputs[:n_corpus], labels[:n_corpus],
                        inputs[:n_corpus], labels[:n_corpus], batch_size=256)
method_class = METHODS.get("deep_knn")
if mode == "after_calibration":
    calibration_seconds(torch.device("cpu"), repeats=3)
seconds = []
for _ in range(4):
    method = method_class()
    start = time.perf_counter()
    method.fit(corpus)
    method.attribute(inputs[n_corpus:], labels[n_corpus:])
    seconds.append(time.perf_counter() - start)
print(json.dumps({"first": seconds[0], "later": sorted(seconds[1:])[1]}))
"""


def first_calls(mode: str) -> list[dict[str, float]]:
    """Deep-KNN's first and a later fit + attribute in each of a few fresh processes."""
    root = Path(__file__).resolve().parents[2]
    runs = []
    for _ in range(FIRST_CALL_PROCESSES):
        done = subprocess.run(
            [sys.executable, "-c", FIRST_CALL, mode, str(N_CORPUS), str(N_TEST)],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def test_deep_knn_first_call_vs_steady_state(benchmark):
    from lfxbench.methods.base import TrainingCorpus
    from lfxbench.models.mnist_autoencoder import MnistAutoencoder
    from lfxbench.recipe import Recipe

    torch.manual_seed(0)
    model = MnistAutoencoder(latent_dim=4).eval()
    inputs = torch.rand(N_CORPUS + N_TEST, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(len(inputs), dtype=torch.long)
    corpus = TrainingCorpus(
        model,
        Recipe(),
        inputs[:N_CORPUS],
        labels[:N_CORPUS],
        inputs[:N_CORPUS],
        labels[:N_CORPUS],
        batch_size=256,
    )
    method_class = METHODS.get("deep_knn")

    def fit_and_attribute() -> torch.Tensor:
        method = method_class()
        method.fit(corpus)
        return method.attribute(inputs[N_CORPUS:], labels[N_CORPUS:])

    benchmark.group = f"Deep-KNN first call vs steady state, {N_CORPUS} x {N_TEST} MNIST, d=4"
    benchmark.pedantic(fit_and_attribute, rounds=20, warmup_rounds=2)
    steady = benchmark.stats.stats.median
    for mode in ("cold", "after_calibration"):
        runs = first_calls(mode)
        first = [run["first"] for run in runs]
        summary = {
            "first_min_s": min(first),
            "first_median_s": statistics.median(first),
            "first_over_later_in_process_median": statistics.median(
                run["first"] / run["later"] for run in runs
            ),
            "first_median_over_steady_median": statistics.median(first) / steady,
        }
        benchmark.extra_info[mode] = summary
        print(
            f"\nDeep-KNN first call, {mode}, {len(runs)} fresh processes: "
            + ", ".join(f"{key} {value:.3f}" for key, value in summary.items())
        )
