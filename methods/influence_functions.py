"""Label-free Influence Functions (Koh & Liang, 2017) with the LiSSA inverse-HVP."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from lfxbench.explanation import ExampleMethod, TrainingCorpus
from lfxbench.loss_gradients import EncoderLoss, fixed_randomness
from lfxbench.registry import register_method


@register_method("influence_functions")
class InfluenceFunctions(ExampleMethod):
    """∇L(test)ᵀ H⁻¹ ∇L(train) on the encoder's parameters, H⁻¹ by LiSSA; helpful = high.

    ``L`` is the model's own per-example loss (label-free for autoencoders) and ``H`` the
    Hessian of the mean training loss, both w.r.t. the encoder's parameters only (the rest
    of the model held fixed, eval mode).

    Sign: Koh & Liang's ``I_up,loss(train, test) = −∇L(test)ᵀ H⁻¹ ∇L(train)`` is the change
    of the test loss when the training example is up-weighted, negative for a helpful
    example. The score here is its opposite, ``+∇L(test)ᵀ H⁻¹ ∇L(train)``, so that higher
    means more important / more helpful, like every example method of the suite (and as the
    label-free XAI paper's code computes it). The paper's extra constant factor ``1/n_train``
    is left out: it changes no ranking.

    LiSSA (Agarwal et al., 2016), as in Koh & Liang's and the paper's code: for each
    corpus gradient ``v``, ``h_0 = v``, ``h_{t+1} = v + (1 − damping) h_t − H_t h_t / scale``
    with ``H_t`` the Hessian on a minibatch of ``hessian_batch_size`` examples drawn with
    replacement from ``corpus.train_inputs``; estimate ``h_T / scale`` after
    ``T = recursion_depth`` steps, averaged over ``n_repeats`` independent runs. Its fixed
    point is ``(H + damping · scale · I)⁻¹ v``: the effective damping of the Hessian is
    ``damping × scale`` (1 with the defaults), and the recursion converges when ``scale``
    exceeds the largest eigenvalue of the damped Hessian. For the MNIST autoencoder
    (mean-pixel MSE) the largest eigenvalue was ~1e-5 at initialisation and ~2 after
    training, the most negative ~-0.1 half-way and ~-5e-5 trained: the defaults are stable.
    They are also far from converged (that takes ``T`` of several times ``scale``): with the
    paper's settings (depth 100, scale 1e3, damping 1e-3, batch 200) the estimate is
    ``≈ (T / scale) v`` plus a small curvature correction (cosine 0.999 with ``v`` on a
    trained MNIST autoencoder), i.e. close to a gradient dot product at the final weights.
    Raise ``recursion_depth`` (and lower ``scale``) for a real inverse.

    Cost: the LiSSA runs in ``fit`` on the corpus side (the Hessian is symmetric), so
    ``attribute`` is one gradient pass and one matrix product. The same minibatches (and
    the same noise draws of a stochastic loss) serve every block of ``lissa_batch_size``
    corpus gradients, which all go through each Hessian in one batched double backward:
    the result does not depend on the block size. Minibatches come from a generator seeded
    from torch's global RNG: ``torch.manual_seed`` makes the scores repeatable. Each step
    costs ~ ``lissa_batch_size × hessian_batch_size`` double-backward examples: ~9 s for
    256 × 200 on 2 CPU cores (MNIST autoencoder), so the paper's 1,000 × depth 100 wants a GPU.

    ``batch_size``: examples per vectorised gradient chunk (``None``: the corpus's).
    """

    needs_per_example_loss = True

    def __init__(
        self,
        damping: Annotated[float, Field(ge=0, lt=1)] = 1e-3,
        scale: Annotated[float, Field(gt=0)] = 1e3,
        recursion_depth: Annotated[int, Field(ge=1)] = 100,
        n_repeats: Annotated[int, Field(ge=1)] = 1,
        hessian_batch_size: Annotated[int, Field(ge=1)] = 200,
        lissa_batch_size: Annotated[int, Field(ge=1)] | None = None,
        batch_size: Annotated[int, Field(ge=1)] | None = None,
    ):
        self.damping = damping
        self.scale = scale
        self.recursion_depth = recursion_depth
        self.n_repeats = n_repeats
        self.hessian_batch_size = hessian_batch_size
        self.lissa_batch_size = lissa_batch_size
        self.batch_size = batch_size
        self._loss: EncoderLoss | None = None
        self._corpus_ihvp: torch.Tensor | None = None
        self._chunk = 256

    def fit(self, corpus: TrainingCorpus) -> None:
        self._chunk = self.batch_size or corpus.batch_size
        loss = EncoderLoss(corpus.model, corpus.recipe)
        corpus_gradients = loss.per_example_gradients(corpus.inputs, corpus.labels, self._chunk)
        self._corpus_ihvp = self.inverse_hvp(loss, corpus, corpus_gradients)
        self._loss = loss

    def inverse_hvp(
        self, loss: EncoderLoss, corpus: TrainingCorpus, vectors: torch.Tensor
    ) -> torch.Tensor:
        """LiSSA estimate of ``(H + damping·scale·I)⁻¹ v`` for every row ``v`` of ``vectors``."""
        n_train = len(corpus.train_inputs)
        if n_train == 0:
            raise ValueError("influence_functions needs training examples for the Hessian")
        # One draw from the global RNG seeds everything LiSSA samples.
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
        samples = torch.randint(
            n_train,
            (self.n_repeats, self.recursion_depth, self.hessian_batch_size),
            generator=generator,
        )
        noise_seeds = torch.randint(
            2**62, (self.n_repeats, self.recursion_depth), generator=generator
        )
        train_device = corpus.train_inputs.device
        block_size = self.lissa_batch_size or corpus.batch_size
        estimates = []
        for block in vectors.split(block_size):
            total = torch.zeros_like(block)
            for repeat in range(self.n_repeats):
                h = block.clone()
                for step in range(self.recursion_depth):
                    index = samples[repeat, step].to(train_device)
                    with fixed_randomness(int(noise_seeds[repeat, step]), train_device):
                        curvature = loss.hvp(
                            corpus.train_inputs[index], corpus.train_labels[index], h
                        )
                    h = block + (1 - self.damping) * h - curvature / self.scale
                total += h / self.scale
            estimates.append(total / self.n_repeats)
        if not estimates:
            return vectors.clone()
        return torch.cat(estimates)

    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self._loss is None or self._corpus_ihvp is None:
            raise RuntimeError("InfluenceFunctions.attribute called before fit")
        test_gradients = self._loss.per_example_gradients(inputs, labels, self._chunk)
        return test_gradients @ self._corpus_ihvp.T
