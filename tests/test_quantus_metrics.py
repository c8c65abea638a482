"""Quantus metrics on encoders: the label-free head, known answers, localisation and MPRT."""

from __future__ import annotations

import math

import numpy as np
import pytest
import quantus
import torch
import torch.nn.functional as F
from quantus.helpers.model.pytorch_model import PyTorchModel
from torch import nn

from lfxbench.baselines import Baseline
from lfxbench.errors import LfxbenchError
from lfxbench.methods.saliency import LabelFreeSaliency
from lfxbench.metrics.base import EvaluationContext
from lfxbench.metrics.quantus_bridge import SimilarityHead
from lfxbench.registry import METRICS

SHAPE = (1, 8, 8)
N_FEATURES = math.prod(SHAPE)


def tiny_encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(N_FEATURES, 5), nn.Tanh()).eval()


def tiny_conv_encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)
    ).eval()


def toy_inputs(n: int) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(1))


def context(encoder, inputs, attributions, seed=0, **fields) -> EvaluationContext:
    return EvaluationContext(
        encoder=encoder,
        inputs=inputs,
        labels=torch.zeros(len(inputs), dtype=torch.long),
        attributions=attributions,
        baseline=Baseline(),
        train_inputs=inputs,
        train_labels=torch.zeros(len(inputs)),
        batch_size=256,
        device=torch.device("cpu"),
        seed=seed,
        **fields,
    )


def test_every_quantus_metric_is_registered():
    for name in (
        "faithfulness_correlation",
        "sparseness",
        "complexity",
        "pointing_game",
        "top_k_intersection",
        "relevance_rank",
        "model_parameter_randomisation",
    ):
        assert name in METRICS


# --------------------------------------------------------------------------- the head


def test_head_scores_each_example_against_every_reference_with_no_parameters_of_its_own():
    encoder, inputs = tiny_encoder(), toy_inputs(4)
    head = SimilarityHead(encoder, inputs)
    similarities = head(inputs[:3])
    assert similarities.shape == (3, 4)
    assert torch.allclose(similarities.diagonal(), torch.ones(3))
    assert {id(p) for p in head.parameters()} == {id(p) for p in encoder.parameters()}
    assert all(key.startswith("encoder.") for key in head.state_dict())


def test_quantus_randomises_the_encoder_inside_the_head_and_moves_the_references():
    encoder, inputs = tiny_encoder(), toy_inputs(4)
    trained = SimilarityHead(encoder, inputs)(inputs)
    layers = list(PyTorchModel(SimilarityHead(encoder, inputs)).get_random_layer_generator())
    assert [name for name, _ in layers] == ["encoder.1"]
    randomised = layers[0][1](inputs)
    assert not torch.allclose(randomised, trained)
    # Cached reference embeddings would make the diagonal drift from 1.
    assert torch.allclose(randomised.diagonal(), torch.ones(4))


class ScalarSimilarity(nn.Module):
    """The hand-written single-example model: ``cos(f(x), f(x0))`` as one logit."""

    def __init__(self, encoder: nn.Module, x0: torch.Tensor):
        super().__init__()
        self.encoder, self.x0 = encoder, x0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(self.encoder(x), self.encoder(self.x0), dim=1)[:, None]


def test_faithfulness_correlation_through_the_head_equals_quantus_on_a_scalar_model():
    encoder, x0 = tiny_encoder(), toy_inputs(1)
    attributions = torch.rand(1, *SHAPE, generator=torch.Generator().manual_seed(2))
    seed, nr_runs, subset_size = 7, 12, 10
    ours = METRICS.get("faithfulness_correlation")(nr_runs=nr_runs, subset_size=subset_size)(
        context(encoder, x0, attributions, seed=seed)
    )
    np.random.seed(seed)
    reference = quantus.FaithfulnessCorrelation(
        nr_runs=nr_runs, subset_size=subset_size, return_aggregate=False, disable_warnings=True
    )(
        model=ScalarSimilarity(encoder, x0).eval(),
        x_batch=x0.numpy(),
        y_batch=np.array([0]),
        a_batch=attributions.numpy(),
        channel_first=True,
        softmax=False,
    )
    assert ours.value == pytest.approx(reference[0], abs=1e-6)
    assert ours.samples["per-example correlation"] == pytest.approx(reference, abs=1e-6)


def test_faithfulness_correlation_clips_the_subset_to_what_quantus_accepts():
    inputs = toy_inputs(3)
    result = METRICS.get("faithfulness_correlation")(nr_runs=3)(
        context(tiny_encoder(), inputs, torch.rand_like(inputs))
    )
    assert result.details["subset_size"] == N_FEATURES - 1
    assert len(result.samples["per-example correlation"]) == 3


# --------------------------------------------------------------------------- known answers


def one_hot_and_uniform() -> torch.Tensor:
    attributions = torch.zeros(2, *SHAPE)
    attributions[0, 0, 3, 5] = 2.0
    attributions[1] = 0.5
    return attributions


def test_sparseness_is_about_one_for_a_one_hot_map_and_zero_for_a_uniform_one():
    attributions = one_hot_and_uniform()
    result = METRICS.get("sparseness")()(context(tiny_encoder(), toy_inputs(2), attributions))
    one_hot, uniform = result.samples["per-example Gini index"]
    assert one_hot == pytest.approx((N_FEATURES - 1) / N_FEATURES, abs=1e-5)
    assert uniform == pytest.approx(0.0, abs=1e-6)


