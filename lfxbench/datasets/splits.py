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
    # Where a generator knows them (dSprites): the factors of variation of every image
    # ([N, n_factors], for evaluation only) and the ground-truth object masks of the test
    # images (shaped like the inputs, for localisation metrics).
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    test_masks: torch.Tensor | None = None
    # Not an init field: `dataclasses.replace` must not carry a stale fingerprint over.
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

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


def balanced_subset(labels: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    """Indices of ``n`` examples with (as near as possible) equal counts per label.

    The paper's example-importance protocol: e.g. 1,000 examples, 100 per class. Labels
    only choose the subset. ``None`` (or ``n`` >= all) keeps every example, in order.
    """
    if n is None or n >= len(labels):
        return torch.arange(len(labels))
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(len(labels), generator=generator)
    classes = labels[shuffled].unique()
    # Round-robin over classes in shuffled order: class c's k-th example gets position k.
    position = torch.empty(len(labels), dtype=torch.long)
    for label in classes:
        members = (labels[shuffled] == label).nonzero().squeeze(1)
        position[members] = torch.arange(len(members))
    rounds = position * len(classes) + torch.searchsorted(classes, labels[shuffled])
    chosen = shuffled[rounds.argsort(stable=True)[:n]]
    return chosen.sort().values
