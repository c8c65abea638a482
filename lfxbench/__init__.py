"""lfxbench: benchmark label-free explanation methods of encoders.

The names a plugin author needs: the registration decorators and the base classes.
"""

from lfxbench.evaluation import EvaluationContext, Metric, MetricResult
from lfxbench.explanation import FeatureMethod
from lfxbench.labelfree import LabelFreeAuxiliary, LabelFreeCaptumMethod
from lfxbench.models.base import ZooModel
from lfxbench.registry import register_dataset, register_method, register_metric, register_model

__all__ = [
    "EvaluationContext",
    "FeatureMethod",
    "LabelFreeAuxiliary",
    "LabelFreeCaptumMethod",
    "Metric",
    "MetricResult",
    "ZooModel",
    "register_dataset",
    "register_method",
    "register_metric",
    "register_model",
]