def test_complexity_is_zero_for_a_one_hot_map_and_log_d_for_a_uniform_one():
    attributions = one_hot_and_uniform()
    result = METRICS.get("complexity")()(context(tiny_encoder(), toy_inputs(2), attributions))
    one_hot, uniform = result.samples["per-example entropy"]
    assert one_hot == pytest.approx(0.0, abs=1e-6)
    assert uniform == pytest.approx(math.log(N_FEATURES), abs=1e-5)
    assert result.details["max_entropy"] == pytest.approx(math.log(N_FEATURES))


# --------------------------------------------------------------------------- localisation


def square_masks(n: int) -> torch.Tensor:
    masks = torch.zeros(n, *SHAPE, dtype=torch.bool)
    masks[:, :, :4, :4] = True
    return masks


def test_pointing_game_hits_when_the_maximum_lies_in_the_mask():
    masks = square_masks(2)
    attributions = torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(0))
    attributions[0, 0, 1, 2] = 5.0  # inside
    attributions[1, 0, 6, 6] = 5.0  # outside
    inputs = toy_inputs(2)
    result = METRICS.get("pointing_game")()(
        context(tiny_encoder(), inputs, attributions, masks=masks)
    )
    assert result.samples["per-example hit"] == [1.0, 0.0]
    assert result.value == 0.5


@pytest.mark.parametrize(
    ("name", "params", "group"),
    [
        ("top_k_intersection", {"k": 16}, "per-example intersection"),
        ("relevance_rank", {}, "per-example rank accuracy"),
    ],
)
def test_mask_shaped_attributions_score_one_and_their_complement_much_lower(name, params, group):
    masks = square_masks(2)
    attributions = torch.stack([masks[0].float(), (~masks[1]).float()])
    result = METRICS.get(name)(**params)(
        context(tiny_encoder(), toy_inputs(2), attributions, masks=masks)
    )
    matching, complement = result.samples[group]
    assert matching == pytest.approx(1.0)
    assert complement < 0.5


def test_top_k_intersection_clips_k_and_leaves_empty_masks_out():
    masks = square_masks(3)
    masks[2] = False
    inputs = toy_inputs(3)
    result = METRICS.get("top_k_intersection")()(
        context(tiny_encoder(), inputs, masks.float(), masks=masks)
    )
    assert result.details["k"] == N_FEATURES - 1
    assert result.details["undefined_scores"] == 1
    assert len(result.samples["per-example intersection"]) == 2


@pytest.mark.parametrize("name", ["pointing_game", "top_k_intersection", "relevance_rank"])
def test_localisation_without_masks_says_how_to_restrict_the_metric(name):
    inputs = toy_inputs(2)
    with pytest.raises(LfxbenchError, match=r"no.*masks.*models: \[model ids\]"):
        METRICS.get(name)()(context(tiny_encoder(), inputs, torch.rand_like(inputs)))


# --------------------------------------------------------------------------- randomisation


def saliency(encoder: nn.Module, inputs: torch.Tensor, labels=None) -> torch.Tensor:
    return LabelFreeSaliency(encoder).attribute(inputs, torch.zeros_like(inputs))


def fixed_map(encoder: nn.Module, inputs: torch.Tensor, labels=None) -> torch.Tensor:
    """A method that ignores the model."""
    pattern = torch.rand(SHAPE, generator=torch.Generator().manual_seed(5))
    return pattern.expand_as(inputs).clone()


def test_parameter_randomisation_separates_saliency_from_a_model_blind_method():
    encoder, inputs = tiny_conv_encoder(), toy_inputs(6)
    metric = METRICS.get("model_parameter_randomisation")(n_examples=4)
    faithful = metric(context(encoder, inputs, saliency(encoder, inputs), explain_with=saliency))
    blind = metric(context(encoder, inputs, fixed_map(encoder, inputs), explain_with=fixed_map))
    assert faithful.curve[0] == (0.0, pytest.approx(1.0))  # nothing randomised yet
    assert [x for x, _ in faithful.curve] == [0.0, 1.0, 2.0]  # Linear, then Conv2d
    assert faithful.curve[1][1] < 0.9
    assert set(faithful.details) >= {"layer 3", "layer 0"}
    assert len(faithful.samples["per-example similarity (mean over layers)"]) == 4
    assert blind.value == pytest.approx(1.0)
    assert faithful.value < blind.value - 0.1
    assert metric.direction == "lower"


def test_what_quantus_refuses_is_a_clear_error():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    inputs = torch.rand(4, 1, 8, 8)
    context = EvaluationContext(
        encoder=encoder,
        inputs=inputs,
        labels=torch.zeros(4, dtype=torch.long),
        attributions=torch.zeros_like(inputs),
        baseline=Baseline(),
        train_inputs=inputs,
        train_labels=torch.zeros(len(inputs)),
        batch_size=4,
        device=torch.device("cpu"),
        seed=0,
    )
    with pytest.raises(LfxbenchError, match="Quantus Sparseness refused examples 0-3"):
        METRICS.get("sparseness")()(context)
