"""Base classes of metrics: declared direction, applicability and scope, one template method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import nn

from lfxbench.baselines import Baseline
from lfxbench.batching import encode
from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe
from lfxbench.subsets import SubsetOutputs, WantedSubsets

# The cell's method on another encoder: (encoder, inputs, labels of the inputs or None).
ExplainWith = Callable[[nn.Module, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class EvaluationContext:
    """Everything a cell-scoped metric may look at; tensors already on ``device``.

    For a feature method ``attributions`` is shaped like ``inputs``; for a per-unit method
    ``[len(inputs), d_H, *inputs.shape[1:]]`` (one map per latent unit); for an example
    method ``[len(inputs), len(corpus_labels)]``, one score per (explained, corpus) pair.
    """

    encoder: nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    attributions: torch.Tensor
    baseline: Baseline
    batch_size: int
    device: torch.device
    seed: int
    method_kind: Literal["feature", "unit", "example"] = "feature"
    corpus_labels: torch.Tensor | None = None
    # For the mean baseline's reference (the CPU copies are enough).
    train_inputs: torch.Tensor | None = None
    train_labels: torch.Tensor | None = None
    # For metrics that retrain (ROAR): the trained model with its recipe, the explained
    # method applied to any inputs, and a fresh model of the same zoo entry trained on
    # given training inputs (cached by the engine under `tag`).
    model: ZooModel | None = None
    recipe: Recipe | None = None
    # `explain(inputs, labels)`: the labels of `inputs` (None where there are none) reach
    # methods that need them (COCOA's same-class corpus); pass the labels of the examples
    # the inputs stand for (a noise input explained in place of x: x's labels).
    explain: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None
    retrain: Callable[[torch.Tensor, str], ZooModel] | None = None
    # The cell's method applied to another encoder (e.g. one with randomised weights):
    # `explain_with(encoder, inputs, labels)`, labels as for `explain`.
    explain_with: ExplainWith | None = None
    # For metrics that retrain without some training examples (the corpus is then the whole
    # training set): `subset_outputs(wanted)`, the outputs on `inputs` of models retrained
    # on the random subsets a `SubsetSpec` draws (shared by every method of the model and
    # seed) or on `ChosenSubsets` for this cell (`lfxbench.subsets`), cached by the engine.
    subset_outputs: Callable[[WantedSubsets], SubsetOutputs] | None = None
    # Ground-truth object masks of `inputs` where the dataset knows them (procedural
    # dSprites): bool, shaped like `inputs`.
    masks: torch.Tensor | None = None
    _baseline_fns: dict[Baseline, Callable[[torch.Tensor], torch.Tensor]] = field(
        default_factory=dict, repr=False
    )

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        return encode(self.encoder, inputs, self.batch_size)

    def baseline_of(self, inputs: torch.Tensor, baseline: Baseline | None = None) -> torch.Tensor:
        """The baselines of ``inputs``: the model entry's, or another (a metric's own)."""
        chosen = baseline or self.baseline
        if chosen not in self._baseline_fns:  # a mean baseline's reference, computed once
            self._baseline_fns[chosen] = chosen.bind(self.train_inputs, self.train_labels)
        return self._baseline_fns[chosen](inputs)


@dataclass
class MetricResult:
    """The leaderboard value, plus optional curve points ``(x, y)``, per-example samples
    (group -> values, for box plots) and named details."""

    value: float
    curve: list[tuple[float, float]] = field(default_factory=list)
    curve_axes: tuple[str, str] = ("x", "y")
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, float] = field(default_factory=dict)


class Metric(ABC):
    """Scores one explanation. Subclasses declare what the engine must know.

    ``explains``: the kind of method it applies to (``any`` for both); ``direction``:
    whether a higher value is better; ``scope``: ``cell`` (one model x method x seed);
    ``needs_object_masks``: it scores against ground-truth object masks, so only models of
    a dataset that declares ``provides_object_masks`` can be scored (checked at validation);
    ``retrains_models``: it trains fresh models with the model's recipe (which a model
    without a training objective lacks); ``needs_whole_training_set``: it retrains without
    some corpus examples (``subsets_to_retrain``), so the corpus must be the training set.
    """

    explains: ClassVar[Literal["feature", "unit", "example", "any"]] = "feature"
    direction: ClassVar[Literal["higher", "lower"]]
    scope: ClassVar[Literal["cell", "pair"]] = "cell"
    needs_object_masks: ClassVar[bool] = False
    retrains_models: ClassVar[bool] = False
    needs_whole_training_set: ClassVar[bool] = False
    DECLARED: ClassVar[dict[str, tuple[object, ...]]] = {
        "explains": ("feature", "unit", "example", "any"),
        "direction": ("higher", "lower"),
        "scope": ("cell",),
        "needs_object_masks": (True, False),
    }

    def __call__(self, context: EvaluationContext) -> MetricResult:
        if context.method_kind == "feature":
            expected = tuple(context.inputs.shape)
        elif context.method_kind == "unit":
            n_units = context.attributions.shape[1] if context.attributions.dim() > 1 else -1
            expected = (len(context.inputs), n_units, *context.inputs.shape[1:])
        else:
            assert context.corpus_labels is not None
            expected = (len(context.inputs), len(context.corpus_labels))
        if tuple(context.attributions.shape) != expected:
            raise ValueError(
                f"{type(self).__name__} needs {context.method_kind} attributions shaped "
                f"{expected}, got {tuple(context.attributions.shape)}"
            )
        with torch.no_grad():
            return self.evaluate(context)

    @abstractmethod
    def evaluate(self, context: EvaluationContext) -> MetricResult: ...

    def subsets_to_retrain(self, scores: torch.Tensor) -> list[WantedSubsets]:
        """The subset models ``evaluate`` will ask ``context.subset_outputs`` for, given an
        example method's ``scores`` (``[n_test, n_train]``): the engine trains those of
        every method of a model and seed side by side before their cells run. A metric with
        ``needs_whole_training_set`` overrides it."""
        return []


class PairwiseMetric(ABC):
    """Compares two explanations of the same examples: of two models (``across: models``,
    same method) or of two methods (``across: methods``, same model).

    Subclasses take ``across`` as a parameter so the suite chooses the comparison.
    """

    explains: ClassVar[Literal["feature", "unit", "example", "any"]] = "any"
    direction: ClassVar[Literal["higher", "lower"]]
    scope: ClassVar[Literal["cell", "pair"]] = "pair"
    DECLARED: ClassVar[dict[str, tuple[object, ...]]] = {
        "explains": ("feature", "unit", "example", "any"),
        "direction": ("higher", "lower"),
        "scope": ("pair",),
    }

    def __call__(self, first: torch.Tensor, second: torch.Tensor) -> MetricResult:
        if first.shape != second.shape:
            raise ValueError(
                f"{type(self).__name__} compares explanations of the same examples; got "
                f"shapes {tuple(first.shape)} and {tuple(second.shape)}"
            )
        with torch.no_grad():
            return self.compare(first, second)

    @abstractmethod
    def compare(self, first: torch.Tensor, second: torch.Tensor) -> MetricResult: ...
