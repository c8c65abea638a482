"""Any encoder of your own, saved as a TorchScript (``torch.jit.save``) or ``torch.export``
archive: explained as it is, never trained (``checkpoint: FILE`` with ``train: false``).

Such an archive is a program (its graph runs when the encoder does), trusted like a plugin;
zoo checkpoints, in contrast, are state dicts loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lfxbench.errors import LfxbenchError
from lfxbench.models.base import ExplainedOnly
from lfxbench.registry import register_model


class _ModeFixed(nn.Module):
    """An exported module runs in the mode it was exported in: switching the training mode
    (as the engine does before explaining) leaves it alone instead of raising."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.module(inputs)

    def train(self, mode: bool = True) -> _ModeFixed:
        self.training = mode
        return self


@register_model("scripted_encoder")
class ScriptedEncoder(ExplainedOnly):
    """Your own encoder from a TorchScript or torch.export archive (explained, not trained)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Identity()  # replaced by the archive's module in `from_archive`

    @classmethod
    def from_archive(cls, path: Path) -> ScriptedEncoder:
        model = cls()
        try:
            if path.suffix == ".pt2":
                model.encoder = _ModeFixed(torch.export.load(path).module())
            else:
                model.encoder = torch.jit.load(path, map_location="cpu")
        except Exception as error:  # torch raises RuntimeError, ValueError, zipfile errors
            raise LfxbenchError(
                f"{path}: not a TorchScript (torch.jit.save) or torch.export (.pt2) archive "
                f"of an encoder ({type(error).__name__}: {str(error).splitlines()[0]})"
            ) from error
        return model
