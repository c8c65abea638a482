"""Label-free feature importance: the science (completeness, invariance) and the batching.

The label-free attribution of an encoder ``f`` at ``x`` is the attribution of the scalar
``g_x(x~) = <f(x), f(x~)>``. These tests check properties that follow from that definition
on tiny float64 encoders, and that the batched wrapper meets Captum run one example at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import DeepLift, IntegratedGradients, Saliency
from torch import nn

from lfxbench.registry import METHODS

CAPTUM_METHODS = ("saliency", "integrated_gradients", "gradient_shap", "deeplift")
DTYPE = torch.float64


# --------------------------------------------------------------------------- helpers


def mlp(activation: type[nn.Module] = nn.ReLU, n_in: int = 6, n_out: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return (
        nn.Sequential(
            nn.Linear(n_in, 8), activation(), nn.Linear(8, 8), activation(), nn.Linear(8, n_out)
        )
        .to(DTYPE)
        .eval()
    )


def conv_net() -> nn.Module:
    torch.manual_seed(1)
    return (
        nn.Sequential(
            nn.Conv2d(1, 3, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(3, 2, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * 2 * 2, 5),
        )
        .to(DTYPE)
        .eval()
    )


def mlp_inputs(n: int = 5, n_in: int = 6) -> torch.Tensor:
    return torch.randn(n, n_in, generator=torch.Generator().manual_seed(2), dtype=DTYPE)


def conv_inputs(n: int = 3) -> torch.Tensor:
    return torch.randn(n, 1, 6, 6, generator=torch.Generator().manual_seed(3), dtype=DTYPE)


ENCODERS = {"mlp": (mlp, mlp_inputs), "conv": (conv_net, conv_inputs)}


def g(encoder: nn.Module, x: torch.Tensor, x_tilde: torch.Tensor) -> torch.Tensor:
    """``g_x(x~)`` per example."""
    with torch.no_grad():
        return (encoder(x).flatten(1) * encoder(x_tilde).flatten(1)).sum(dim=1)


def seed_all(seed: int) -> None:
    # Captum's Gradient SHAP draws its interpolation points and baseline rows from NumPy's
    # global generator; the method reseeds numpy from torch, this seeds both anyway.
    torch.manual_seed(seed)
    np.random.seed(seed)


def attribute(name: str, encoder: nn.Module, inputs, baselines, seed: int = 0, **params):
    method = METHODS.get(name)(encoder, **params)
    seed_all(seed)
    return method.attribute(inputs, baselines)


class ScalarAuxiliary(nn.Module):
    """Plain single-example ``h(x~) = <f(x_i), f(x~)>`` with ``f(x_i)`` a fixed buffer."""

    def __init__(self, encoder: nn.Module, x: torch.Tensor):
        super().__init__()
        self.encoder = encoder
        with torch.no_grad():
            self.register_buffer("reference", encoder(x).flatten(1).clone())

    def forward(self, x_tilde: torch.Tensor) -> torch.Tensor:
        return (self.encoder(x_tilde).flatten(1) * self.reference).sum(dim=1)


# --------------------------------------------------------------------------- completeness


def test_integrated_gradients_is_complete_on_a_smooth_encoder():
    encoder = mlp(nn.Tanh)
    x = mlp_inputs()
    x0 = 0.3 * torch.ones_like(x)  # a non-zero baseline, so <f(x), f(x0)> matters
    attributions = attribute("integrated_gradients", encoder, x, x0, n_steps=64)

    expected = g(encoder, x, x) - g(encoder, x, x0)  # ||f(x)||^2 - <f(x), f(x0)>
    assert attributions.shape == x.shape
    assert expected.abs().min() > 1e-2  # a meaningful, non-degenerate check
    torch.testing.assert_close(attributions.sum(dim=1), expected, rtol=1e-3, atol=0)


def test_integrated_gradients_completeness_fails_for_a_wrong_baseline():
    """The completeness check can fail: the sums do not match another baseline's gap."""
    encoder = mlp(nn.Tanh)
    x = mlp_inputs()
    attributions = attribute("integrated_gradients", encoder, x, torch.zeros_like(x), n_steps=64)
    wrong = g(encoder, x, x) - g(encoder, x, 0.3 * torch.ones_like(x))
    assert not torch.allclose(attributions.sum(dim=1), wrong, rtol=1e-3)


