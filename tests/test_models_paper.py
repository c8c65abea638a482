"""The paper's ECG5000 LSTM autoencoder and the SimCLR models (ResNet-18, DenseNet-121)."""

from __future__ import annotations

import colorsys
import math
from types import SimpleNamespace

import pytest
import torch
from captum.attr import DeepLift, IntegratedGradients

from lfxbench.models.augment import hsv_to_rgb, rgb_to_hsv, simclr_augment
from lfxbench.models.ecg_autoencoder import EcgLstmAutoencoder, cudnn_off_in_eval
from lfxbench.models.simclr import SimclrDensenet121, SimclrResnet18, nt_xent
from lfxbench.params import validate_params
from lfxbench.recipe import Recipe
from lfxbench.registry import MODELS

# A SimCLR small enough for a CPU test: backbone channels / 8, a narrow projection head.
SMALL = {"width": 0.125, "projection_hidden_dim": 64, "projection_dim": 32}
SIMCLR_CLASSES = [SimclrResnet18, SimclrDensenet121]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread for these tiny models (restored after each test).

    An LSTM runs one parallel region per time step; on a 2-core machine where another
    process holds a core, every region waits for a descheduled OpenMP thread and a 140-step
    forward took seconds instead of milliseconds. One thread is as fast for these sizes.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def heartbeats(n: int = 8, length: int = 140, seed: int = 0) -> torch.Tensor:
    """``[n, 1, length]`` smooth ECG-like series: a sharp peak and a slow wave, jittered."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, length)
    centre = 0.3 + 0.1 * torch.rand(n, 1, generator=generator)
    peak = 3 * torch.exp(-(((t - centre) / 0.02) ** 2))
    wave = torch.sin(2 * math.pi * (t + torch.rand(n, 1, generator=generator)))
    return (peak + 0.5 * wave - 0.5).unsqueeze(1)


def images(n: int = 8, seed: int = 0) -> torch.Tensor:
    """``[n, 3, 32, 32]`` in [0, 1] with some structure (blurred noise + a gradient)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 3, 8, 8, generator=generator)
    upsampled = torch.nn.functional.interpolate(noise, size=32, mode="bilinear")
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32)
    return (0.7 * upsampled + 0.3 * ramp).clamp(0, 1)


def small_simclr(cls, seed: int = 0):
    torch.manual_seed(seed)
    return cls(**SMALL)


# ----------------------------------------------------------------- registry and params


def test_registered_with_objectives_and_descriptions():
    entries = {entry.name: entry for entry in MODELS}
    assert MODELS.get("ecg_lstm_autoencoder") is EcgLstmAutoencoder
    assert MODELS.get("simclr_resnet18") is SimclrResnet18
    assert MODELS.get("simclr_densenet121") is SimclrDensenet121
    assert EcgLstmAutoencoder.objectives == ("reconstruction",)
    assert SimclrResnet18.objectives == SimclrDensenet121.objectives == ("simclr",)
    for name in ("ecg_lstm_autoencoder", "simclr_resnet18", "simclr_densenet121"):
        assert entries[name].description


def test_constructor_params_are_validated():
    params, problems = validate_params(EcgLstmAutoencoder, {})
    assert params == {"latent_dim": 64, "sequence_length": 140} and not problems
    _, problems = validate_params(EcgLstmAutoencoder, {"latent_dim": 0})
    assert [field for field, _ in problems] == ["latent_dim"]
    params, problems = validate_params(SimclrResnet18, {"width": 0.5})
    assert not problems and params["width"] == 0.5 and params["temperature"] == 0.5
    _, problems = validate_params(SimclrDensenet121, {"temperature": 0, "depth": 3})
    assert sorted(field for field, _ in problems) == ["depth", "temperature"]


# ---------------------------------------------------------------------- shapes and params


@pytest.mark.parametrize(
    ("build", "inputs", "latent"),
    [
        (lambda: EcgLstmAutoencoder(), torch.zeros(3, 1, 140), 64),
        (lambda: EcgLstmAutoencoder(latent_dim=16), torch.zeros(3, 1, 140), 16),
        (lambda: SimclrResnet18(), torch.zeros(2, 3, 32, 32), 512),
        (lambda: SimclrDensenet121(), torch.zeros(2, 3, 32, 32), 1024),
        (lambda: SimclrResnet18(**SMALL), torch.zeros(2, 3, 32, 32), 64),
        (lambda: SimclrDensenet121(**SMALL), torch.zeros(2, 3, 32, 32), 128),
    ],
    ids=["ecg", "ecg16", "resnet18", "densenet121", "resnet18-small", "densenet121-small"],
)
def test_encoder_output_shape(build, inputs, latent):
    model = build().eval()
    with torch.no_grad():
        assert model.encoder(inputs).shape == (len(inputs), latent)


