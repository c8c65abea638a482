"""Loss-based example importance: torch.func gradients, TracIn and LiSSA Influence Functions.

The other influence solvers (Krylov, exact) are checked in test_influence_functions.py.

Every batched result is checked against a plain per-example autograd loop or an exact
(dense) Hessian on tiny float64 autoencoders whose encoder has a BatchNorm layer.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from lfxbench.loss_gradients import EncoderLoss, encoder_hvp, per_example_gradients
from lfxbench.methods.base import TrainingCorpus
from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe
from lfxbench.registry import METHODS

DTYPE = torch.float64
N_FEATURES = 6
RECONSTRUCTION = Recipe(lr=0.05)
DENOISING = Recipe(objective="denoising", noise_std=0.3, lr=0.05)


class TinyAutoencoder(ZooModel):
    """Linear -> BatchNorm -> tanh -> Linear encoder, tanh decoder; label-free MSE loss."""

    objectives = ("reconstruction", "denoising")

    def __init__(self, hidden: int = 4, latent: int = 2, batchnorm: bool = True):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(N_FEATURES, hidden)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(hidden))
        layers += [nn.Tanh(), nn.Linear(hidden, latent)]
        self.encoder = nn.Sequential(*layers)
        self.decoder = nn.Sequential(nn.Linear(latent, 5), nn.Tanh(), nn.Linear(5, N_FEATURES))
        if batchnorm:  # running statistics far from (0, 1): eval mode makes a difference
            with torch.no_grad():
                self.encoder[1].running_mean.uniform_(-1, 1)
                self.encoder[1].running_var.uniform_(0.5, 2)

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
        corrupted = inputs
        if recipe.objective == "denoising":
            corrupted = inputs + recipe.noise_std * torch.randn_like(inputs)
        return (self.decoder(self.encoder(corrupted)) - inputs).pow(2).mean(dim=1)


def tiny_model(seed: int = 0, **kwargs) -> TinyAutoencoder:
    torch.manual_seed(seed)
    return TinyAutoencoder(**kwargs).to(DTYPE).eval()


def toy_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, N_FEATURES, generator=generator, dtype=DTYPE)
    return inputs, torch.randint(0, 3, (n,), generator=generator)


def n_encoder_parameters(model: ZooModel) -> int:
    return sum(parameter.numel() for parameter in model.encoder.parameters())


def loop_gradients(model: ZooModel, recipe: Recipe, inputs, labels) -> torch.Tensor:
    """The reference: one autograd call per example, eval mode, encoder parameters only."""
    model.eval()
    parameters = list(model.encoder.parameters())
    rows = []
    for i in range(len(inputs)):
        loss = model.loss(inputs[i : i + 1], labels[i : i + 1], recipe).sum()
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, parameters)]))
    return torch.stack(rows)


def perturbed_states(model: ZooModel, n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """``n`` different whole-model states (decoder and BatchNorm buffers included)."""
    generator = torch.Generator().manual_seed(seed)
    states = []
    for _ in range(n):
        state = {}
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                noise = torch.randn(value.shape, generator=generator, dtype=value.dtype)
                value = value + 0.3 * noise if "running_var" not in key else value * 1.5
            state[key] = value.clone()
        states.append(state)
    return states


def corpus_for(model, recipe, n_corpus=10, n_train=24, checkpoints=None) -> TrainingCorpus:
    inputs, labels = toy_data(n_corpus, seed=1)
    train_inputs, train_labels = toy_data(n_train, seed=2)
    return TrainingCorpus(
        model=model,
        recipe=recipe,
        inputs=inputs,
        labels=labels,
        train_inputs=train_inputs,
        train_labels=train_labels,
        checkpoints=checkpoints or [],
        batch_size=4,
    )


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: threads only add overhead, and spin for long when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- lfxbench.loss_gradients --------------------------------------------------------------


def test_per_example_gradients_match_an_autograd_loop_on_the_encoder_only():
    model = tiny_model()
    inputs, labels = toy_data(11, seed=3)
    model.train()  # the helper must evaluate in eval mode and give the mode back
    gradients = per_example_gradients(model, RECONSTRUCTION, inputs, labels, batch_size=4)
    assert model.training and model.encoder[1].training
    expected = loop_gradients(model, RECONSTRUCTION, inputs, labels)
    n_encoder = n_encoder_parameters(model)
    assert n_encoder < sum(p.numel() for p in model.parameters())  # decoder excluded
    assert gradients.shape == (11, n_encoder)
    torch.testing.assert_close(gradients, expected, rtol=1e-10, atol=1e-12)


def test_per_example_gradients_do_not_depend_on_the_chunking():
    model = tiny_model()
    inputs, labels = toy_data(9, seed=3)
    whole = per_example_gradients(model, RECONSTRUCTION, inputs, labels, batch_size=100)
    single = per_example_gradients(model, RECONSTRUCTION, inputs, labels, batch_size=1)
    torch.testing.assert_close(whole, single, rtol=1e-10, atol=1e-12)


def test_stochastic_loss_draws_noise_per_example_and_repeats_under_a_seed():
    model = tiny_model()
    inputs = toy_data(1, seed=3)[0].repeat(4, 1)  # the same example four times
    labels = torch.zeros(4, dtype=torch.long)
    clean = per_example_gradients(model, RECONSTRUCTION, inputs, labels)
    torch.testing.assert_close(clean, clean[:1].expand_as(clean))
    torch.manual_seed(5)
    noisy = per_example_gradients(model, DENOISING, inputs, labels)
    assert (noisy[0] - noisy[1]).abs().max() > 1e-3  # randomness="different"
    torch.manual_seed(5)
    torch.testing.assert_close(per_example_gradients(model, DENOISING, inputs, labels), noisy)


def test_gradients_work_under_the_callers_no_grad_and_inference_mode():
    model = tiny_model()
    inputs, labels = toy_data(5, seed=3)
    expected = loop_gradients(model, RECONSTRUCTION, inputs, labels)
    with torch.inference_mode():
        frozen_inputs = inputs.clone()
        gradients = per_example_gradients(model, RECONSTRUCTION, frozen_inputs, labels)
        products = encoder_hvp(
            model, RECONSTRUCTION, frozen_inputs, labels, torch.ones(1, expected.shape[1])
        )
    torch.testing.assert_close(gradients, expected)
    assert torch.isfinite(products).all()


def flat_mean_loss(model: ZooModel, inputs):
    """Mean reconstruction loss of flat encoder parameters (written apart from EncoderLoss)."""
    named = dict(model.encoder.named_parameters())
    shapes = [(name, value.shape, value.numel()) for name, value in named.items()]

    def mean_loss(flat: torch.Tensor) -> torch.Tensor:
        parameters, start = {}, 0
        for name, shape, size in shapes:
            parameters[name] = flat[start : start + size].reshape(shape)
            start += size
        latents = functional_call(model.encoder, parameters, (inputs,))
        return (model.decoder(latents) - inputs).pow(2).mean()

    flat = torch.cat([value.detach().flatten() for value in named.values()])
    return mean_loss, flat


def test_hvp_matches_the_exact_hessian_of_the_mean_loss():
    model = tiny_model()
    inputs, labels = toy_data(13, seed=3)
    mean_loss, flat = flat_mean_loss(model, inputs)
    hessian = torch.autograd.functional.hessian(mean_loss, flat)
    vectors = torch.randn(5, len(flat), generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    products = encoder_hvp(model, RECONSTRUCTION, inputs, labels, vectors)
    torch.testing.assert_close(products, vectors @ hessian, rtol=1e-9, atol=1e-12)


def test_a_kept_hessian_operator_applies_the_exact_hessian_call_after_call():
    # one forward for many products (Lanczos' way): each call, one vector or a block,
    # is the exact product, and the kept graph survives the calls
    model = tiny_model()
    inputs, labels = toy_data(13, seed=3)
    mean_loss, flat = flat_mean_loss(model, inputs)
    hessian = torch.autograd.functional.hessian(mean_loss, flat)
    operator = EncoderLoss(model, RECONSTRUCTION).hessian_operator(inputs, labels)
    vectors = torch.randn(4, len(flat), generator=torch.Generator().manual_seed(1), dtype=DTYPE)
    for block in (vectors[:1], vectors, vectors[2:3], vectors[1:]):
        torch.testing.assert_close(operator(block), block @ hessian, rtol=1e-9, atol=1e-12)


def test_encoder_loss_rejects_vectors_of_the_wrong_size():
    model = tiny_model()
    inputs, labels = toy_data(3, seed=3)
    loss = EncoderLoss(model, RECONSTRUCTION)
    with pytest.raises(ValueError, match="vectors must be"):
        loss.hvp(inputs, labels, torch.zeros(2, loss.n_parameters + 1, dtype=DTYPE))


# --- TracIn -------------------------------------------------------------------------------


def test_tracin_equals_an_autograd_loop_over_checkpoints():
    model = tiny_model()
    states = perturbed_states(model, 3, seed=7)
    lrs = (0.1, 0.03, 0.5)
    checkpoints = [(10 * (r + 1), lrs[r], state) for r, state in enumerate(states)]
    corpus = corpus_for(model, RECONSTRUCTION, checkpoints=checkpoints)
    method = METHODS.get("tracin")()
    method.fit(corpus)
    test_inputs, test_labels = toy_data(5, seed=4)
    scores = method.attribute(test_inputs, test_labels)

    expected = torch.zeros(5, len(corpus.inputs), dtype=DTYPE)
    reference = copy.deepcopy(model)
    for _, lr, state in checkpoints:
        reference.load_state_dict(state)
        train = loop_gradients(reference, RECONSTRUCTION, corpus.inputs, corpus.labels)
        test = loop_gradients(reference, RECONSTRUCTION, test_inputs, test_labels)
        expected += lr * test @ train.T
    torch.testing.assert_close(scores, expected, rtol=1e-9, atol=1e-12)
    # The corpus model itself is left as it was (checkpoints load into copies).
    torch.testing.assert_close(model.state_dict(), tiny_model().state_dict())


def test_tracin_without_checkpoints_uses_the_final_weights_and_the_recipe_lr():
    model = tiny_model()
    corpus = corpus_for(model, RECONSTRUCTION)
    method = METHODS.get("tracin")()
    method.fit(corpus)
    test_inputs, test_labels = toy_data(3, seed=4)
    train = loop_gradients(model, RECONSTRUCTION, corpus.inputs, corpus.labels)
    test = loop_gradients(model, RECONSTRUCTION, test_inputs, test_labels)
    expected = RECONSTRUCTION.lr * test @ train.T
    torch.testing.assert_close(method.attribute(test_inputs, test_labels), expected)


def test_tracin_ranks_a_copy_of_the_test_example_among_the_top():
    """A trained tiny autoencoder: each test example's duplicate in the corpus ranks high."""
    torch.manual_seed(0)
    model = TinyAutoencoder(hidden=8, latent=3).to(DTYPE)
    inputs, labels = toy_data(64, seed=11)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    checkpoints = []
    for epoch in range(1, 61):
        model.train()
        loss = model.loss(inputs, labels, RECONSTRUCTION).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if epoch % 20 == 0:
            checkpoints.append((epoch, 0.02, copy.deepcopy(model.state_dict())))
    model.eval()
    corpus = corpus_for(model, RECONSTRUCTION, checkpoints=checkpoints)
    corpus.inputs, corpus.labels = inputs[:40], labels[:40]
    method = METHODS.get("tracin")()
    method.fit(corpus)
    duplicates = torch.arange(0, 40, 4)
    scores = method.attribute(inputs[duplicates], labels[duplicates])
    ranks = (scores > scores[torch.arange(len(duplicates)), duplicates, None]).sum(dim=1)
    assert (ranks < 3).float().mean() >= 0.8, ranks


