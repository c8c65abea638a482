"""Label-free Influence Functions (Koh & Liang, 2017): LiSSA, Krylov (Lanczos) or exact."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from lfxbench.loss_gradients import EncoderLoss, fixed_randomness
from lfxbench.methods.base import ExampleMethod, TrainingCorpus
from lfxbench.registry import register_method

# A dense Hessian of more encoder parameters than this is refused by ``solver: exact``
# (4,096² float32 is 64 MiB; the paper's MNIST encoder's 43,428² would be 7.5 GB).
EXACT_MAX_PARAMETERS = 4096


def lissa_polynomial(
    eigenvalues: torch.Tensor, damping: float, scale: float, depth: int
) -> torch.Tensor:
    """``p(λ)``: what LiSSA's recursion does to an eigenvector of ``H`` with eigenvalue λ.

    From ``h_0 = v``, ``h_{t+1} = v + (1 − damping) h_t − H h_t / scale``, the estimate
    ``h_T / scale`` is ``p(H) v`` with ``p(λ) = Σ_{k=0..T} a(λ)^k / scale`` and
    ``a(λ) = 1 − damping − λ / scale``: ``(1 − a^{T+1}) / (λ + damping·scale)``, which tends
    to ``1 / (λ + damping·scale)`` only when ``|a| < 1`` and ``T`` is large.
    """
    a = (1 - damping) - eigenvalues.double() / scale
    powers = torch.arange(depth + 1, dtype=torch.float64, device=eigenvalues.device)
    # The plain power sum: exact for every a (also a = 1, where the closed form is 0/0).
    return (a[:, None] ** powers).sum(dim=1) / scale


@register_method("influence_functions")
class InfluenceFunctions(ExampleMethod):
    """∇L(test)ᵀ H⁻¹ ∇L(train) on the encoder's parameters; helpful = high.

    ``L`` is the model's own per-example loss (label-free for autoencoders) and ``H`` the
    Hessian of the mean training loss, both w.r.t. the encoder's parameters only (the rest
    of the model held fixed, eval mode).

    Sign: Koh & Liang's ``I_up,loss(train, test) = −∇L(test)ᵀ H⁻¹ ∇L(train)`` is the change
    of the test loss when the training example is up-weighted, negative for a helpful
    example. The score here is its opposite, so that higher means more helpful, like every
    example method of the suite (and as the label-free XAI paper's code computes it). The
    paper's constant factor ``1/n_train`` is left out: it changes no ranking.

    What replaces ``H⁻¹`` (``target``) and how it is computed (``solver``):

    * ``solver: lissa`` (Agarwal et al., 2016), as in Koh & Liang's and the paper's code:
      for each corpus gradient ``v``, ``h_0 = v``,
      ``h_{t+1} = v + (1 − damping) h_t − H_t h_t / scale`` with ``H_t`` the Hessian on a
      minibatch of ``hessian_batch_size`` training examples drawn with replacement, the
      estimate ``h_T / scale`` after ``T = recursion_depth`` steps, averaged over
      ``n_repeats`` runs. Its fixed point is ``(H + damping·scale·I)⁻¹ v``, reached only
      when ``T`` is several times ``scale / (λ_min + damping·scale)``; at the paper's
      settings (depth 100, scale 1e3, damping 1e-3) the estimate is the polynomial
      ``p(H) v`` of :func:`lissa_polynomial`, close to ``(T / scale) v``. The minibatches
      are independent, so the estimate's expectation is ``p(H)`` of the *full* training
      Hessian. Cost: ``T × n_repeats × n_corpus`` vector-Hessian products over
      ``hessian_batch_size`` examples each (a double backward of ``block ×
      hessian_batch_size`` examples per step and block of vectors): linear in the corpus.
      The vectors go through each Hessian in blocks sized to ``memory_budget_mb``
      (or ``lissa_batch_size``); the result does not depend on the block size.
    * ``solver: krylov``: ``rank`` Lanczos iterations (full re-orthogonalisation) on the
      Hessian of one fixed set of ``hessian_batch_size`` training examples drawn without
      replacement (default: all of them) give Ritz pairs ``(θ_i, u_i)``; a function
      ``φ`` of ``H`` is applied as ``φ(0) v + Σ_i (φ(θ_i) − φ(0)) u_i u_iᵀ v``: exact on the
      Krylov space, ``H`` taken as 0 on its complement (where a trained model's Hessian
      is nearly flat). ``target: lissa`` takes ``φ = p``, LiSSA's own polynomial at
      ``recursion_depth`` / ``damping`` / ``scale``: the paper's estimator without its
      sampling noise; ``target: inverse`` takes ``φ(λ) = 1 / (λ + damping·scale)``: the
      damped inverse an influence function means. Cost: ``rank`` Hessian-vector products
      over the fixed batch, then one ``[n_corpus, P] × [P, rank]`` product: it hardly
      grows with the corpus.
    * ``solver: exact`` (small encoders, at most ``EXACT_MAX_PARAMETERS`` parameters): the
      dense Hessian over the whole training set, eigen-decomposed, ``φ`` as for
      ``krylov``: the reference for both. Cost: ``P`` Hessian-vector products and an
      ``O(P³)`` decomposition.

    With a stochastic loss (denoising) each Hessian sees one fixed noise draw per
    minibatch, so the same noise serves every block of vectors. All draws come from one
    generator seeded from torch's global RNG: ``torch.manual_seed`` makes scores repeatable.

    ``batch_size``: examples per vectorised gradient chunk (``None``: the corpus's).
    """

    needs_per_example_loss = True

    def __init__(
        self,
        solver: Literal["lissa", "krylov", "exact"] = "krylov",
        target: Literal["lissa", "inverse"] = "lissa",
        damping: Annotated[float, Field(ge=0, lt=1)] = 1e-3,
        scale: Annotated[float, Field(gt=0)] = 1e3,
        recursion_depth: Annotated[int, Field(ge=1, le=100_000)] = 100,
        n_repeats: Annotated[int, Field(ge=1, le=1_000)] = 1,
        hessian_batch_size: Annotated[int, Field(ge=1)] | None = None,
        rank: Annotated[int, Field(ge=1, le=2_000)] = 30,
        lissa_batch_size: Annotated[int, Field(ge=1)] | None = None,
        memory_budget_mb: Annotated[float, Field(gt=0)] = 2048,
        batch_size: Annotated[int, Field(ge=1)] | None = None,
    ):
        for _, problem in self.check_params({"solver": solver, "target": target}):
            raise ValueError(problem)
        self.solver = solver
        self.target = target
        self.damping = damping
        self.scale = scale
        self.recursion_depth = recursion_depth
        self.n_repeats = n_repeats
        self.hessian_batch_size = hessian_batch_size
        self.rank = rank
        self.lissa_batch_size = lissa_batch_size
        self.memory_budget_mb = memory_budget_mb
        self.batch_size = batch_size
        self._loss: EncoderLoss | None = None
        self._corpus_ihvp: torch.Tensor | None = None
        self._chunk = 256

    @classmethod
    def check_params(cls, values: dict) -> list[tuple[str, str]]:
        if values["solver"] == "lissa" and values["target"] != "lissa":
            return [("target", "solver 'lissa' computes LiSSA's own estimate: target must be "
                     "'lissa' (use solver 'krylov' or 'exact' for 'inverse')")]  # fmt: skip
        return []

    def fit(self, corpus: TrainingCorpus) -> None:
        if len(corpus.train_inputs) == 0:
            raise ValueError("influence_functions needs training examples for the Hessian")
        self._chunk = self.batch_size or corpus.batch_size
        loss = EncoderLoss(corpus.model, corpus.recipe)
        corpus_gradients = loss.per_example_gradients(corpus.inputs, corpus.labels, self._chunk)
        # One draw from the global RNG seeds everything the solvers sample.
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
        solve = {"lissa": self.lissa, "krylov": self.krylov, "exact": self.exact}[self.solver]
        self._corpus_ihvp = solve(loss, corpus, corpus_gradients, generator)
        self._loss = loss

    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self._loss is None or self._corpus_ihvp is None:
            raise RuntimeError("InfluenceFunctions.attribute called before fit")
        test_gradients = self._loss.per_example_gradients(inputs, labels, self._chunk)
        return test_gradients @ self._corpus_ihvp.T

    # --- what replaces H⁻¹ -----------------------------------------------------------------

    def spectral_function(self, eigenvalues: torch.Tensor) -> torch.Tensor:
        """``φ(λ)`` of ``target`` (float64)."""
        if self.target == "lissa":
            return lissa_polynomial(eigenvalues, self.damping, self.scale, self.recursion_depth)
        return 1.0 / (eigenvalues.double() + self.damping * self.scale)

    def apply_spectral(
        self, eigenvalues: torch.Tensor, eigenvectors: torch.Tensor, vectors: torch.Tensor
    ) -> torch.Tensor:
        """``φ(0) v + Σ_i (φ(θ_i) − φ(0)) u_i u_iᵀ v`` for every row ``v``; ``u_i`` columns."""
        at_zero = self.spectral_function(eigenvalues.new_zeros(1))
        gains = (self.spectral_function(eigenvalues) - at_zero).to(vectors.dtype)
        coordinates = vectors @ eigenvectors
        return at_zero.item() * vectors + (coordinates * gains) @ eigenvectors.T

    # --- solvers ---------------------------------------------------------------------------

    def pairs_per_pass(self, loss: EncoderLoss, corpus: TrainingCorpus) -> int:
        """(vector, example) pairs one batched double backward may hold in the budget."""
        per_pair = loss.hvp_bytes_per_pair(corpus.train_inputs[:2], corpus.train_labels[:2])
        return max(1, int(self.memory_budget_mb * 2**20) // per_pair)

    def lissa(
        self,
        loss: EncoderLoss,
        corpus: TrainingCorpus,
        vectors: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """LiSSA's estimate for every row ``v`` of ``vectors`` (see the class docstring)."""
        batch = self.hessian_batch_size or 200
        samples = torch.randint(
            len(corpus.train_inputs),
            (self.n_repeats, self.recursion_depth, batch),
            generator=generator,
        )
        noise_seeds = torch.randint(
            2**62, (self.n_repeats, self.recursion_depth), generator=generator
        )
        train_device = corpus.train_inputs.device
        block_size = self.lissa_batch_size or max(
            1, min(len(vectors), self.pairs_per_pass(loss, corpus) // batch)
        )
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

    def fixed_hessian(
        self, loss: EncoderLoss, corpus: TrainingCorpus, generator: torch.Generator, size: int
    ):
        """``vectors [K, P] -> H vectors``: the Hessian of the mean loss over ``size``
        training examples drawn once without replacement.

        The examples go through in chunks, each with its own fixed noise draw, and the
        vectors in blocks, both sized to the memory budget; the chunks do not depend on
        ``K``, so every call applies the same operator. Where the chunks' forward graphs
        take at most half the budget they are built once and kept (a call then costs only
        the second backward); otherwise each call rebuilds them.
        """
        n_train = len(corpus.train_inputs)
        size = min(size, n_train)
        index = torch.randperm(n_train, generator=generator)[:size].to(corpus.train_inputs.device)
        inputs, labels = corpus.train_inputs[index], corpus.train_labels[index]
        budget = self.pairs_per_pass(loss, corpus)
        keep_graphs = size <= budget // 2
        chunk = min(size, budget // 2 if keep_graphs else budget)
        vector_block = max(1, (budget - size if keep_graphs else budget) // chunk)
        seed = int(torch.randint(2**62, (), generator=generator))
        starts = range(0, size, chunk)

        def chunk_operator(number: int, start: int):
            with fixed_randomness(seed + number, inputs.device):
                return loss.hessian_operator(
                    inputs[start : start + chunk], labels[start : start + chunk]
                )

        kept = [chunk_operator(n, start) for n, start in enumerate(starts)] if keep_graphs else None

        def hessian_times(vectors: torch.Tensor) -> torch.Tensor:
            total = torch.zeros_like(vectors)
            for number, start in enumerate(starts):
                weight = (min(start + chunk, size) - start) / size
                operator = kept[number] if kept is not None else chunk_operator(number, start)
                for block in range(0, len(vectors), vector_block):
                    rows = slice(block, block + vector_block)
                    total[rows] += operator(vectors[rows]) * weight
            return total

        return hessian_times

    def krylov(
        self,
        loss: EncoderLoss,
        corpus: TrainingCorpus,
        vectors: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        size = self.hessian_batch_size or len(corpus.train_inputs)
        hessian_times = self.fixed_hessian(loss, corpus, generator, size)
        start = torch.randn(loss.n_parameters, generator=generator, dtype=vectors.dtype)
        eigenvalues, eigenvectors = lanczos(
            lambda q: hessian_times(q[None])[0], start.to(vectors.device), self.rank
        )
        return self.apply_spectral(eigenvalues, eigenvectors, vectors)

    def exact(
        self,
        loss: EncoderLoss,
        corpus: TrainingCorpus,
        vectors: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        n_parameters = loss.n_parameters
        if n_parameters > EXACT_MAX_PARAMETERS:
            raise ValueError(
                f"solver 'exact' builds a dense {n_parameters:,} × {n_parameters:,} Hessian; "
                f"it allows at most {EXACT_MAX_PARAMETERS:,} encoder parameters: use 'krylov'"
            )
        hessian_times = self.fixed_hessian(loss, corpus, generator, len(corpus.train_inputs))
        identity = torch.eye(n_parameters, dtype=vectors.dtype, device=vectors.device)
        hessian = torch.cat([hessian_times(block) for block in identity.split(256)])
        hessian = (hessian + hessian.T) / 2  # float round-off only
        eigenvalues, eigenvectors = torch.linalg.eigh(hessian.double())
        return self.apply_spectral(eigenvalues, eigenvectors.to(vectors.dtype), vectors)


def lanczos(operator, start: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ritz values ``[m]`` and orthonormal Ritz vectors ``[P, m]`` of a symmetric operator
    after ``m ≤ rank`` Lanczos steps from ``start``, re-orthogonalised against the whole
    basis (twice) so that no spurious copies of converged eigenvalues appear. Stops early
    when the Krylov space is invariant."""
    rank = min(rank, len(start))
    basis = [start / start.norm()]
    alphas: list[torch.Tensor] = []
    betas: list[torch.Tensor] = []
    tolerance = torch.finfo(start.dtype).eps ** 0.5
    for step in range(rank):
        w = operator(basis[-1])
        alphas.append(basis[-1] @ w)
        stacked = torch.stack(basis)
        for _ in range(2):
            w = w - stacked.T @ (stacked @ w)
        beta = w.norm()
        spectrum = max(abs(float(a)) for a in alphas)
        if step == rank - 1 or beta <= tolerance * max(spectrum, float(beta), 1e-30):
            break
        betas.append(beta)
        basis.append(w / beta)
    m = len(alphas)
    tridiagonal = torch.diag(torch.stack(alphas).double())
    if betas:
        off = torch.stack(betas[: m - 1]).double()
        tridiagonal += torch.diag(off, 1) + torch.diag(off, -1)
    ritz_values, ritz_coordinates = torch.linalg.eigh(tridiagonal)
    ritz_vectors = torch.stack(basis[:m]).T @ ritz_coordinates.to(start.dtype)
    return ritz_values, ritz_vectors
