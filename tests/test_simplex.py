"""SimplEx's quadratic programme: the projected-gradient solver against references, and Adam.

The minimiser is not unique once the corpus outnumbers the latent dimensions, so solvers
are compared by objective value and duality gap, never by weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from test_representation_based import corpus_for
from torch import nn

from lfxbench.methods.simplex_solvers import (
    SimplexProblem,
    certify,
    project_onto_simplex,
    solve_adam,
    solve_projected_gradient,
)
from lfxbench.params import validate_params
from lfxbench.registry import METHODS

TOLERANCE = 1e-6


def random_problem(n_corpus: int, n_test: int, d: int = 4, seed: int = 0, spread: float = 1.5):
    """Corpus latents and test latents, about half of them outside the corpus hull."""
    generator = torch.Generator().manual_seed(seed)
    corpus = torch.randn(n_corpus, d, generator=generator, dtype=torch.float64)
    test = spread * torch.randn(n_test, d, generator=generator, dtype=torch.float64)
    return corpus, test


def scipy_objective(corpus: torch.Tensor, latent: torch.Tensor) -> float:
    """``min_{w ∈ Δ} ||wᵀC − h||²`` by SLSQP, an independent reference."""
    c, h = corpus.numpy(), latent.numpy()
    m = len(c)

    def f(w):
        r = w @ c - h
        return float(r @ r), 2 * c @ r

    result = minimize(
        f,
        np.full(m, 1 / m),
        jac=True,
        method="SLSQP",
        bounds=[(0, 1)] * m,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(m)}],
        options={"ftol": 1e-12, "maxiter": 2000},
    )
    assert result.success, result.message
    return float(result.fun)


def method_scores(corpus_latents, test_latents, **params):
    """The registered method on an identity encoder: the latents are the inputs."""
    labels = torch.zeros(len(corpus_latents), dtype=torch.long)
    corpus = corpus_for(nn.Identity(), corpus_latents, labels)
    method = METHODS.get("simplex")(**params)
    method.fit(corpus)
    weights = method.attribute(test_latents, torch.zeros(len(test_latents), dtype=torch.long))
    return method, weights


def assert_on_simplex(weights: torch.Tensor) -> None:
    assert torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(len(weights), dtype=weights.dtype))


# --- the projection ----------------------------------------------------------------------


def test_projection_onto_the_simplex_satisfies_its_optimality_conditions():
    generator = torch.Generator().manual_seed(0)
    points = 3 * torch.randn(50, 17, generator=generator, dtype=torch.float64)
    projected = project_onto_simplex(points)
    assert_on_simplex(projected)
    # KKT: v − p equals θ on the support of p and is at most θ off it.
    difference = points - projected
    support = projected > 0
    theta = (difference * support).sum(dim=1) / support.sum(dim=1)
    on = torch.where(support, difference - theta[:, None], torch.zeros_like(difference))
    assert on.abs().max() < 1e-12
    assert torch.all(torch.where(support, -torch.inf, difference) <= theta[:, None] + 1e-12)
    # A point on the simplex is its own projection; a shift along (1, …, 1) changes nothing.
    torch.testing.assert_close(project_onto_simplex(projected), projected)
    torch.testing.assert_close(project_onto_simplex(points + 5.0), projected)


# --- projected gradient against references ----------------------------------------------


@pytest.mark.parametrize("line_search", [True, False])
def test_objective_matches_scipy_and_the_gap_certifies_it(line_search):
    corpus, test = random_problem(n_corpus=30, n_test=6)
    test = torch.cat(
        [test, corpus[:4].mean(dim=0, keepdim=True), corpus[4:10].mean(dim=0, keepdim=True)]
    )
    problem = SimplexProblem.of(corpus)
    solution = solve_projected_gradient(problem, test, TOLERANCE, line_search=line_search)
    assert solution.converged
    assert_on_simplex(solution.weights)
    reference = torch.tensor([scipy_objective(corpus, h) for h in test], dtype=torch.float64)
    scale = problem.scale(test)
    # f(w) − f* ≤ gap ≤ tolerance × scale; SLSQP is itself accurate to ~1e-12 here.
    assert torch.all(solution.gap <= TOLERANCE * scale)
    assert torch.all(solution.objective - reference <= solution.gap + 1e-10 * scale)
    assert torch.all((solution.objective - reference).abs() <= TOLERANCE * scale)
    # Both kinds of rows are covered: inside the hull (f* = 0) and outside it.
    assert (reference < 1e-9).any() and (reference > 1e-3).any()


def test_objective_matches_a_long_run_and_the_reported_certificate_is_the_weights_own():
    corpus, test = random_problem(n_corpus=100, n_test=20, seed=1)
    problem = SimplexProblem.of(corpus)
    reference = solve_projected_gradient(problem, test, tolerance=1e-13, max_iterations=50_000)
    assert reference.converged
    solution = solve_projected_gradient(problem, test, TOLERANCE)
    assert solution.converged
    assert_on_simplex(solution.weights)
    scale = problem.scale(test)
    assert torch.all(solution.objective - reference.objective <= TOLERANCE * scale)
    assert torch.all(solution.objective - reference.objective >= -1e-12 * scale)
    # The objective and the gap it reports are those of the weights it returns.
    objective, gap = certify(problem, test, solution.weights)
    torch.testing.assert_close(solution.objective, objective)
    torch.testing.assert_close(solution.gap, gap)
    direct = (solution.weights @ corpus - test).pow(2).sum(dim=1)
    torch.testing.assert_close(solution.objective, direct)


def test_float32_latents_reach_the_default_tolerance():
    corpus, test = random_problem(n_corpus=200, n_test=20, seed=2)
    problem = SimplexProblem.of(corpus.float())
    solution = solve_projected_gradient(problem, test.float(), TOLERANCE)
    assert solution.converged
    assert solution.weights.dtype == torch.float32
    reference = solve_projected_gradient(SimplexProblem.of(corpus), test, 1e-12, 50_000)
    excess = (solution.objective.double() - reference.objective) / problem.scale(test.float())
    assert excess.max() <= TOLERANCE


def test_a_far_away_latent_converges_too():
    # The tolerance scales with the row's distance to the corpus: float32 resolves it.
    corpus, test = random_problem(n_corpus=100, n_test=4, seed=3)
    far = torch.cat([test, 1e3 * test[:2]])
    solution = solve_projected_gradient(SimplexProblem.of(corpus.float()), far.float())
    assert solution.converged


def test_known_answers_vertex_and_inside_the_hull():
    corpus, _ = random_problem(n_corpus=50, n_test=1, seed=4)
    corpus[7] = torch.tensor([6.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # a hull vertex
    inside = corpus[[1, 2, 3, 4, 5]].mean(dim=0)
    test = torch.stack([corpus[7], inside])
    problem = SimplexProblem.of(corpus)
    for tolerance, slack in ((TOLERANCE, 1e-2), (1e-12, 1e-5)):
        solution = solve_projected_gradient(problem, test, tolerance)
        assert solution.converged
        # A vertex is the convex combination of nothing but itself.
        assert solution.weights[0].argmax().item() == 7
        assert solution.weights[0, 7] > 1 - slack
        # f* = 0 for both: the objective is within the tolerance.
        assert torch.all(solution.objective <= tolerance * problem.scale(test))
        assert (solution.weights[1] @ corpus - inside).norm() < slack


def test_wide_latents_and_a_degenerate_corpus():
    # d > n_corpus: the solver works in the corpus span; the rest is a constant.
    corpus, test = random_problem(n_corpus=10, n_test=3, d=40, seed=5)
    problem = SimplexProblem.of(corpus)
    assert problem.coordinates.shape == (10, 9)  # rank of the centred corpus
    solution = solve_projected_gradient(problem, test, TOLERANCE)
    reference = torch.tensor([scipy_objective(corpus, h) for h in test], dtype=torch.float64)
    assert torch.all((solution.objective - reference).abs() <= TOLERANCE * problem.scale(test))
    # Every corpus latent equal: every weight vector is optimal, the start is returned.
    same = torch.ones(5, 4, dtype=torch.float64)
    degenerate = solve_projected_gradient(SimplexProblem.of(same), test[:, :4], TOLERANCE)
    assert degenerate.converged
    assert torch.all(degenerate.iterations == 0)
    torch.testing.assert_close(degenerate.weights, torch.full((3, 5), 0.2, dtype=torch.float64))


def test_rows_are_solved_independently_of_their_batch():
    corpus, test = random_problem(n_corpus=80, n_test=12, seed=6)
    problem = SimplexProblem.of(corpus)
    batched = solve_projected_gradient(problem, test, TOLERANCE)
    for i in (0, 5, 11):
        alone = solve_projected_gradient(problem, test[i : i + 1], TOLERANCE)
        assert abs(alone.iterations.item() - batched.iterations[i].item()) <= 2
        torch.testing.assert_close(alone.objective[0], batched.objective[i])


def test_invariant_under_shift_rotation_and_scaling_of_the_latent_space():
    corpus, test = random_problem(n_corpus=60, n_test=10, seed=7)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    shift = torch.tensor([3.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    plain = solve_projected_gradient(SimplexProblem.of(corpus), test, TOLERANCE)
    moved = solve_projected_gradient(
        SimplexProblem.of(2 * corpus @ rotation.T + shift), 2 * test @ rotation.T + shift
    )
    assert moved.converged
    scale = SimplexProblem.of(corpus).scale(test)
    assert torch.all((moved.objective / 4 - plain.objective).abs() <= TOLERANCE * scale)


# --- against Adam (the reference code's algorithm) ---------------------------------------


@pytest.mark.slow
def test_far_fewer_iterations_than_adam_for_a_better_objective():
    corpus, test = random_problem(n_corpus=100, n_test=20, seed=0)
    problem = SimplexProblem.of(corpus)
    scale = problem.scale(test)
    solution = solve_projected_gradient(problem, test, TOLERANCE)
    assert solution.converged
    assert solution.iterations.max() <= 500
    assert solution.iterations.double().mean() <= 150
    # Adam's 1,000 steps, with a well-tuned lr and with the paper's: no row better than
    # the certified solution (beyond its tolerance), most rows worse.
    tuned, _ = certify(problem, test, solve_adam(corpus, test, 1000, 0.05))
    paper, _ = certify(problem, test, solve_adam(corpus, test, 1000, 1e-3))
    for adam in (tuned, paper):
        assert torch.all(solution.objective <= adam + TOLERANCE * scale)
        assert (adam - solution.objective > TOLERANCE * scale).float().mean() > 0.5
    # The paper's Adam (lr 1e-3) stays near the uniform weights, far from the minimum.
    assert ((paper - solution.objective) / scale).mean() > 0.01


def test_adam_solver_takes_adams_steps_on_softmax_logits_from_zero():
    corpus, test = random_problem(n_corpus=40, n_test=6, seed=8)
    # No step: the uniform weights.
    _, weights = method_scores(corpus, test, solver="adam", n_steps=0, lr=0.1)
    torch.testing.assert_close(weights, torch.full_like(weights, 1 / 40))
    # One step: Adam's bias-corrected first step is lr · g / (|g| + eps) per logit, with g
    # the gradient of the summed loss at zero logits: for softmax at the uniform weights
    # g_i = w_i (G_i − Σ_j w_j G_j), G = 2 (wᵀC − h) Cᵀ.
    lr, uniform = 0.05, torch.full((6, 40), 1 / 40, dtype=corpus.dtype)
    outer = 2 * (uniform @ corpus - test) @ corpus.T
    gradient = uniform * (outer - (uniform * outer).sum(dim=1, keepdim=True))
    logits = -lr * gradient / (gradient.abs() + 1e-8)
    method, weights = method_scores(corpus, test, solver="adam", n_steps=1, lr=lr)
    torch.testing.assert_close(weights, logits.softmax(dim=1), rtol=1e-9, atol=1e-12)
    assert method.solution is not None and not method.solution.converged
    assert torch.all(method.solution.iterations == 1)
    # The defaults of the Adam solver are the previous defaults.
    default = METHODS.get("simplex")(solver="adam")
    assert (default.n_steps, default.lr) == (2000, 0.05)


def test_the_registered_method_defaults_to_the_converged_solver():
    corpus, test = random_problem(n_corpus=40, n_test=6, seed=9)
    method, weights = method_scores(corpus, test)
    assert method.solver == "projected_gradient"
    assert method.solution.converged
    assert_on_simplex(weights)
    assert torch.equal(weights, method.solution.weights)


def test_max_iterations_left_unconverged_warns():
    corpus, test = random_problem(n_corpus=40, n_test=6, seed=10)
    with pytest.warns(RuntimeWarning, match="max_iterations=2"):
        method, weights = method_scores(corpus, test, tolerance=1e-12, max_iterations=2)
    assert not method.solution.converged
    assert torch.all(method.solution.iterations <= 2)
    assert_on_simplex(weights)


# --- parameters ----------------------------------------------------------------------------


def test_parameters_are_validated():
    target = METHODS.get("simplex")
    params, problems = validate_params(target, {})
    assert problems == []
    assert params["solver"] == "projected_gradient"
    assert params["tolerance"] == TOLERANCE
    params, problems = validate_params(target, {"solver": "adam", "n_steps": 1000, "lr": 1e-3})
    assert problems == [] and params["solver"] == "adam"
    _, problems = validate_params(target, {"solver": "newton"})
    assert [field for field, _ in problems] == ["solver"]
    _, problems = validate_params(target, {"tolerance": 0, "max_iterations": 0, "lr": -1})
    assert sorted(field for field, _ in problems) == ["lr", "max_iterations", "tolerance"]
    _, problems = validate_params(target, {"n_iterations": 5})
    assert "unknown parameter" in problems[0][1]
