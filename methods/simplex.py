"""Label-free SimplEx (Crabbé et al., 2021): explain a latent by a mixture of corpus latents."""

from __future__ import annotations

import warnings
from typing import Annotated, Literal

import torch
from pydantic import Field

from lfxbench.batching import encode
from lfxbench.methods.base import ExampleMethod, TrainingCorpus
from lfxbench.methods.simplex_solvers import (
    SimplexProblem,
    SimplexSolution,
    certify,
    solve_adam,
    solve_projected_gradient,
)
from lfxbench.registry import register_method

Solver = Literal["projected_gradient", "adam"]


@register_method("simplex")
class SimplEx(ExampleMethod):
    """Corpus weights on the simplex that best reconstruct the explained latent vector.

    Each explained latent ``h`` (``[d]``) gets the weights ``w`` on the probability simplex
    over the corpus latents ``C`` (``[n_corpus, d]``) that minimise ``f(w) = ||wᵀC − h||²``,
    a convex quadratic programme; the score of a corpus example is its weight.

    ``solver: projected_gradient`` (default) solves it to a certified tolerance, all rows
    batched on the latents' device: FISTA (accelerated projected gradient) with adaptive
    restart from the uniform weights, the Euclidean projection onto the simplex by sorting
    (Duchi et al., 2008), step ``1/L`` with ``L = 2 λ_max(C_c C_cᵀ) = 2 σ_max(C_c)²``
    computed once per fit (``C_c``: the corpus centred on its mean, which changes nothing
    since the weights sum to one, and can only lower ``L``); with ``line_search`` (default)
    ``L`` is only the start and the cap of a per-row backtracking estimate of the local
    curvature, which is usually far below ``L`` once the iterates near their face of the
    simplex. It stops when every row's Frank–Wolfe duality gap
    ``g(w) = ∇f(w)·w − min_i ∇f(w)_i``, an upper bound on ``f(w) − f*``, is at most
    ``tolerance × mean_j ||C_j − h||²``: the row's mean squared distance to the corpus, an
    upper bound on ``f`` at the start, never zero unless the whole corpus sits on ``h``,
    and like ``f`` unchanged by rotating and shifting the latent space and scaled alike by
    scaling it (``||h||²`` alone vanishes at the origin and changes with a shift, which
    changes nothing else here; the corpus spread alone leaves far-away rows below the
    float32 resolution of their gap). ``max_iterations`` caps the run, with a warning if a
    row is left above the tolerance. Restarted FISTA converges linearly on such problems (a
    convex quadratic on a polytope grows quadratically away from its set of minimisers:
    Necoara, Nesterov & Glineur, 2019).

    ``solver: adam`` is the reference code's algorithm (lfxai): ``w = softmax(logits)``, the
    logits start at zero and take ``n_steps`` Adam steps of learning rate ``lr`` on the
    summed loss. It has no stopping rule, and the softmax never reaches a zero weight. Adam
    moves a logit by about ``lr`` per step, so with the paper's setting (lr 1e-3, 1,000
    steps) no weight gets far from uniform, far from the minimum. ``n_steps`` and ``lr``
    apply to ``adam`` only; ``tolerance``, ``max_iterations`` and ``line_search`` to
    ``projected_gradient`` only. ``solution`` keeps the last ``attribute``'s objective,
    duality gap and iterations per row, for either solver.

    Cost: with ``d ≪ n_corpus``, ``f`` and its gradient are evaluated through ``C``
    (``wᵀC``, then ``2 (wᵀC − h) Cᵀ``), never through the Gram matrix ``C Cᵀ``
    (``n_corpus²`` per row): an iteration is two ``n_test × n_corpus × k`` products plus a
    sort of every row, ``O(n_test · n_corpus · (k + log n_corpus))``, with
    ``k = rank C_c ≤ min(d, n_corpus)`` (``fit`` writes the corpus in an orthonormal basis
    of its span, so a latent space wider than the corpus costs no more than ``n_corpus``
    dimensions); the extrapolated point's gradient is combined from the last two (it is
    affine in ``w``), and converged rows leave the batch. An Adam step costs
    ``O(n_test · n_corpus · d)``, forward and backward, for ``n_steps`` steps.

    Non-uniqueness: once ``n_corpus > d + 1`` (the usual case, ``d`` small) the minimiser
    is in general not unique: for ``h`` inside the convex hull of the corpus a whole
    polytope of weight vectors reconstructs ``h`` exactly, and degenerate faces do the same
    outside it. Which optimal weights a solver returns is its implicit bias (FISTA from the
    uniform weights stops at some point of the optimal face, not in general its sparsest;
    Adam on logits stays dense, near its uniform start). The optimal objective and the gap
    certificate do not depend on the solver; the weights, hence the corpus ranking, do:
    compare solvers by objective, not by weights.
    """

    def __init__(
        self,
        solver: Solver = "projected_gradient",
        tolerance: Annotated[float, Field(gt=0, lt=1)] = 1e-6,
        max_iterations: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000,
        line_search: bool = True,
        n_steps: Annotated[int, Field(ge=0, le=1_000_000)] = 2000,
        lr: Annotated[float, Field(gt=0)] = 0.05,
    ):
        self.solver = solver
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.line_search = line_search
        self.n_steps = n_steps
        self.lr = lr
        self.solution: SimplexSolution | None = None  # of the last ``attribute``

    def fit(self, corpus: TrainingCorpus) -> None:
        self.encoder = corpus.encoder
        self.batch_size = corpus.batch_size
        self.corpus_latents = encode(corpus.encoder, corpus.inputs, corpus.batch_size)
        self.problem = SimplexProblem.of(self.corpus_latents.detach())

    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        latents = encode(self.encoder, inputs, self.batch_size)
        if self.solver == "adam":
            weights = solve_adam(self.corpus_latents, latents, self.n_steps, self.lr)
            with torch.no_grad():
                objective, gap = certify(self.problem, latents, weights)
                scale = self.problem.scale(latents)
            self.solution = SimplexSolution(
                weights=weights,
                objective=objective,
                gap=gap,
                scale=scale,
                iterations=torch.full((len(latents),), self.n_steps, device=latents.device),
                converged=False,
            )
            return weights
        with torch.no_grad():
            solution = solve_projected_gradient(
                self.problem,
                latents.detach(),
                self.tolerance,
                self.max_iterations,
                self.line_search,
            )
        self.solution = solution
        if not solution.converged:
            worst = float((solution.gap / solution.scale).max())
            warnings.warn(
                f"simplex: max_iterations={self.max_iterations} left a relative duality gap "
                f"of {worst:.3g} (tolerance {self.tolerance:g})",
                RuntimeWarning,
                stacklevel=2,
            )
        return solution.weights