def test_ecg_reconstruction_and_projection_shapes():
    with torch.no_grad():
        assert EcgLstmAutoencoder(latent_dim=8).eval()(heartbeats(2)).shape == (2, 1, 140)
        assert SimclrResnet18(**SMALL).eval()(images(2)).shape == (2, 32)
        default = SimclrResnet18().eval()
        assert default(images(2)).shape == (2, 128)
    assert default.projection_head[0].in_features == 512
    assert default.projection_head[0].out_features == 2048
    assert SimclrDensenet121().projection_head[0].in_features == 1024


@pytest.mark.parametrize(
    ("build", "other"),
    [
        (lambda: EcgLstmAutoencoder(latent_dim=16), "decoder"),
        (lambda: SimclrResnet18(**SMALL), "projection_head"),
        (lambda: SimclrDensenet121(**SMALL), "projection_head"),
    ],
    ids=["ecg", "resnet18", "densenet121"],
)
def test_encoder_parameters_are_exactly_the_encoders(build, other):
    model = build()
    explained = [id(p) for p in model.encoder_parameters()]
    assert len(explained) == len(set(explained))
    assert set(explained) == {id(p) for p in model.encoder.parameters()}
    rest = {id(p) for p in getattr(model, other).parameters()}
    assert rest and not rest & set(explained)
    assert set(explained) | rest == {id(p) for p in model.parameters()}


# -------------------------------------------------------------------------------- ECG


def lstm_by_hand(lstm: torch.nn.LSTM, series: torch.Tensor) -> torch.Tensor:
    """``[B, T, I]`` -> every hidden state ``[B, T, H]``, PyTorch's gate order i, f, g, o."""
    batch, hidden_size = series.shape[0], lstm.hidden_size
    h = series.new_zeros(batch, hidden_size)
    c = series.new_zeros(batch, hidden_size)
    states = []
    for step in range(series.shape[1]):
        gates = (
            series[:, step] @ lstm.weight_ih_l0.T
            + lstm.bias_ih_l0
            + h @ lstm.weight_hh_l0.T
            + lstm.bias_hh_l0
        )
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        states.append(h)
    return torch.stack(states, dim=1)


def test_ecg_latent_is_last_hidden_state_of_the_second_lstm():
    torch.manual_seed(0)
    model = EcgLstmAutoencoder(latent_dim=8, sequence_length=140).eval()
    x = heartbeats(4)
    encoder = model.encoder
    assert (encoder.rnn1.input_size, encoder.rnn1.hidden_size) == (1, 16)
    assert (encoder.rnn2.input_size, encoder.rnn2.hidden_size) == (16, 8)
    with torch.no_grad():
        states = lstm_by_hand(encoder.rnn2, lstm_by_hand(encoder.rnn1, x.transpose(1, 2)))
        latent = encoder(x)
        torch.testing.assert_close(latent, states[:, -1], atol=1e-5, rtol=1e-4)
        # Not the first or a mean: the last step (the states do move over time).
        assert not torch.allclose(states[:, -1], states[:, -2], atol=1e-4)

        decoder = model.decoder
        repeated = latent.unsqueeze(1).expand(-1, 140, -1)
        hidden = lstm_by_hand(decoder.rnn2, lstm_by_hand(decoder.rnn1, repeated))
        by_hand = decoder.output_layer(hidden).transpose(1, 2)
        torch.testing.assert_close(model(x), by_hand, atol=1e-5, rtol=1e-4)


def test_ecg_loss_is_l1_mean_over_time_per_example():
    torch.manual_seed(0)
    model = EcgLstmAutoencoder(latent_dim=8).eval()
    x = heartbeats(5)
    with torch.no_grad():
        loss = model.loss(x, torch.zeros(5, dtype=torch.long), Recipe())
        expected = (model(x) - x).abs().mean(dim=(1, 2))
    assert loss.shape == (5,)
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="sequence_length"):
        model.loss(x[..., :100], torch.zeros(5, dtype=torch.long), Recipe())


def test_ecg_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = EcgLstmAutoencoder(latent_dim=16)
    x, labels, recipe = heartbeats(8), torch.zeros(8, dtype=torch.long), Recipe()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = model.loss(x, labels, recipe).mean().item()
    for _ in range(5):
        loss = model.loss(x, labels, recipe).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = model.loss(x, labels, recipe).mean().item()
    assert after < 0.9 * before


