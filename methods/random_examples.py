"""The ``random_examples`` reference for example importance."""

from __future__ import annotations

import torch

from lfxbench.methods.base import ExampleMethod, TrainingCorpus
from lfxbench.registry import register_method


@register_method("random_examples")
class RandomExampleImportance(ExampleMethod):
    """Gaussian noise scores over the corpus: the reference every example method must beat."""

    def fit(self, corpus: TrainingCorpus) -> None:
        self.n_corpus = len(corpus.inputs)

    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scores = torch.randn(len(inputs), self.n_corpus)  # CPU generator: same on every device
        return scores.to(inputs.device)
