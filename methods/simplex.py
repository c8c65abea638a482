"""Label-free SimplEx (Crabbé et al., 2021): explain a latent by a mixture of corpus latents."""

from __future__ import annotations

import torch

from lfxbench.evaluation import encode
from lfxbench.explanation import ExampleMethod, TrainingCorpus
from lfxbench.registry import register_method


@register_method("simplex")
class SimplEx(ExampleMethod):
    """Corpus weights on the simplex that best reconstruct the explained latent vector."""

    def __init__(self, n_steps: int = 2000, lr: float = 0.05):
        self.n_steps = n_steps
        self.lr = lr

    def fit(self, corpus: TrainingCorpus) -> None:
        self.encoder = corpus.encoder
        self.batch_size = corpus.batch_size
        self.corpus_latents = encode(corpus.encoder, corpus.inputs, corpus.batch_size)

    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        latents = encode(self.encoder, inputs, self.batch_size)
        # One softmax-parametrised weight vector per explained example, all optimised at
        # once: the losses are independent, so the summed loss has the per-example gradients.
        logits = torch.zeros(
            len(latents), len(self.corpus_latents), dtype=latents.dtype, device=latents.device
        )
        logits.requires_grad_()
        optimizer = torch.optim.Adam([logits], lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.n_steps):
                reconstruction = logits.softmax(dim=1) @ self.corpus_latents
                loss = (reconstruction - latents).pow(2).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return logits.detach().softmax(dim=1)
