"""The disentangled VAEs: μ-encoder, β-VAE and β-TCVAE losses, training under vmap."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from lfxbench.execution.ensemble import train_side_by_side
from lfxbench.models.vae import (
    DspritesVae,
    MnistVae,
    kl_to_standard_normal,
    tc_decomposition,
)
from lfxbench.recipe import Recipe
from lfxbench.registry import MODELS

BETA_VAE = Recipe(objective="beta_vae")
TC_VAE = Recipe(objective="tc_vae")
CASES = [(MnistVae, 28, 3), (DspritesVae, 64, 6)]


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def test_registered_with_both_objectives():
    assert MODELS.get("mnist_vae") is MnistVae
    assert MODELS.get("dsprites_vae") is DspritesVae
    for cls in (MnistVae, DspritesVae):
        assert cls.objectives == ("beta_vae", "tc_vae")
        assert cls.batch_dependent_objectives == ("tc_vae",)


@pytest.mark.parametrize(("cls", "size", "latent_dim"), CASES)
def test_encoder_returns_the_mean(cls, size, latent_dim):
    torch.manual_seed(0)
    model = cls()
    x = images(4, size)
    mu, logvar = model.encoder.moments(x)
    assert model.encoder(x).shape == (4, latent_dim)
    assert logvar.shape == (4, latent_dim)
    torch.testing.assert_close(model.encoder(x), mu)
    assert model(x).shape == x.shape
    assert ((model(x) > 0) & (model(x) < 1)).all()


@pytest.mark.parametrize(("cls", "size", "latent_dim"), CASES)
def test_no_module_is_used_twice(cls, size, latent_dim):
    # Captum's DeepLift hooks every nonlinearity: each ReLU must be its own module
    model = cls()
    assert len(list(model.named_modules(remove_duplicate=False))) == len(
        list(model.named_modules())
    )


def test_encoder_parameters_exclude_the_decoder():
    model = MnistVae()
    explained = {id(p) for p in model.encoder_parameters()}
    assert explained == {id(p) for p in model.encoder.parameters()}
    assert explained.isdisjoint(id(p) for p in model.decoder.parameters())
    assert explained | {id(p) for p in model.decoder.parameters()} == {
        id(p) for p in model.parameters()
    }


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(2, 3)
    torch.testing.assert_close(kl_to_standard_normal(zeros, zeros), torch.zeros(2))
    # KL(N(1, e) || N(0, 1)) per unit = ½ (1 + e − 1 − 1)
    assert kl_to_standard_normal(torch.ones(1, 3), torch.ones(1, 3)).item() == pytest.approx(
        3 * 0.5 * (math.e - 1)
    )


def by_hand_beta_vae(model, x, beta, eps):
    mu, logvar = model.encoder.moments(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    logits = model.decoder(z)[..., 2:30, 2:30]  # the 32×32 output's central crop
    probs = torch.sigmoid(logits)
    reconstruction = -(x * probs.log() + (1 - x) * (1 - probs).log()).sum(dim=(1, 2, 3))
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)
    return reconstruction + beta * kl


@pytest.mark.parametrize("training", [False, True])
def test_beta_vae_loss_is_reconstruction_plus_beta_kl(training):
    torch.manual_seed(0)
    model = MnistVae(beta=5.0).train(training)
    with torch.no_grad():  # codes away from the prior: a KL worth checking
        model.encoder.layers[-1].bias.uniform_(-1.0, 1.0)
    x = images(3, 28)
    torch.manual_seed(1)
    loss = model.loss(x, torch.zeros(3), BETA_VAE)
    torch.manual_seed(1)  # the same ε as the loss drew (eval mode: z = μ, no draw)
    eps = torch.randn(3, 3) if training else torch.zeros(3, 3)
    assert loss.shape == (3,)
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(loss, by_hand_beta_vae(model, x, 5.0, eps), rtol=1e-4, atol=1e-3)
    # β matters
    model.beta = 1.0
    torch.manual_seed(1)
    assert (model.loss(x, torch.zeros(3), BETA_VAE) < loss).all()


def test_tc_vae_with_beta_one_is_the_one_sample_elbo():
    # α = β = γ = 1: the estimates of log q(z) cancel, leaving log q(z|x) − log p(z)
    torch.manual_seed(0)
    model = MnistVae(beta=1.0).train()
    x = images(6, 28)
    torch.manual_seed(1)
    tc_loss = model.loss(x, torch.zeros(6), TC_VAE)
    assert tc_loss.shape == (6,) and torch.isfinite(tc_loss).all()
    torch.manual_seed(1)
    eps = torch.randn(6, 3)
    mu, logvar = model.encoder.moments(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    reconstruction = F.binary_cross_entropy_with_logits(
        model.decode_logits(z), x, reduction="none"
    ).sum(dim=(1, 2, 3))
    normal = torch.distributions.Normal
    one_sample_kl = (
        normal(mu, torch.exp(0.5 * logvar)).log_prob(z) - normal(0.0, 1.0).log_prob(z)
    ).sum(dim=1)
    torch.testing.assert_close(tc_loss, reconstruction + one_sample_kl, rtol=1e-4, atol=1e-3)


def test_tc_vae_beta_weighs_the_total_correlation_alone():
    torch.manual_seed(0)
    model = MnistVae(beta=1.0).train()
    x = images(6, 28)
    losses = {}
    for beta in (1.0, 5.0):
        model.beta = beta
        torch.manual_seed(1)
        losses[beta] = model.loss(x, torch.zeros(6), TC_VAE)
    torch.manual_seed(1)
    eps = torch.randn(6, 3)
    mu, logvar = model.encoder.moments(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    _, tc, _ = tc_decomposition(z, mu, logvar, model.dataset_size)
    torch.testing.assert_close(losses[5.0] - losses[1.0], 4.0 * tc, rtol=1e-4, atol=1e-3)


def test_the_decomposition_averages_to_the_kl():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=g)
    logvar = 0.5 * torch.randn(4, 3, generator=g)
    n = 20_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, 4, 3, generator=g)
    # the three terms sum to log q(z|x) − log p(z), whatever the rest of the batch
    estimates = torch.vmap(lambda codes: sum(tc_decomposition(codes, mu, logvar, 1000)))(z)
    torch.testing.assert_close(
        estimates.mean(dim=0), kl_to_standard_normal(mu, logvar), atol=0.15, rtol=0
    )


def test_total_correlation_of_independent_and_correlated_codes():
    # the batch estimator (dataset_size=1); q(z) Gaussian: TC = ½(Σ log Σ_jj − log det Σ)
    g = torch.Generator().manual_seed(0)
    m, d, sigma = 500, 3, 0.3
    logvar = torch.full((m, d), 2 * math.log(sigma))
    independent = torch.randn(m, d, generator=g)
    shared = torch.randn(m, 1, generator=g).expand(m, d)
    tc = {}
    for name, mu in [("independent", independent), ("correlated", shared)]:
        z = mu + sigma * torch.randn(m, d, generator=g)
        tc[name] = tc_decomposition(z, mu, logvar, 1)[1].mean().item()
    covariance = torch.ones(d, d) + sigma**2 * torch.eye(d)
    exact = 0.5 * (covariance.diag().log().sum() - torch.logdet(covariance)).item()
    assert abs(tc["independent"]) < 0.4
    assert tc["correlated"] == pytest.approx(exact, abs=0.4)
    # MWS with a dataset of N examples shifts TC by (d − 1)·log N, nothing else
    z = shared + sigma * torch.randn(m, d, generator=g)
    shifted = (
        tc_decomposition(z, shared, logvar, 60_000)[1] - tc_decomposition(z, shared, logvar, 1)[1]
    )
    torch.testing.assert_close(shifted, torch.full((m,), (d - 1) * math.log(60_000)))


@pytest.mark.parametrize("recipe", [BETA_VAE, TC_VAE])
def test_a_few_adam_steps_reduce_the_loss(recipe):
    torch.manual_seed(0)
    model = MnistVae(beta=5.0)
    x = (images(8, 28) > 0.7).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.eval()
    with torch.no_grad():
        before = model.loss(x, torch.zeros(8), recipe).mean().item()
    model.train()
    for _ in range(15):
        loss = model.loss(x, torch.zeros(8), recipe).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model.loss(x, torch.zeros(8), recipe).mean().item()
    assert after < before


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="unknown objective"):
        MnistVae().loss(images(2, 28), torch.zeros(2), Recipe(objective="reconstruction"))


@pytest.mark.parametrize("objective", ["beta_vae", "tc_vae"])
def test_trains_side_by_side_under_vmap(objective):
    recipe = Recipe(objective=objective, epochs=1, batch_size=8, validation_fraction=0.25)
    x, y = images(24, 28), torch.zeros(24, dtype=torch.long)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(MnistVae(beta=5.0))
    logs = train_side_by_side(models, x, y, recipe, [0, 1], torch.device("cpu"))
    assert len(logs) == 2
    for log in logs:
        assert log.epochs_run == 1
        assert math.isfinite(log.history[0]["validation_loss"])
    assert not torch.equal(models[0].encoder(x), models[1].encoder(x))
