"""Label-free Deep-KNN (Papernot & McDaniel, 2018) as the label-free XAI paper runs it."""

from __future__ import annotations

from typing import Literal

import torch

from lfxbench.batching import encode
from lfxbench.methods.base import ExampleMethod, TrainingCorpus
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

    # Scores, not a function to differentiate: without autograd the corpus latents hold no
    # graph (and with it every corpus activation) for as long as the method lives.
    @torch.no_grad()
    def fit(self, corpus: TrainingCorpus) -> None:
        self.encoder = corpus.encoder
        self.corpus_latents = encode(corpus.encoder, corpus.inputs, corpus.batch_size)
        self.batch_size = corpus.batch_size

    @torch.no_grad()
    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        latents = encode(self.encoder, inputs, self.batch_size)
        # In place on cdist's fresh output: one [B, n_corpus] tensor instead of three.
        distances = torch.cdist(latents, self.corpus_latents)
        if self.kernel == "inverse_squared_distance":
            distances.square_()
        return distances.add_(self.epsilon).reciprocal_()
