"""The papers' experimental settings, and what a run of ours does differently.

A :class:`Protocol` is the paper's side of a claim, typed from its text; the other side,
ours, is always read from the run's ``run.json``. :func:`setting_difference` writes the
``paper → ours`` items of the report's setting-difference column and
:func:`not_comparable_reason` says when a difference makes a claim not comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lfxbench.datasets.base import Resplit
from lfxbench.paper_report.runs import PAPER_DATASETS, RERENDERED, STAND_INS, SUBSETS, Run


@dataclass(frozen=True)
class Protocol:
    """The paper's side of a claim's setting, as its text states it."""

    dataset: str  # our catalogue name of the paper's dataset
    n_train: int  # its training examples
    epochs: int
    runs: int | None = None  # runs behind the published figure or table; None: not stated
    objective: str | None = None
    n_corpus: int | None = None  # example importance: training examples scored
    n_test: int | None = None  # ... and test examples explained
    method_params: tuple[tuple[str, str, Any], ...] = ()  # (method id, parameter, value)
    betas: tuple[float, ...] = ()
    # How the paper re-drew the dataset's train and test sets (None: the official split),
    # the loader parameters its data needs (e.g. binary labels), and its data in its words.
    split: Resplit | None = field(default=None, hash=False)  # a Resplit holds lists
    dataset_params: tuple[tuple[str, Any], ...] = ()
    data: str = ""  # default: "{n_train:,} train"
    corpus: str = ""  # how its corpus of n_corpus is drawn, e.g. "balanced 500/500"
    all_test: bool = False  # it explains every one of its n_test test examples

    def describe_data(self) -> str:
        return f"{PAPER_DATASETS[self.dataset]} ({self.data or f'{self.n_train:,} train'})"


MNIST_DAE = Protocol("mnist", 60_000, 100, objective="denoising")  # 000 App. C.1
ECG_FEATURES = Protocol(  # 000 App. C.1: train on the normal beats, explain the abnormal ones
    "ecg5000",
    2_919,
    150,
    objective="reconstruction",
    split=Resplit(pool=True, train_labels=[1]),
    data="2,919 normal beats train / 2,081 abnormal test",
)
SIMCLR = Protocol("cifar10", 50_000, 100, objective="simclr")
# Example importance (000 §4.1 and App. B.2): 1,000 training examples for 1,000 test ones;
# Influence Functions' recursion depth is lost in the extracted text (DESIGN.md: 100).
_EXAMPLES = dict(
    n_corpus=1_000, n_test=1_000, method_params=(("influence_functions", "recursion_depth", 100),)
)
MNIST_DAE_EXAMPLES = Protocol("mnist", 60_000, 100, objective="denoising", **_EXAMPLES)
ECG_EXAMPLES = Protocol(  # a random split of all 5,000 beats, labels normal / abnormal
    "ecg5000",
    4_000,
    150,
    objective="reconstruction",
    **_EXAMPLES,
    split=Resplit(pool=True, n_train=4_000, n_test=1_000),
    dataset_params=(("binary", True),),
    data="random 4,000 / 1,000 split, binary labels",
    corpus="balanced 500/500",
    all_test=True,
)
SIMCLR_EXAMPLES = Protocol("cifar10", 50_000, 100, objective="simclr", **_EXAMPLES)
PRETEXT = Protocol("mnist", 60_000, 100, runs=5, n_corpus=1_000, n_test=1_000)  # App. C.2
# 000 §4.3 / App. C.3: 20 VAEs per type and β; 001 App. A.1: 5.
VAE_MNIST = Protocol("mnist", 60_000, 100, runs=20, betas=(1.0, 5.0, 10.0))
VAE_DSPRITES = Protocol("dsprites", 663_552, 100, runs=20, betas=(1.0, 5.0, 10.0))
VAE_MNIST_001 = Protocol("mnist", 60_000, 100, runs=5, betas=(1.0, 5.0, 10.0))
VAE_DSPRITES_001 = Protocol("dsprites", 663_552, 100, runs=5, betas=(1.0, 5.0, 10.0))
ROAR = Protocol("mnist", 60_000, 100)  # App. C.1: "similar to Section 4.1"


def _split(dataset: dict[str, Any]) -> Resplit | None:
    return Resplit.model_validate(dataset["split"]) if dataset.get("split") else None


def _describe_dataset(dataset: dict[str, Any]) -> str:
    name, params = dataset["name"], dataset.get("params") or {}
    kind = ""
    for kinds, label in (
        (SUBSETS, " subset"),
        (RERENDERED, " re-rendering"),
        (STAND_INS, " stand-in"),
    ):
        if name in kinds:
            kind = label
    sizes = " / ".join(
        f"{params[key]:,} {label}"
        for key, label in (("n_train", "train"), ("n_test", "test"))
        if params.get(key) is not None
    )
    notes = [note for note in (sizes, "binary labels" if params.get("binary") else "") if note]
    split = _split(dataset)
    return (
        f"{name}{kind}"
        + (f" ({', '.join(notes)})" if notes else "")
        + (f" re-split: {split.describe()}" if split is not None else "")
    )


def _full_data(dataset: dict[str, Any], protocol: Protocol) -> bool:
    """Our dataset is the paper's, all of it, with its labels and split as the paper drew them."""
    params = dataset.get("params") or {}
    if dataset["name"] != protocol.dataset:
        return False
    if any(params.get(key) != value for key, value in protocol.dataset_params):
        return False
    ours, paper = _split(dataset), protocol.split
    if (ours is None) != (paper is None):
        return False
    if paper is not None:  # the seed of the paper's random split is not stated
        if ours.model_dump(exclude={"seed"}) != paper.model_dump(exclude={"seed"}):
            return False
        # The paper re-drew all of the data: a subset of the loader's sets shrinks its pool.
        return params.get("n_train") is None and params.get("n_test") is None
    n_train = params.get("n_train")
    return n_train is None or n_train >= protocol.n_train