# --- Influence Functions ------------------------------------------------------------------


def exact_influence(model, recipe, corpus, test_inputs, test_labels, damping):
    """``∇L(test)ᵀ (H + damping I)⁻¹ ∇L(train)``, H the exact Hessian over all training data."""
    mean_loss, flat = flat_mean_loss(model, corpus.train_inputs)
    hessian = torch.autograd.functional.hessian(mean_loss, flat)
    damped = hessian + damping * torch.eye(len(flat), dtype=DTYPE)
    train = loop_gradients(model, recipe, corpus.inputs, corpus.labels)
    test = loop_gradients(model, recipe, test_inputs, test_labels)
    return test @ torch.linalg.solve(damped, train.T), torch.linalg.eigvalsh(damped)


def test_lissa_influence_approaches_the_exact_damped_inverse_hessian():
    model = tiny_model(batchnorm=False)
    corpus = corpus_for(model, RECONSTRUCTION, n_train=16)
    test_inputs, test_labels = toy_data(4, seed=4)
    # LiSSA's fixed point inverts H + damping * scale * I; H is indefinite here (eigenvalues
    # in about [-0.36, 0.41]), the damped one positive definite.
    damping, scale = 0.45, 1.0
    exact, eigenvalues = exact_influence(
        model, RECONSTRUCTION, corpus, test_inputs, test_labels, damping * scale
    )
    # The recursion contracts: the damped Hessian is positive definite and below `scale`.
    assert eigenvalues.min() > 0 and eigenvalues.max() < scale
    contraction = 1 - eigenvalues.min().item() / scale
    depth = math.ceil(math.log(1e-3) / math.log(contraction))
    assert depth <= 200
    # Sampled with replacement: a large minibatch approaches the full-batch Hessian.
    method = METHODS.get("influence_functions")(
        solver="lissa", damping=damping, scale=scale, recursion_depth=depth,
        hessian_batch_size=2000,
    )  # fmt: skip
    torch.manual_seed(0)
    method.fit(corpus)
    scores = method.attribute(test_inputs, test_labels)
    relative_error = (scores - exact).norm() / exact.norm()
    assert relative_error < 0.05, relative_error
    # The curvature matters: gradient agreement, even at its best scale, is far from it.
    agreement = loop_gradients(model, RECONSTRUCTION, test_inputs, test_labels) @ (
        loop_gradients(model, RECONSTRUCTION, corpus.inputs, corpus.labels).T
    )
    best_scale = (agreement * exact).sum() / (agreement * agreement).sum()
    gap = (best_scale * agreement - exact).norm() / exact.norm()
    assert gap > 0.15, gap


