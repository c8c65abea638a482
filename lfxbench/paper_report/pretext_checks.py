"""The pretext study's checks (000 §4.2, 001 Table 3): correlations of explanations
between encoders trained on different pretext tasks, against the papers' bands, groups,
ranges and published numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lfxbench.paper_report.checks import Check, Finding, OrderingCheck, fmt, mean_std, seed_count
from lfxbench.paper_report.runs import Run

AUTOENCODERS = ("reconstruction", "denoising", "inpainting")
PRETEXT_MODELS = (*AUTOENCODERS, "classification")
SHORT = {"reconstruction": "Rec", "denoising": "Den", "inpainting": "Inp", "classification": "Cls"}

WEAK = 0.3  # the papers' correlation bands: weak |r| < WEAK, moderate WEAK <= r < STRONG
STRONG = 0.7
COMPARABLE = 0.1  # "comparable" groups of pairs: means within this
RANGE_SLACK = 0.05  # a published range, widened by about twice the table's typical std
NUMBER_FLOOR = 0.02  # the table prints two decimals


def _pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]


def _pair_name(method: str, pair: tuple[str, str]) -> str:
    return f"{method} {SHORT.get(pair[0], pair[0])}–{SHORT.get(pair[1], pair[1])}"


@dataclass(frozen=True)
class PairBand(OrderingCheck):
    """Every cross-task correlation of the methods inside [low, high)."""

    study: str
    methods_: tuple[str, ...]
    low: float
    high: float
    metric: str = "pearson_agreement"
    statement: str = ""

    def models(self, run: Run) -> list[str]:
        return list(PRETEXT_MODELS)

    def methods(self) -> tuple[str, ...]:
        return self.methods_

    def series(self, run: Run) -> dict[str, pd.Series]:
        return {
            _pair_name(method, pair): run.pair_values(method, *pair, self.metric)
            for method in self.methods_
            for pair in _pairs(PRETEXT_MODELS)
        }

    def failures(self, values: dict[str, float]) -> list[str]:
        return [f"{name} {fmt(v)}" for name, v in values.items() if not (self.low <= v < self.high)]

    def describe(self, series: dict[str, pd.Series]) -> str:
        parts = []
        for method in self.methods_:
            means = [s.mean() for name, s in series.items() if name.startswith(f"{method} ")]
            parts.append(f"{method} {fmt(min(means))}–{fmt(max(means))} over {len(means)} pairs")
        return ", ".join(parts)


@dataclass(frozen=True)
class PairGroups(OrderingCheck):
    """Autoencoder–classifier correlations against autoencoder–autoencoder ones:
    ``comparable`` (means within COMPARABLE) or ``lower`` (every pair below every pair)."""

    study: str
    method: str
    relation: str  # "comparable" | "lower"
    metric: str = "pearson_agreement"
    statement: str = ""

    def models(self, run: Run) -> list[str]:
        return list(PRETEXT_MODELS)

    def methods(self) -> tuple[str, ...]:
        return (self.method,)

    def series(self, run: Run) -> dict[str, pd.Series]:
        return {
            _pair_name(self.method, pair): run.pair_values(self.method, *pair, self.metric)
            for pair in _pairs(PRETEXT_MODELS)
        }

    @staticmethod
    def _split(values: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        with_classifier = [v for name, v in values.items() if name.endswith("Cls")]
        between_autoencoders = [v for name, v in values.items() if not name.endswith("Cls")]
        return between_autoencoders, with_classifier

    def failures(self, values: dict[str, float]) -> list[str]:
        autoencoders, classifier = self._split(values)
        if self.relation == "comparable":
            gap = sum(classifier) / len(classifier) - sum(autoencoders) / len(autoencoders)
            return [] if abs(gap) <= COMPARABLE else [f"group means differ by {gap:+.3g}"]
        if max(classifier) < min(autoencoders):
            return []
        return [
            f"AE–classifier up to {fmt(max(classifier))} ≥ AE–AE down to {fmt(min(autoencoders))}"
        ]

    def describe(self, series: dict[str, pd.Series]) -> str:
        autoencoders, classifier = self._split({n: s.mean() for n, s in series.items()})
        return ", ".join(
            f"{label} {fmt(min(group))}–{fmt(max(group))} (mean {fmt(sum(group) / len(group))})"
            for label, group in (("AE–AE", autoencoders), ("AE–classifier", classifier))
        )


def number_tolerance(published_std: float, our_std: float) -> float:
    return max(NUMBER_FLOOR, 2 * math.hypot(published_std, our_std))


@dataclass(frozen=True)
class PairValue(Check):
    """A published mean ± std of one cross-task correlation (001 Table 3)."""

    study: str
    method: str
    first: str
    second: str
    mean: float
    std: float
    metric: str = "pearson_agreement"
    numeric: bool = True

    def models(self, run: Run) -> list[str]:
        return [self.first, self.second]

    def methods(self) -> tuple[str, ...]:
        return (self.method,)

    def evaluate(self, run: Run) -> Finding:
        values = run.pair_values(self.method, self.first, self.second, self.metric)
        ours_std = values.std(ddof=1) if len(values) > 1 else 0.0
        tolerance = number_tolerance(self.std, ours_std)
        gap = values.mean() - self.mean
        holds = abs(gap) <= tolerance
        return Finding(
            f"{mean_std(values)} ({seed_count({'': values})})",
            holds,
            f"|Δ| = {abs(gap):.2g} {'≤' if holds else '>'} {tolerance:.2g}",
        )


@dataclass(frozen=True)
class PairRange(Check):
    """A published range of the cross-task correlations (001 §4.1)."""

    study: str
    method: str
    low: float
    high: float
    metric: str = "pearson_agreement"
    numeric: bool = True

    def models(self, run: Run) -> list[str]:
        return list(PRETEXT_MODELS)

    def methods(self) -> tuple[str, ...]:
        return (self.method,)

    def evaluate(self, run: Run) -> Finding:
        means = [
            run.pair_values(self.method, *pair, self.metric).mean()
            for pair in _pairs(PRETEXT_MODELS)
        ]
        low, high = self.low - RANGE_SLACK, self.high + RANGE_SLACK
        holds = low <= min(means) and max(means) <= high
        return Finding(
            f"{fmt(min(means))}–{fmt(max(means))} over {len(means)} pairs (seed means)",
            holds,
            f"{'inside' if holds else 'outside'} [{low:.2f}, {high:.2f}]",
        )
