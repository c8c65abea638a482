"""A suite's settings, one line each, defaults filled in: what ``lfxbench validate`` prints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lfxbench.baselines import Baseline
from lfxbench.recipe import Recipe
from lfxbench.suite import Suite


def _baseline_text(baseline: Baseline) -> str:
    if baseline.kind == "blur":
        return f"blur(kernel_size={baseline.kernel_size}, sigma={baseline.sigma})"
    if baseline.kind == "mean":
        return "mean" + ("" if baseline.label is None else f"(label={baseline.label})")
    return baseline.kind


def _inline(params: dict[str, Any]) -> str:
    def shown(value: Any) -> Any:
        if isinstance(value, Baseline):
            return _baseline_text(value)
        if isinstance(value, BaseModel):
            return value.model_dump()
        return value

    return ", ".join(f"{name}={shown(value)}" for name, value in params.items()) or "defaults"


def describe_suite(suite: Suite) -> list[str]:
    """The settings a suite runs, one line each, defaults filled in (``lfxbench validate``)."""
    default_recipe = Recipe()
    lines = [f"seeds {suite.seeds}, batch_size {suite.batch_size}, device {suite.device}"]
    lines.append(f"examples: {_inline(suite.examples.model_dump())}")
    for entry in suite.datasets:
        split = f"; split: {entry.split.describe()}" if entry.split else ""
        lines.append(f"dataset {entry.id}: {entry.name}({_inline(entry.params)}){split}")
    for model in suite.models:
        recipe = {
            name: value
            for name, value in model.recipe.model_dump().items()
            if name == "objective" or value != getattr(default_recipe, name)
        }
        lines.append(
            f"model {model.id}: {model.name}({_inline(model.params)}) on {model.dataset}; "
            f"recipe {_inline(recipe)} (others: the defaults); "
            f"baseline {_baseline_text(model.baseline)}"
            + (f"; examples {_inline(model.examples.model_dump())}" if model.examples else "")
        )
    for method in suite.methods:
        lines.append(f"method {method.id}: {method.name}({_inline(method.params)})")
    for metric in suite.metrics:
        params = {
            name: ("the model's own" if name == "baseline" and value is None else value)
            for name, value in metric.params.items()
        }
        only = f" on {', '.join(metric.models)}" if metric.models else ""
        lines.append(f"metric {metric.id}: {metric.name}({_inline(params)}){only}")
    return lines
