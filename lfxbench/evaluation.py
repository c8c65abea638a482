"""Base class of metrics: declared direction, applicability and scope, one template method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import nn

from lfxbench.baselines import Baseline


@dataclass
class EvaluationContext:
    """Everything a cell-scoped metric may look at; tensors already on ``device``."""

    encoder: nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    attributions: torch.Tensor
    baseline: Baseline
    train_mean: torch.Tensor
    batch_size: int
    device: torch.device
    seed: int

    @torch.no_grad()
    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Latent vectors ``[N, d]`` of any number of inputs, in chunks of ``batch_size``."""
        chunks = [
            self.encoder(inputs[start : start + self.batch_size]).flatten(1)
            for start in range(0, len(inputs), self.batch_size)
        ]
        return torch.cat(chunks)

    def baseline_of(self, inputs: torch.Tensor, baseline: Baseline | None = None) -> torch.Tensor:
        return (baseline or self.baseline)(inputs, self.train_mean)


@dataclass
class MetricResult:
    """The leaderboard value, plus optional curve points ``(x, y)`` and named details."""

    value: float
    curve: list[tuple[float, float]] = field(default_factory=list)
    curve_axes: tuple[str, str] = ("x", "y")
    details: dict[str, float] = field(default_factory=dict)


class Metric(ABC):
    """Scores one kind of explanation. Subclasses declare what the engine must know.

    ``explains``: the kind of method it applies to; ``direction``: whether a higher value
    is better; ``scope``: ``cell`` (one model x method x seed at a time).
    """

    explains: ClassVar[Literal["feature", "example"]] = "feature"
    direction: ClassVar[Literal["higher", "lower"]]
    scope: ClassVar[Literal["cell"]] = "cell"

    def __call__(self, context: EvaluationContext) -> MetricResult:
        if context.attributions.shape != context.inputs.shape:
            raise ValueError(
                f"{type(self).__name__} needs attributions shaped like the inputs "
                f"{tuple(context.inputs.shape)}, got {tuple(context.attributions.shape)}"
            )
        with torch.no_grad():
            return self.evaluate(context)

    @abstractmethod
    def evaluate(self, context: EvaluationContext) -> MetricResult: ...
