"""lfxbench: benchmark label-free explanation methods of encoders.

``evaluate``, ``run`` and ``Run`` (from Python: :mod:`lfxbench.api`) and what a plugin
author needs (the registration decorators and the base classes), imported on
first use so that ``lfxbench --help`` and ``lfxbench list`` do not load torch and Captum.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = importlib.metadata.version("lfxbench")
except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
    __version__ = "0+unknown"

_HOMES = {
    "Run": "lfxbench.api",
    "evaluate": "lfxbench.api",
    "run": "lfxbench.api",
    "EvaluationContext": "lfxbench.metrics.base",
    "Metric": "lfxbench.metrics.base",
    "MetricResult": "lfxbench.metrics.base",
    "PairwiseMetric": "lfxbench.metrics.base",
    "ExampleMethod": "lfxbench.methods.base",
    "FeatureMethod": "lfxbench.methods.base",
    "TrainingCorpus": "lfxbench.methods.base",
    "LabelFreeAuxiliary": "lfxbench.methods.labelfree",
    "LabelFreeCaptumMethod": "lfxbench.methods.labelfree",
    "ZooModel": "lfxbench.models.base",
    "register_dataset": "lfxbench.registry",
    "register_method": "lfxbench.registry",
    "register_metric": "lfxbench.registry",
    "register_model": "lfxbench.registry",
}
__all__ = [
    "EvaluationContext",
    "ExampleMethod",
    "FeatureMethod",
    "LabelFreeAuxiliary",
    "LabelFreeCaptumMethod",
    "Metric",
    "MetricResult",
    "PairwiseMetric",
    "Run",
    "TrainingCorpus",
    "ZooModel",
    "evaluate",
    "register_dataset",
    "register_method",
    "register_metric",
    "register_model",
    "run",
]

if TYPE_CHECKING:
    from lfxbench.api import Run, evaluate, run
    from lfxbench.methods.base import ExampleMethod, FeatureMethod, TrainingCorpus
    from lfxbench.methods.labelfree import LabelFreeAuxiliary, LabelFreeCaptumMethod
    from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult, PairwiseMetric
    from lfxbench.models.base import ZooModel
    from lfxbench.registry import (
        register_dataset,
        register_method,
        register_metric,
        register_model,
    )


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lfxbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # imported once
    return value
