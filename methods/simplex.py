"""Label-free SimplEx (Crabbé et al., 2021): explain a latent by a mixture of corpus latents."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field

from lfxbench.batching import encode
from lfxbench.methods.base import ExampleMethod, TrainingCorpus
from lfxbench.registry import register_method


@dataclass
class SimplexSolution:
    """Weights ``[n_test, n_corpus]`` and, per explained row, what the solver reached.

    ``objective`` is ``f(w) = ||wᵀC − h||²``, ``gap`` the Frank–Wolfe duality gap
    ``∇f(w)·w − min_i ∇f(w)_i`` (an upper bound on ``f(w) − f*``) and ``scale`` the row's
    scale of the tolerance (``SimplexProblem.scale``), all in squared latent units;
    ``iterations`` counts the solver's iterations per row (Adam: its steps). ``converged``:
    every row's gap is within ``tolerance × scale`` (never claimed by Adam, which has no
    stopping rule).
    """

    weights: torch.Tensor
    objective: torch.Tensor
    gap: torch.Tensor
    scale: torch.Tensor
    iterations: torch.Tensor
    converged: bool


@dataclass
class SimplexProblem:
    """The corpus side of ``min_{w ∈ Δ} ||wᵀC − h||²``, prepared once per fit.

    The weights sum to one, so the problem is unchanged when the corpus and the explained
    latents are shifted together: ``C`` is centred on its mean ``centre``. It is then
    written in the orthonormal basis ``basis`` (``[d, k]``) of the span of its rows,
    ``coordinates = (C − centre) @ basis`` (``[n_corpus, k]``, ``k = rank ≤ min(d,
    n_corpus)``): ``||wᵀC − h||² = ||wᵀ coordinates − (h − centre) @ basis||² + const``,
    with ``const`` the squared distance of ``h − centre`` to that span.
    """

    centre: torch.Tensor
    basis: torch.Tensor
    coordinates: torch.Tensor
    lipschitz: float  # of ∇f along the simplex: 2 σ_max(C − centre)²
    spread: float  # mean squared distance of the corpus latents to their centre

    @classmethod
    def of(cls, corpus_latents: torch.Tensor) -> SimplexProblem:
        centre = corpus_latents.mean(dim=0)
        centred = corpus_latents - centre
        _, singular_values, right = torch.linalg.svd(centred, full_matrices=False)
        sigma_max = float(singular_values[0])
        cutoff = torch.finfo(centred.dtype).eps * max(centred.shape) * sigma_max
        rank = int((singular_values > cutoff).sum()) if sigma_max > 0 else 0
        basis = right[: max(rank, 1)].T  # one column at least: a one-point corpus works too
        return cls(
            centre=centre,
            basis=basis,
            coordinates=centred @ basis,
            lipschitz=2 * sigma_max**2,
            spread=float(centred.pow(2).sum(dim=1).mean()),
        )

    def targets(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h − centre) @ basis`` and the squared distance of ``h − centre`` to the span."""
        centred = latents - self.centre
        projected = centred @ self.basis
        outside = (centred - projected @ self.basis.T).pow(2).sum(dim=1)
        return projected, outside

    def scale(self, latents: torch.Tensor) -> torch.Tensor:
        """``mean_j ||C_j − h||²`` per row: ``||h − centre||² + spread``.

        It bounds ``f`` at the uniform start (Jensen) and is unchanged, up to the square of
        a scaling, by rotating, shifting or scaling the latent space.
        """
        return (latents - self.centre).pow(2).sum(dim=1) + self.spread


def project_onto_simplex(points: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of every row onto the probability simplex, by sorting.

    Duchi et al. (2008), Algorithm 1 (also Condat, 2016): with ``u`` the row sorted in
    decreasing order and ``ρ`` the largest ``j`` such that ``u_j > (Σ_{i≤j} u_i − 1) / j``,
    the projection is ``max(v − θ, 0)`` with ``θ = (Σ_{i≤ρ} u_i − 1) / ρ``. Batched: one sort
    and one cumulative sum of the whole ``[n, m]`` block, ``O(n · m log m)``.
    """
    m = points.shape[1]
    ordered, _ = points.sort(dim=1, descending=True)
    cumulative = ordered.cumsum(dim=1) - 1
    counts = torch.arange(1, m + 1, dtype=points.dtype, device=points.device)
    positive = ordered - cumulative / counts > 0  # true on a prefix, always on j = 1
    rho = (positive * counts).amax(dim=1, keepdim=True)
    theta = cumulative.gather(1, rho.long() - 1) / rho
    return (points - theta).clamp_min(0)


# Per accepted step, a row's curvature estimate L_row shrinks by this factor (line search).
SHRINK = 0.9


def _gap(gradient: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Frank–Wolfe duality gap ``∇f(w)·w − min_i ∇f(w)_i`` of every row."""
    return (gradient * weights).sum(dim=1) - gradient.amin(dim=1)


def solve_projected_gradient(
    problem: SimplexProblem,
    latents: torch.Tensor,
    tolerance: float = 1e-6,
    max_iterations: int = 10_000,
    line_search: bool = True,
) -> SimplexSolution:
    """FISTA with adaptive restart on the simplex, every explained row at once.

    Projected accelerated gradient (Beck & Teboulle, 2009) from the uniform weights,
    restarted per row by the gradient-mapping test of O'Donoghue & Candès (2015):
    ``(y − x⁺)·(x⁺ − x) > 0`` resets the momentum. The step is ``1/L_row``. Without
    ``line_search`` ``L_row = L = 2 σ_max(C_c)²`` throughout. With it, each row starts at
    ``L``, multiplies its ``L_row`` by ``SHRINK`` after every accepted step and accepts a
    step when ``f(x⁺) ≤ f(y) + ∇f(y)·(x⁺ − y) + L_row/2 ||x⁺ − y||²``, for this quadratic
    ``2 ||(x⁺ − y)ᵀC||² ≤ L_row ||x⁺ − y||²``, which costs no extra product; a rejected row
    keeps its point and doubles ``L_row``, never above ``L``, where every step is accepted.
    ``L`` bounds the curvature in every direction of the simplex; the curvature along the
    face where the iterates end up is usually far smaller, hence far larger steps.

    A row stops when its duality gap is at most ``tolerance × problem.scale(h)``; its
    weights are then frozen and it leaves the batch, so a row's answer does not depend on
    the other rows of the batch. Rows still above after ``max_iterations`` return as they
    are, with ``converged`` false.
    """
    coordinates = problem.coordinates
    targets, outside = problem.targets(latents)
    scale = problem.scale(latents)
    n, m = len(latents), len(coordinates)
    device, dtype = latents.device, latents.dtype
    lipschitz = problem.lipschitz if problem.lipschitz > 0 else 1.0

    weights_out = torch.empty(n, m, dtype=dtype, device=device)
    iterations_out = torch.zeros(n, dtype=torch.long, device=device)
    gap_out = torch.empty(n, dtype=dtype, device=device)
    objective_out = torch.empty(n, dtype=dtype, device=device)

    rows = torch.arange(n, device=device)  # the rows still being solved
    threshold = tolerance * scale
    x = torch.full((n, m), 1 / m, dtype=dtype, device=device)
    residual = x @ coordinates - targets
    gradient = 2 * residual @ coordinates.T
    y, y_residual, y_gradient = x, residual, gradient
    t = torch.ones(n, 1, dtype=dtype, device=device)
    row_lipschitz = torch.full((n, 1), lipschitz, dtype=dtype, device=device)

    for iteration in range(max_iterations + 1):
        if len(rows) == 0:  # an empty batch: nothing to solve
            break
        gap = _gap(gradient, x)
        done = (
            gap <= threshold
            if iteration < max_iterations
            else torch.ones_like(gap, dtype=torch.bool)
        )
        if bool(done.any()):
            finished = rows[done]
            weights_out[finished] = x[done]
            iterations_out[finished] = iteration
            gap_out[finished] = gap[done]
            objective_out[finished] = residual[done].pow(2).sum(dim=1) + outside[finished]
            keep = ~done
            if not bool(keep.any()):
                break
            rows, targets, threshold = rows[keep], targets[keep], threshold[keep]
            x, residual, gradient = x[keep], residual[keep], gradient[keep]
            y, y_residual, y_gradient = y[keep], y_residual[keep], y_gradient[keep]
            t, row_lipschitz = t[keep], row_lipschitz[keep]

        x_next = project_onto_simplex(y - y_gradient / row_lipschitz)
        residual_next = x_next @ coordinates - targets
        gradient_next = 2 * residual_next @ coordinates.T
        restart = ((y - x_next) * (x_next - x)).sum(dim=1, keepdim=True) > 0
        t_reset = torch.where(restart, torch.ones_like(t), t)
        t_next = (1 + torch.sqrt(1 + 4 * t_reset * t_reset)) / 2
        beta = (t_reset - 1) / t_next
        # Residual and gradient are affine in the weights (which sum to one): the
        # extrapolated point's are combined from the last two, with no product.
        y_next = x_next + beta * (x_next - x)
        y_residual_next = residual_next + beta * (residual_next - residual)
        y_gradient_next = gradient_next + beta * (gradient_next - gradient)
        if not line_search:
            x, residual, gradient = x_next, residual_next, gradient_next
            y, y_residual, y_gradient, t = y_next, y_residual_next, y_gradient_next, t_next
            continue
        curvature = 2 * (residual_next - y_residual).pow(2).sum(dim=1, keepdim=True)
        distance = (x_next - y).pow(2).sum(dim=1, keepdim=True)
        accepted = (curvature <= row_lipschitz * distance) | (row_lipschitz >= lipschitz)
        x = torch.where(accepted, x_next, x)
        residual = torch.where(accepted, residual_next, residual)
        gradient = torch.where(accepted, gradient_next, gradient)
        y = torch.where(accepted, y_next, y)
        y_residual = torch.where(accepted, y_residual_next, y_residual)
        y_gradient = torch.where(accepted, y_gradient_next, y_gradient)
        t = torch.where(accepted, t_next, t)
        row_lipschitz = torch.where(
            accepted, row_lipschitz * SHRINK, (2 * row_lipschitz).clamp_max(lipschitz)
        )

    return SimplexSolution(
        weights=weights_out,
        objective=objective_out,
        gap=gap_out,
        scale=scale,
        iterations=iterations_out,
        converged=bool((gap_out <= tolerance * scale).all()),
    )


def solve_adam(
    corpus_latents: torch.Tensor, latents: torch.Tensor, n_steps: int, lr: float
) -> torch.Tensor:
    """The reference code's SimplEx: softmax-parametrised weights, Adam from zero logits."""
    # One softmax-parametrised weight vector per explained example, all optimised at
    # once: the losses are independent, so the summed loss has the per-example gradients.
    logits = torch.zeros(
        len(latents), len(corpus_latents), dtype=latents.dtype, device=latents.device
    )
    logits.requires_grad_()
    optimizer = torch.optim.Adam([logits], lr=lr)
    with torch.enable_grad():
        for _ in range(n_steps):
            reconstruction = logits.softmax(dim=1) @ corpus_latents
            loss = (reconstruction - latents).pow(2).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return logits.detach().softmax(dim=1)


def certify(
    problem: SimplexProblem, latents: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Objective ``||wᵀC − h||²`` and duality gap of every row of any ``weights``."""
    targets, outside = problem.targets(latents)
    residual = weights @ problem.coordinates - targets
    gradient = 2 * residual @ problem.coordinates.T
    return residual.pow(2).sum(dim=1) + outside, _gap(gradient, weights)


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