def test_cudnn_is_switched_off_only_in_eval_mode_on_cuda():
    model = EcgLstmAutoencoder(latent_dim=4)
    enabled = torch.backends.cudnn.enabled
    on_cuda = SimpleNamespace(is_cuda=True)
    with cudnn_off_in_eval(model.eval(), torch.zeros(1)):
        assert torch.backends.cudnn.enabled == enabled  # CPU tensors: nothing to do
    with cudnn_off_in_eval(model.train(), on_cuda):
        assert torch.backends.cudnn.enabled == enabled  # training keeps cuDNN
    with cudnn_off_in_eval(model.eval(), on_cuda):
        assert torch.backends.cudnn.enabled is False
    assert torch.backends.cudnn.enabled == enabled


# ----------------------------------------------------------------------------- NT-Xent


def nt_xent_by_hand(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's eq. (1) written out: l(i, j) for every ordered positive pair, then per example."""
    views = [v / v.norm() for v in torch.cat([z1, z2]).double()]
    n = len(z1)

    def term(i: int, j: int) -> float:
        numerator = math.exp(float(views[i] @ views[j]) / temperature)
        denominator = sum(
            math.exp(float(views[i] @ views[k]) / temperature) for k in range(2 * n) if k != i
        )
        return -math.log(numerator / denominator)

    return torch.tensor(
        [(term(i, i + n) + term(i + n, i)) / 2 for i in range(n)], dtype=torch.float64
    )


@pytest.mark.parametrize("temperature", [0.5, 0.1, 2.0])
def test_nt_xent_matches_the_formula_written_out(temperature):
    generator = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(5, 7, generator=generator), torch.randn(5, 7, generator=generator)
    loss = nt_xent(z1, z2, temperature)
    assert loss.shape == (5,) and loss.dtype == torch.float32
    torch.testing.assert_close(
        loss.double(), nt_xent_by_hand(z1, z2, temperature), atol=1e-5, rtol=1e-5
    )
    # The mean is SimCLR's batch loss: the cross-entropy over all 2N views.
    torch.testing.assert_close(
        loss.mean().double(), nt_xent_by_hand(z1, z2, temperature).mean(), atol=1e-5, rtol=1e-5
    )


def test_nt_xent_identical_orthogonal_views_reach_the_closed_form():
    n, temperature = 4, 0.5
    scales = torch.tensor([[1.0], [3.0], [0.5], [7.0]])  # cosine similarity ignores norms
    z = torch.eye(n, 6)[:n] * scales
    loss = nt_xent(z, z.clone(), temperature)
    # Positive similarity 1, all 2n - 2 negatives orthogonal.
    expected = math.log(1 + (2 * n - 2) * math.exp(-1 / temperature))
    torch.testing.assert_close(loss, torch.full((n,), expected))
    # Lower than mismatched views (each partner orthogonal, another example identical) and
    # than random embeddings.
    assert (nt_xent(z, z.roll(1, dims=0), temperature) > loss).all()
    generator = torch.Generator().manual_seed(0)
    random = torch.randn(2, n, 6, generator=generator)
    assert nt_xent(random[0], random[1], temperature).mean() > loss.mean()


def test_nt_xent_is_invariant_to_a_common_rotation():
    generator = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(6, 16, generator=generator), torch.randn(6, 16, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=generator))
    torch.testing.assert_close(nt_xent(z1 @ rotation, z2 @ rotation), nt_xent(z1, z2))
    # A rotation of one view only is not a symmetry.
    assert not torch.allclose(nt_xent(z1 @ rotation, z2), nt_xent(z1, z2), atol=1e-3)


def test_nt_xent_single_pair_and_gradients():
    z = torch.randn(1, 4, requires_grad=True)
    assert nt_xent(z, torch.randn(1, 4)).item() == pytest.approx(0.0, abs=1e-6)
    z1, z2 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4)
    nt_xent(z1, z2).mean().backward()
    assert torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


# ------------------------------------------------------------------------ augmentations


def test_augmentations_keep_shape_and_range_and_differ_between_views():
    x = images(6)
    generator = torch.Generator().manual_seed(0)
    first, second = simclr_augment(x, generator), simclr_augment(x, generator)
    for view in (first, second):
        assert view.shape == x.shape and view.dtype == x.dtype
        assert view.min() >= 0 and view.max() <= 1
        assert not torch.allclose(view, x, atol=1e-3)
    per_image = (first - second).abs().flatten(1).amax(dim=1)
    assert (per_image > 1e-3).all()  # every image gets two different views
    again = torch.Generator().manual_seed(0)
    torch.testing.assert_close(simclr_augment(x, again), first)  # reproducible by seed


