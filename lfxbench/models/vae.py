"""Disentangled VAEs (β-VAE, β-TCVAE) of the label-free XAI paper's Tables 8 and 9.

Both are the Burgess et al. (2018) architectures the paper reproduces: 4×4 convolutions of
stride 2 and padding 1 (32 channels), Linear 512 -> 256 -> 256 -> 2·d_H for the encoder,
whose output is split into (μ, log σ²), and a mirrored decoder. The *explained* encoder
(``model.encoder``) returns μ(x) only; ``model.encoder.moments(x)`` gives (μ, log σ²).

Decisions (the tables leave them open or are garbled by the PDF extraction):

* MNIST images are 28×28 but Table 8 is the 32×32 network (512 = 32·4·4 after three
  halvings). The encoder zero-pads 28 -> 32 (2 pixels a side, the digits' own black
  background) as its first layer, so the table holds verbatim and attributions are still
  over the 28×28 input; the decoder produces 32×32 and its central 28×28 crop is the
  reconstruction.
* The tables list a ReLU after the encoder's last Linear and an "output padding 1" on the
  transposed convolutions; neither is in Burgess et al. (a ReLU would force μ ≥ 0 and
  log σ² ≥ 0, and k4 s2 p1 already doubles the size exactly), so the last Linear is linear
  and the transposed convolutions use padding 1. Table 9's first decoder layer reads
  "Conv2d" but must upsample 4 -> 8: it is a ConvTranspose2d like the others.
* Reconstruction is the Bernoulli negative log-likelihood (the paper's code default),
  summed over pixels; the decoder returns logits and the loss uses BCE-with-logits (the
  same value as BCE on the table's final Sigmoid, but stable and safe under bfloat16
  autocast). ``model(x)`` applies the Sigmoid.
* In training mode z = μ + σ·ε (reparametrisation); in eval mode z = μ (as Burgess et al.'s
  code), so validation losses and loss-based explanations are deterministic.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe
from lfxbench.registry import register_model

CHANNELS = 32
HIDDEN = 256
LOG_2PI = math.log(2 * math.pi)


class VariationalEncoder(nn.Module):
    """Inputs -> μ (``forward``, what is explained) or (μ, log σ²) (``moments``)."""

    def __init__(self, n_convs: int, latent_dim: int, pad: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        layers: list[nn.Module] = [nn.ZeroPad2d(pad)] if pad else []
        for i in range(n_convs):
            in_channels = 1 if i == 0 else CHANNELS
            layers += [nn.Conv2d(in_channels, CHANNELS, 4, stride=2, padding=1), nn.ReLU()]
        layers += [
            nn.Flatten(),
            nn.Linear(CHANNELS * 4 * 4, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, 2 * latent_dim),  # (μ, log σ²)
        ]
        self.layers = nn.Sequential(*layers)

    def moments(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.layers(inputs)
        return out[:, : self.latent_dim], out[:, self.latent_dim :]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.moments(inputs)[0]


def variational_decoder(n_convs: int, latent_dim: int) -> nn.Sequential:
    """Latent -> pixel logits, 4×4 -> (4·2^n_convs)² (the tables' Sigmoid is in the loss)."""
    layers: list[nn.Module] = [
        nn.Linear(latent_dim, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, CHANNELS * 4 * 4),
        nn.ReLU(),
        nn.Unflatten(1, (CHANNELS, 4, 4)),
    ]
    for i in range(n_convs):
        last = i == n_convs - 1
        layers.append(nn.ConvTranspose2d(CHANNELS, 1 if last else CHANNELS, 4, stride=2, padding=1))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per example: ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; μ, σ²)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def tc_decomposition(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example (index-code MI, total correlation, dimension-wise KL) terms of β-TCVAE.

    Chen et al. (2018), minibatch-weighted sampling over the M codes of the batch:
    ``log q(z_i) ≈ logsumexp_k log q(z_i | x_k) − log(N·M)`` and
    ``log Π_j q(z_ij) ≈ Σ_j [logsumexp_k log q(z_ij | x_k) − log(N·M)]``, with N the
    dataset size. Then ``MI_i = log q(z_i|x_i) − log q(z_i)``,
    ``TC_i = log q(z_i) − log Π_j q(z_ij)``, ``DWKL_i = log Π_j q(z_ij) − log p(z_i)``;
    their sum is ``log q(z_i|x_i) − log p(z_i)``, a one-sample estimate of the KL. N only
    shifts MI, TC and DWKL by the constants ``log N``, ``(d−1)·log N`` and ``−d·log N``
    (none reaches a gradient); ``dataset_size=1`` gives the plain batch estimator
    ``log q(z_i) ≈ logsumexp_k log q(z_i | x_k) − log M``.
    """
    batch = z.shape[0]
    log_q_z_given_x = gaussian_log_density(z, mu, logvar).sum(dim=1)
    log_p_z = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)
    # [i, k, j] = log q(z_ij | x_k)
    pairwise = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_nm = math.log(dataset_size * batch)
    log_q_z = torch.logsumexp(pairwise.sum(dim=2), dim=1) - log_nm
    log_prod_q_zj = (torch.logsumexp(pairwise, dim=1) - log_nm).sum(dim=1)
    return (
        log_q_z_given_x - log_q_z,
        log_q_z - log_prod_q_zj,
        log_prod_q_zj - log_p_z,
    )


class _DisentangledVae(ZooModel):
    """Shared body of the two registered VAEs (not registered itself)."""

    objectives = ("beta_vae", "tc_vae")
    # The TC-VAE's log q(z) is estimated from the other codes of the batch.
    batch_dependent_objectives = ("tc_vae",)
    n_convs: int
    pad: int

    def __init__(self, latent_dim: int, beta: float, dataset_size: int):
        super().__init__()
        self.latent_dim, self.beta, self.dataset_size = latent_dim, beta, dataset_size
        self.encoder = VariationalEncoder(self.n_convs, latent_dim, pad=self.pad)
        self.decoder = variational_decoder(self.n_convs, latent_dim)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(z)
        if self.pad:
            logits = logits[..., self.pad : -self.pad, self.pad : -self.pad]
        return logits

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Reconstruction (pixel probabilities) from the mean code."""
        return torch.sigmoid(self.decode_logits(self.encoder(inputs)))

    def sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
        objective = recipe.objective or self.objectives[0]
        if objective not in self.objectives:
            raise ValueError(f"unknown objective {objective!r}; known: {self.objectives}")
        mu, logvar = self.encoder.moments(inputs)
        mu, logvar = mu.float(), logvar.float()  # densities in float32 under autocast
        z = self.sample(mu, logvar)
        logits = self.decode_logits(z)
        reconstruction = F.binary_cross_entropy_with_logits(
            logits.float(), inputs.float(), reduction="none"
        ).flatten(1)
        reconstruction = reconstruction.sum(dim=1)
        if objective == "beta_vae":
            return reconstruction + self.beta * kl_to_standard_normal(mu, logvar)
        mi, tc, dwkl = tc_decomposition(z, mu, logvar, self.dataset_size)
        return reconstruction + mi + self.beta * tc + dwkl


@register_model("mnist_vae")
class MnistVae(_DisentangledVae):
    """β-/TC-VAE for 28×28 MNIST, paper Table 8 (3 convs on the input zero-padded to 32)."""

    n_convs, pad = 3, 2

    def __init__(self, latent_dim: int = 3, beta: float = 1.0, dataset_size: int = 60_000):
        super().__init__(latent_dim, beta, dataset_size)


@register_model("dsprites_vae")
class DspritesVae(_DisentangledVae):
    """β-/TC-VAE for 64×64 dSprites, paper Table 9 (4 convs 32 channels, d_H = 6)."""

    n_convs, pad = 4, 0

    def __init__(self, latent_dim: int = 6, beta: float = 1.0, dataset_size: int = 10_000):
        super().__init__(latent_dim, beta, dataset_size)
