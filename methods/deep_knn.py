"""Label-free Deep-KNN (Papernot & McDaniel, 2018) as the label-free XAI paper runs it."""

from __future__ import annotations

from typing import Literal

import torch

from lfxbench.evaluation import encode
from lfxbench.explanation import ExampleMethod, TrainingCorpus
from lfxbench.registry import register_method


@register_method("deep_knn")
class DeepKnn(ExampleMethod):
    """Every corpus example scored by a kernel of its latent distance to the explained one.

    ``kernel``: ``inverse_distance`` scores ``1 / (|f(x) - f(c)| + epsilon)``, what the
    paper's text says ("we replaced the kernel function by an inverse distance", App. B.2);
    ``inverse_squared_distance`` scores ``1 / (|f(x) - f(c)|^2 + epsilon)``, what its
    reference code computes (``NearestNeighbours`` in ``lfxai/explanations/examples.py``:
    ``1 / sum((h - h_train)^2)``). Both rank the corpus alike, so similarity rates agree;
    the Pearson agreement of the pretext study does not, and the published pretext tables
    (paper Table 2, reproduction Table 3) come from the code, i.e. the squared kernel.
    """

    def __init__(
        self,
        kernel: Literal["inverse_distance", "inverse_squared_distance"] = "inverse_distance",
        epsilon: float = 1e-8,
    ):
        # The paper drops the top-k indicator: all examples are scored, so the most
        # important are the nearest neighbours whatever k would have been.
        self.kernel = kernel
        self.epsilon = epsilon

    def fit(self, corpus: TrainingCorpus) -> None:
        self.encoder = corpus.encoder
        self.corpus_latents = encode(corpus.encoder, corpus.inputs, corpus.batch_size)
        self.batch_size = corpus.batch_size

    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        latents = encode(self.encoder, inputs, self.batch_size)
        distances = torch.cdist(latents, self.corpus_latents)
        if self.kernel == "inverse_squared_distance":
            distances = distances.square()
        return 1.0 / (distances + self.epsilon)
