"""What every dataset entry returns: train/test tensors, with labels for evaluation only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


@dataclass
class DatasetSplits:
    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    test_inputs: torch.Tensor
    test_labels: torch.Tensor
    description: str = ""
    _fingerprint: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            inputs, labels = getattr(self, f"{split}_inputs"), getattr(self, f"{split}_labels")
            if len(inputs) != len(labels):
                raise ValueError(f"{split}: {len(inputs)} inputs but {len(labels)} labels")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_inputs.shape[1:])

    def fingerprint(self) -> str:
        """Content hash of all four tensors: part of every cache key built on this data."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for tensor in (
                self.train_inputs,
                self.train_labels,
                self.test_inputs,
                self.test_labels,
            ):
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint
