"""SimplEx's quadratic programme ``min_{w ∈ Δ} ||wᵀC − h||²`` and its solvers.

``solve_projected_gradient`` (FISTA with adaptive restart, projected onto the simplex by
sorting) solves it to a certified duality gap; ``solve_adam`` is the reference code's
softmax-parametrised Adam; ``certify`` measures any weights. The registered method that
uses them is ``simplex.SimplEx``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
