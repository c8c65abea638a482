"""lfxbench: benchmark label-free explanation methods of encoders.

The names a plugin author needs: the registration decorators and the base classes.
"""

from lfxbench.methods.base import ExampleMethod, FeatureMethod, TrainingCorpus
from lfxbench.methods.labelfree import LabelFreeAuxiliary, LabelFreeCaptumMethod
from lfxbench.metrics.base import EvaluationContext, Metric, MetricResult, PairwiseMetric
from lfxbench.models.base import ZooModel
from lfxbench.registry import register_dataset, register_method, register_metric, register_model

__all__ = [
    "EvaluationContext",
    "ExampleMethod",
    "FeatureMethod",
    "LabelFreeAuxiliary",
    "LabelFreeCaptumMethod",
    "Metric",
    "MetricResult",
    "PairwiseMetric",
    "TrainingCorpus",
    "ZooModel",
    "register_dataset",
    "register_method",
    "register_metric",
    "register_model",
]