@pytest.mark.parametrize("name", ["deeplift", "integrated_gradients"])
@pytest.mark.parametrize("encoder_name", sorted(ENCODERS))
def test_deeplift_and_integrated_gradients_are_complete_on_relu_networks(name, encoder_name):
    make_encoder, make_inputs = ENCODERS[encoder_name]
    encoder, x = make_encoder(), make_inputs()
    x0 = torch.zeros_like(x)
    params = {"n_steps": 2000, "method": "riemann_trapezoid"} if name != "deeplift" else {}
    attributions = attribute(name, encoder, x, x0, **params)

    expected = g(encoder, x, x) - g(encoder, x, x0)
    assert attributions.shape == x.shape
    # DeepLIFT's rescale rule is exactly complete; IG is up to its quadrature error at the
    # kinks, measured against the scale of g (a gap can be small next to ||f(x)||^2).
    scale = g(encoder, x, x).abs().max().item()
    tolerance = 1e-9 if name == "deeplift" else 1e-3
    torch.testing.assert_close(
        attributions.flatten(1).sum(dim=1), expected, rtol=tolerance, atol=tolerance * scale
    )


# --------------------------------------------------------------------------- invariance


def orthogonal(n: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(
        torch.randn(n, n, generator=torch.Generator().manual_seed(4), dtype=DTYPE)
    )
    return q


def rotated(encoder: nn.Module, n_latent: int) -> nn.Module:
    rotation = nn.Linear(n_latent, n_latent, bias=False).to(DTYPE)
    with torch.no_grad():
        rotation.weight.copy_(orthogonal(n_latent))
    return nn.Sequential(encoder, rotation).eval()


@pytest.mark.parametrize("name", CAPTUM_METHODS)
@pytest.mark.parametrize("encoder_name", sorted(ENCODERS))
def test_attributions_are_invariant_to_an_orthogonal_map_of_the_latent_space(name, encoder_name):
    make_encoder, make_inputs = ENCODERS[encoder_name]
    encoder, x = make_encoder(), make_inputs()
    n_latent = encoder(x).shape[1]
    q_encoder = rotated(encoder, n_latent)
    assert not torch.allclose(q_encoder(x), encoder(x))  # the latents do change
    baselines = torch.zeros_like(x)
    params = {"n_samples": 7} if name == "gradient_shap" else {}

    plain = attribute(name, encoder, x, baselines, seed=5, **params)
    rotated_attr = attribute(name, q_encoder, x, baselines, seed=5, **params)

    assert plain.abs().max() > 1e-3
    torch.testing.assert_close(rotated_attr, plain, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", CAPTUM_METHODS)
def test_attributions_change_under_a_non_orthogonal_map(name):
    """The invariance above is specific to orthogonal maps: scaling the latents changes g."""
    encoder, x = mlp(), mlp_inputs()
    scaled = nn.Sequential(encoder, nn.Linear(4, 4, bias=False).to(DTYPE)).eval()
    with torch.no_grad():
        scaled[1].weight.copy_(torch.diag(torch.tensor([1.0, 2.0, 3.0, 0.5], dtype=DTYPE)))
    params = {"n_samples": 7} if name == "gradient_shap" else {}
    plain = attribute(name, encoder, x, torch.zeros_like(x), seed=5, **params)
    changed = attribute(name, scaled, x, torch.zeros_like(x), seed=5, **params)
    assert not torch.allclose(changed, plain, rtol=1e-3, atol=1e-6)


# --------------------------------------------------------------------------- batching


def per_example_captum(
    name: str, encoder: nn.Module, x: torch.Tensor, x0: torch.Tensor, **params
) -> torch.Tensor:
    rows = []
    for i in range(len(x)):
        scalar = ScalarAuxiliary(encoder, x[i : i + 1]).eval()
        inputs = x[i : i + 1].clone().requires_grad_()
        if name == "saliency":
            rows.append(Saliency(scalar).attribute(inputs, **params))
        elif name == "integrated_gradients":
            rows.append(
                IntegratedGradients(scalar).attribute(inputs, baselines=x0[i : i + 1], **params)
            )
        else:
            rows.append(DeepLift(scalar).attribute(inputs, baselines=x0[i : i + 1]))
    return torch.cat(rows).detach()


BATCH_CASES = [
    ("saliency", {}, {}),
    ("saliency", {"absolute": False}, {"abs": False}),
    ("integrated_gradients", {"n_steps": 16}, {"n_steps": 16}),
    (
        "integrated_gradients",
        {"n_steps": 9, "method": "riemann_left", "internal_batch_size": 7},
        {"n_steps": 9, "method": "riemann_left"},
    ),
    ("deeplift", {}, {}),
]


@pytest.mark.parametrize(("name", "params", "captum_params"), BATCH_CASES)
@pytest.mark.parametrize("encoder_name", sorted(ENCODERS))
def test_batched_wrapper_equals_a_per_example_loop_of_plain_captum(
    name, params, captum_params, encoder_name
):
    make_encoder, make_inputs = ENCODERS[encoder_name]
    encoder, x = make_encoder(), make_inputs()
    # Per-example baselines that differ, so a baseline paired with the wrong row would show.
    x0 = 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(6), dtype=DTYPE)

    batched = attribute(name, encoder, x, x0, **params)
    expected = per_example_captum(name, encoder, x, x0, **captum_params)

    assert batched.shape == x.shape
    assert not torch.allclose(expected[0], expected[1])  # the rows really differ
    torch.testing.assert_close(batched, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("baseline_rows", ["per_example", "single"])
def test_gradient_shap_on_a_linear_encoder_has_the_closed_form(baseline_rows):
    """For f(x) = W x, grad g_x = W^T W x everywhere, so GradShap = (x - b) * W^T W x exactly.

    Every random interpolation point gives the same gradient, so the answer does not depend
    on the draws; it does depend on each expanded sample meeting its own example's f(x).
    """
    torch.manual_seed(7)
    encoder = nn.Linear(6, 3, bias=False).to(DTYPE).eval()
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(8), dtype=DTYPE)
    baselines = torch.zeros_like(x) if baseline_rows == "per_example" else torch.zeros_like(x[:1])
    w = encoder.weight.detach()

    attributions = attribute("gradient_shap", encoder, x, baselines, n_samples=6, stdevs=0.0)

    expected = x * (x @ w.T @ w)
    torch.testing.assert_close(attributions, expected, rtol=1e-10, atol=1e-12)
    # A wrapper that paired samples with the wrong example's latent would give this instead:
    mismatched = x * (x.roll(1, dims=0) @ w.T @ w)
    assert not torch.allclose(attributions, mismatched)


def test_labelfree_gradients_use_each_examples_own_latent():
    """Saliency of example i is |W^T W x_i| for a linear encoder, not another row's."""
    torch.manual_seed(9)
    encoder = nn.Linear(4, 3, bias=False).to(DTYPE).eval()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(10), dtype=DTYPE)
    w = encoder.weight.detach()
    attributions = attribute("saliency", encoder, x, torch.zeros_like(x), absolute=False)
    torch.testing.assert_close(attributions, x @ w.T @ w, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- random


def test_random_method_has_the_input_shape_and_is_seeded():
    encoder = conv_net()
    x = conv_inputs(4)
    method = METHODS.get("random")(encoder)

    torch.manual_seed(11)
    first = method.attribute(x, torch.zeros_like(x))
    torch.manual_seed(11)
    second = method.attribute(x, torch.zeros_like(x))
    torch.manual_seed(12)
    other = method.attribute(x, torch.zeros_like(x))

    assert first.shape == x.shape
    assert first.dtype == x.dtype
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert first.std() > 0.5  # noise, not a constant


def test_every_required_method_is_registered():
    for name in (*CAPTUM_METHODS, "random"):
        assert name in METHODS


def test_gradient_shap_is_reproducible_under_torch_manual_seed():
    encoder, x = mlp(), mlp_inputs()
    method = METHODS.get("gradient_shap")(encoder, n_samples=5)
    torch.manual_seed(13)
    first = method.attribute(x, torch.zeros_like(x))
    torch.manual_seed(13)
    second = method.attribute(x, torch.zeros_like(x))
    torch.testing.assert_close(first, second)


# --------------------------------------------------------------------------- wrapper = Captum


def mnist_like_encoder() -> nn.Module:
    """The paper's MNIST encoder (conv, batch norm, ReLU, linear) in float32, as benchmarked."""
    from lfxbench.models.mnist_autoencoder import mnist_encoder

    torch.manual_seed(14)
    return mnist_encoder(latent_dim=4).eval()


def bare_captum(name: str, encoder: nn.Module, x, x0, h, seed: int = 0, **params):
    """One plain Captum call on ``<h, f(x~)>`` with ``h = f(x)`` precomputed: the work the
    label-free wrapper cannot avoid."""
    from captum.attr import GradientShap

    from lfxbench.methods.labelfree import LabelFreeAuxiliary

    auxiliary = LabelFreeAuxiliary(encoder)
    if name == "saliency":
        return Saliency(auxiliary).attribute(
            x.clone().requires_grad_(), abs=True, additional_forward_args=(h,)
        )
    if name == "deeplift":
        return DeepLift(auxiliary).attribute(
            x.clone().requires_grad_(), baselines=x0, additional_forward_args=(h,)
        )
    if name == "integrated_gradients":
        return IntegratedGradients(auxiliary).attribute(
            x, baselines=x0, additional_forward_args=(h,), n_steps=params.get("n_steps", 50)
        )
    # The wrapper seeds numpy's generator from torch's: the same draws as this.
    torch.manual_seed(seed)
    np.random.seed(int(torch.randint(2**31 - 1, (1,)).item()))
    return GradientShap(auxiliary).attribute(
        x, baselines=x0, additional_forward_args=(h,), n_samples=params["n_samples"]
    )


WRAPPER_CASES = [
    ("saliency", {}),
    ("integrated_gradients", {"n_steps": 12}),
    ("gradient_shap", {"n_samples": 7}),
    ("deeplift", {}),
]


@pytest.mark.parametrize(("name", "params"), WRAPPER_CASES)
@pytest.mark.parametrize("encoder_name", [*sorted(ENCODERS), "mnist"])
def test_the_wrapper_returns_the_bare_captum_call(name, params, encoder_name):
    """Whatever the wrapper saves (Saliency and DeepLift read f(x) off Captum's own pass),
    its result is that of Captum on <f(x), f(x~)> with f(x) computed beforehand."""
    if encoder_name == "mnist":
        encoder = mnist_like_encoder()
        generator = torch.Generator().manual_seed(15)
        x = torch.rand(6, 1, 28, 28, generator=generator)
    else:
        make_encoder, make_inputs = ENCODERS[encoder_name]
        encoder, x = make_encoder(), make_inputs()
        generator = torch.Generator().manual_seed(16)
    x0 = 0.1 * torch.rand(x.shape, generator=generator, dtype=x.dtype)
    with torch.no_grad():
        h = encoder(x).flatten(1)

    wrapped = attribute(name, encoder, x, x0, seed=17, **params)
    bare = bare_captum(name, encoder, x, x0, h, seed=17, **params).detach()

    assert wrapped.abs().max() > 0
    assert not wrapped.requires_grad
    # DeepLift's f(x) comes from a pass over twice the rows: float32 kernels may round
    # differently with the batch size (an ulp or so); float64 leaves nothing to see.
    tolerance = 1e-10 if x.dtype == torch.float64 else 1e-5
    scale = bare.abs().max().item()
    torch.testing.assert_close(wrapped, bare, rtol=tolerance, atol=tolerance * scale)


class RowCounter(nn.Module):
    """The encoder, counting the rows of every forward pass."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder, self.passes = encoder, []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.passes.append(len(inputs))
        return self.encoder(inputs)


@pytest.mark.parametrize(
    ("name", "params", "captum_rows", "reference_rows"),
    [
        ("saliency", {}, 1, 0),  # Captum encodes x itself: f(x) is read off that pass
        ("deeplift", {}, 2, 0),  # one pass on cat([x, x0]): f(x) is its first half
        ("integrated_gradients", {"n_steps": 9}, 9, 1),  # no step is x itself
        ("gradient_shap", {"n_samples": 4}, 4, 1),
    ],
)
def test_the_wrapper_adds_at_most_one_no_grad_pass_over_the_batch(
    name, params, captum_rows, reference_rows
):
    encoder, x = conv_net(), conv_inputs(5)
    counter = RowCounter(encoder)
    attribute(name, counter, x, torch.zeros_like(x), **params)
    expected = [len(x)] * reference_rows + [captum_rows * len(x)]
    assert counter.passes == expected


def test_own_latents_need_examples_and_baselines_in_pairs():
    from lfxbench.methods.labelfree import OwnLatents, own_reference_latents

    latents = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(own_reference_latents(latents, OwnLatents.ROWS), latents)
    with pytest.raises(ValueError, match="3 rows"):
        own_reference_latents(latents, OwnLatents.FIRST_HALF)
    paired = own_reference_latents(latents[:2], OwnLatents.FIRST_HALF)
    assert torch.equal(paired, torch.stack([latents[0], latents[0]]))