def test_influence_is_positive_for_a_duplicate_helpful_is_high():
    model = tiny_model()
    corpus = corpus_for(model, RECONSTRUCTION)
    method = METHODS.get("influence_functions")(recursion_depth=20, hessian_batch_size=8)
    torch.manual_seed(0)
    method.fit(corpus)
    # Self-influence ∇Lᵀ H⁻¹ ∇L > 0 for a positive definite damped Hessian (Koh & Liang's
    # I_up,loss would be negative here).
    self_scores = method.attribute(corpus.inputs, corpus.labels).diagonal()
    assert (self_scores > 0).all()


def test_lissa_does_not_depend_on_how_the_corpus_is_split_even_with_a_noisy_loss():
    model = tiny_model()
    corpus = corpus_for(model, DENOISING)
    test_inputs, test_labels = toy_data(3, seed=4)
    results = []
    for block in (1, 3, 100):
        method = METHODS.get("influence_functions")(
            solver="lissa",
            recursion_depth=15,
            hessian_batch_size=6,
            lissa_batch_size=block,
            n_repeats=2,
        )
        torch.manual_seed(1)
        method.fit(corpus)
        torch.manual_seed(2)
        results.append(method.attribute(test_inputs, test_labels))
    torch.testing.assert_close(results[0], results[1], rtol=1e-9, atol=1e-14)
    torch.testing.assert_close(results[0], results[2], rtol=1e-9, atol=1e-14)