def test_augmentation_parts():
    x = images(4)
    gray = simclr_augment(x, torch.Generator().manual_seed(0), grayscale_probability=1.0)
    torch.testing.assert_close(gray[:, 0], gray[:, 1])
    torch.testing.assert_close(gray[:, 1], gray[:, 2])
    colour = simclr_augment(x, torch.Generator().manual_seed(0), grayscale_probability=0.0)
    assert not torch.allclose(colour[:, 0], colour[:, 1])
    # Without jitter and grayscale, a view is a crop of the image: a constant image stays so.
    constant = torch.full((3, 3, 32, 32), 0.3)
    cropped = simclr_augment(
        constant,
        torch.Generator().manual_seed(0),
        jitter_probability=0.0,
        grayscale_probability=0.0,
    )
    torch.testing.assert_close(cropped, constant)
    with pytest.raises(ValueError, match="RGB"):
        simclr_augment(torch.zeros(2, 1, 32, 32))


def test_hsv_conversion_matches_colorsys_and_round_trips():
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(1, 3, 4, 5, generator=generator)
    pixels[0, :, 0, 0] = torch.tensor([0.2, 0.2, 0.2])  # grey: no hue, no saturation
    pixels[0, :, 0, 1] = torch.tensor([0.0, 0.0, 0.0])
    pixels[0, :, 0, 2] = torch.tensor([0.0, 1.0, 0.0])
    hsv = rgb_to_hsv(pixels)
    for row in range(4):
        for col in range(5):
            expected = colorsys.rgb_to_hsv(*pixels[0, :, row, col].tolist())
            assert hsv[0, :, row, col].tolist() == pytest.approx(list(expected), abs=1e-5)
    torch.testing.assert_close(hsv_to_rgb(hsv), pixels, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------ SimCLR


@pytest.mark.parametrize("cls", SIMCLR_CLASSES, ids=["resnet18", "densenet121"])
def test_simclr_training_steps_reduce_the_loss_on_fixed_views(cls):
    model = small_simclr(cls).train()
    x, labels, recipe = images(16), torch.zeros(16, dtype=torch.long), Recipe(objective="simclr")

    def loss_with_fixed_views() -> torch.Tensor:
        torch.manual_seed(123)  # the same two views of every image at each call
        return model.loss(x, labels, recipe)

    with torch.no_grad():
        before = loss_with_fixed_views()
    assert before.shape == (16,)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(4):
        loss = loss_with_fixed_views().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_with_fixed_views()
    assert after.mean() < before.mean() - 0.05


def test_simclr_loss_views_are_fixed_in_eval_and_random_in_training():
    model = small_simclr(SimclrResnet18)
    x, labels, recipe = images(8), torch.zeros(8, dtype=torch.long), Recipe(objective="simclr")
    with torch.no_grad():
        model.eval()
        torch.manual_seed(0)
        first = model.loss(x, labels, recipe)
        torch.manual_seed(1)
        torch.testing.assert_close(model.loss(x, labels, recipe), first)
        model.train()
        torch.manual_seed(0)
        train_first = model.loss(x, labels, recipe)
        torch.manual_seed(1)
        assert not torch.allclose(model.loss(x, labels, recipe), train_first)
    # Per example: each is at least the minimum and at most log(2B - 1) + 2 / temperature.
    assert (first > 0).all() and (first < math.log(15) + 2 / 0.5).all()


# ------------------------------------------------------------------------------ Captum


@pytest.mark.parametrize(
    ("build", "inputs"),
    [
        (lambda: EcgLstmAutoencoder(), heartbeats(2)),
        (lambda: SimclrResnet18(**SMALL), images(2)),
        (lambda: SimclrDensenet121(**SMALL), images(2)),
    ],
    ids=["ecg", "resnet18", "densenet121"],
)
def test_integrated_gradients_through_the_encoder(build, inputs):
    torch.manual_seed(0)
    model = build().eval()
    baselines = torch.zeros_like(inputs)
    with torch.no_grad():  # a latent unit that the inputs move (ReLU nets have dead units)
        target = int((model.encoder(inputs) - model.encoder(baselines))[0].abs().argmax())
    attributions = IntegratedGradients(model.encoder).attribute(
        inputs, baselines=baselines, target=target, n_steps=8
    )
    assert attributions.shape == inputs.shape
    assert torch.isfinite(attributions).all() and attributions.abs().sum() > 0


@pytest.mark.parametrize("cls", SIMCLR_CLASSES, ids=["resnet18", "densenet121"])
def test_deeplift_through_the_backbone(cls):
    """DeepLift needs each ReLU to be its own module: a reused one makes Captum raise."""
    model = small_simclr(cls).eval()
    x = images(2)
    attributions = DeepLift(model.encoder).attribute(x, baselines=x * 0.5, target=1)
    assert attributions.shape == x.shape and torch.isfinite(attributions).all()
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert all(not relu.inplace for relu in relus)
