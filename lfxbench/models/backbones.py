"""Image backbones of torchvision and timm (ResNet, ViT, ConvNeXt, ...) as encoders: the
pooled feature vector, i.e. the network without its final classifier. Explained with the
weights of a local ``checkpoint:`` (or the seed's random initial weights), never trained.

Optional: install the torchvision (and timm) build that matches your torch, e.g.
``pip install 'lfxbench[backbones]'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, ClassVar

from torch import nn

from lfxbench.errors import LfxbenchError
from lfxbench.models.base import ExplainedOnly
from lfxbench.registry import register_model


def import_library(name: str) -> ModuleType:
    """``name`` imported, or a clear error (torchvision built for another torch fails with a
    RuntimeError, not an ImportError)."""
    try:
        return importlib.import_module(name)
    except Exception as error:
        raise LfxbenchError(
            f"the {name}_backbone models need {name}, which cannot be imported "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            f"install the {name} build that matches your torch"
        ) from error


def without_classifier(network: nn.Module) -> tuple[nn.Module, str]:
    """``network`` with its final ``nn.Linear`` (the classifier: ``fc``, ``heads.head``,
    ``classifier.2`` ...) replaced by the identity, and that layer's name."""
    linears = [name for name, module in network.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise LfxbenchError(f"{type(network).__name__} has no linear classifier to remove")
    parent_name, _, attribute = linears[-1].rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    setattr(parent, attribute, nn.Identity())
    return network, linears[-1]


class PooledBackbone(ExplainedOnly):
    """A classification network without its classifier, explained as it is."""

    random_weights_allowed: ClassVar[bool] = True

    def __init__(self, network: nn.Module, classifier: str):
        super().__init__()
        self.encoder, self.classifier = network, classifier

    def state_dict_from_checkpoint(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint of the whole network (as the library saves it, classifier included)
        or of this model: the classifier's weights dropped, the names this model's."""
        # Not decided by an `encoder.` prefix: torchvision's ViT has a submodule of that name.
        if state_dict.keys() == self.state_dict().keys():
            return state_dict
        dropped = f"{self.classifier}."
        return {
            f"encoder.{key}": value
            for key, value in state_dict.items()
            if not key.startswith(dropped)
        }


@register_model("torchvision_backbone")
class TorchvisionBackbone(PooledBackbone):
    """A torchvision classification network (``torchvision.models.list_models()``) as an
    encoder: its features before the final linear layer."""

    def __init__(self, architecture: str = "resnet18"):
        models = import_library("torchvision").models
        if architecture not in models.list_models(module=models):
            raise LfxbenchError(
                f"{architecture!r} is not a torchvision classification model; see "
                "torchvision.models.list_models(module=torchvision.models)"
            )
        super().__init__(*without_classifier(models.get_model(architecture, weights=None)))


@register_model("timm_backbone")
class TimmBackbone(PooledBackbone):
    """A timm network (``timm.list_models()``) as an encoder: its pooled features
    (``num_classes=0``)."""

    def __init__(self, architecture: str = "resnet18"):
        timm = import_library("timm")
        if not timm.is_model(architecture):
            raise LfxbenchError(f"{architecture!r} is not a timm model; see timm.list_models()")
        network = timm.create_model(architecture, pretrained=False, num_classes=0)
        super().__init__(network, network.pretrained_cfg.get("classifier", "head"))