# --- both methods -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tracin", "influence_functions"])
@pytest.mark.parametrize("recipe", [RECONSTRUCTION, DENOISING], ids=["reconstruction", "denoising"])
def test_shape_finite_and_repeatable_under_a_seed(name, recipe):
    model = tiny_model()
    states = perturbed_states(model, 2, seed=3)
    corpus = corpus_for(model, recipe, checkpoints=[(1, 0.1, states[0]), (2, 0.1, states[1])])
    test_inputs, test_labels = toy_data(3, seed=4)
    params = {"recursion_depth": 10, "hessian_batch_size": 8} if name != "tracin" else {}

    def run(seed: int) -> torch.Tensor:
        method = METHODS.get(name)(**params)
        torch.manual_seed(seed)
        method.fit(corpus)
        return method.attribute(test_inputs, test_labels)

    scores = run(0)
    assert scores.shape == (3, len(corpus.inputs))
    assert torch.isfinite(scores).all()
    torch.testing.assert_close(run(0), scores, rtol=0, atol=0)
    stochastic = name == "influence_functions" or recipe.objective == "denoising"
    assert stochastic == (not torch.equal(run(1), scores))


@pytest.mark.parametrize("name", ["tracin", "influence_functions"])
def test_attribute_before_fit_is_an_error(name):
    with pytest.raises(RuntimeError, match="before fit"):
        METHODS.get(name)().attribute(*toy_data(2, seed=0))