def _test_size(dataset: dict[str, Any]) -> int | None:
    """Our test set's size where run.json states it (a split by labels does not)."""
    split = _split(dataset)
    return (dataset.get("params") or {}).get("n_test") if split is None else split.n_test


def setting_difference(
    run: Run, models: Sequence[str], protocol: Protocol, methods: Sequence[str] = ()
) -> str:
    """What our run does differently from the paper, as ``paper → ours`` items."""
    items: list[str] = []

    def add(item: str) -> None:
        if item not in items:
            items.append(item)

    for model_id in models:
        model, dataset = run.model(model_id), run.dataset_of(model_id)
        if not _full_data(dataset, protocol):
            add(f"data {protocol.describe_data()} → {_describe_dataset(dataset)}")
        recipe = model.get("recipe", {})
        if recipe.get("epochs") != protocol.epochs:
            add(f"epochs {protocol.epochs} → {recipe.get('epochs')}")
        if protocol.objective and recipe.get("objective") != protocol.objective:
            add(f"objective {protocol.objective} → {recipe.get('objective')}")
    seeds = len(run.seeds)
    plural = "s" if seeds != 1 else ""
    if protocol.runs is None:
        add(f"runs not stated → {seeds} seed{plural}")
    elif protocol.runs != seeds:
        add(f"runs {protocol.runs} → {seeds} seed{plural}")
    for model_id in models:
        examples = run.examples_of(model_id)
        corpus, n_test = examples.get("n_corpus"), examples.get("n_test")
        if protocol.n_corpus is not None and corpus != protocol.n_corpus:
            drawn = f" ({protocol.corpus})" if protocol.corpus else ""
            add(f"n_corpus {protocol.n_corpus:,}{drawn} → {corpus or 'all'}")
        if protocol.n_test is None:
            continue
        if not protocol.all_test:
            if n_test != protocol.n_test:
                add(f"n_test {protocol.n_test:,} → {n_test or 'all'}")
        elif n_test is not None or not _full_data(run.dataset_of(model_id), protocol):
            size = _test_size(run.dataset_of(model_id))
            ours = n_test or ("all" if size is None else f"all {size:,}")
            add(f"n_test all {protocol.n_test:,} → {ours}")
    for method, parameter, published in protocol.method_params:
        if method in methods:
            ours = run.method_param(method, parameter)
            if ours != published:
                add(f"{method} {parameter} {published} → {ours}")
    if protocol.betas:
        ours_betas = sorted({float(run.model(m)["params"].get("beta", "nan")) for m in models})
        if ours_betas != sorted(protocol.betas):
            add(f"β {_set(protocol.betas)} → {_set(ours_betas)}")
    return "; ".join(items) or "none"


def _set(values: Sequence[float]) -> str:
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def not_comparable_reason(
    run: Run, models: Sequence[str], protocol: Protocol, numeric: bool
) -> str | None:
    """Why a claim cannot be compared on this run, or None."""
    for model_id in models:
        name = run.dataset_of(model_id)["name"]
        if name in STAND_INS:
            return f"{name} is a stand-in, not {PAPER_DATASETS[STAND_INS[name]]}"
    if not numeric:
        return None
    lacking = []
    for model_id in models:
        if not _full_data(run.dataset_of(model_id), protocol):
            lacking.append(f"full {PAPER_DATASETS[protocol.dataset]}")
        if run.model(model_id).get("recipe", {}).get("epochs", 0) < protocol.epochs:
            lacking.append(f"{protocol.epochs} epochs")
    for model_id in models:
        corpus = run.examples_of(model_id).get("n_corpus")
        if protocol.n_corpus is not None and corpus != protocol.n_corpus:
            lacking.append(f"corpus of {protocol.n_corpus:,}")
    if not lacking:
        return None
    return "a published number needs the paper's " + ", ".join(dict.fromkeys(lacking))
