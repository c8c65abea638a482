"""Label-free Deep-KNN (Papernot & McDaniel, 2018) as the label-free XAI paper runs it."""

from __future__ import annotations

import torch

from lfxbench.evaluation import encode
from lfxbench.explanation import ExampleMethod, TrainingCorpus
from lfxbench.registry import register_method


@register_method("deep_knn")
class DeepKnn(ExampleMethod):
    """Every corpus example scored by inverse latent distance to the explained example."""

    def __init__(self, epsilon: float = 1e-8):
        # The paper drops the top-k indicator: all examples are scored, so the most
        # important are the nearest neighbours whatever k would have been.
        self.epsilon = epsilon

    def fit(self, corpus: TrainingCorpus) -> None:
        self.encoder = corpus.encoder
        self.corpus_latents = encode(corpus.encoder, corpus.inputs, corpus.batch_size)
        self.batch_size = corpus.batch_size

    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        latents = encode(self.encoder, inputs, self.batch_size)
        return 1.0 / (torch.cdist(latents, self.corpus_latents) + self.epsilon)
