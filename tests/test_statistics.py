"""Leaderboard statistics: per-example values, intervals, significance ranks, CD diagrams."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from scipy import stats
from torch import nn

from lfxbench.baselines import Baseline
from lfxbench.metrics.base import EvaluationContext
from lfxbench.metrics.latent_shift import LatentShift
from lfxbench.report import significance
from lfxbench.report.leaderboard import aggregate
from lfxbench.report.results import records_to_tables
from lfxbench.report.significance import critical_difference, significance_ranks
from lfxbench.report.statistics import (
    BOOTSTRAP,
    T_OVER_SEEDS,
    confidence_intervals,
    per_example_values,
)


def tables(
    methods: dict[str, list[np.ndarray]],
    direction: str = "higher",
    with_samples: bool = True,
    model: str = "m",
    metric: str = "score",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results and samples of one model and metric: ``methods[name][seed]`` holds the
    per-example values of that cell; its value is their mean."""
    results, samples = [], []
    for method, seeds in methods.items():
        for seed, values in enumerate(seeds):
            cell = {"model": model, "dataset": "d", "method": method, "metric": metric}
            cell |= {"model_b": "", "method_b": "", "seed": seed}
            results.append(
                cell
                | {"method_kind": "feature", "value": float(np.mean(values)), "metric_seconds": 0.1}
                | {"direction": direction}
            )
            if with_samples:
                # A group that does not average to the value comes first: it must be skipped.
                for group, numbers in (("decoy", 2 * values + 1), ("per-example", values)):
                    samples += [cell | {"suite": "s", "group": group, "value": v} for v in numbers]
    return pd.DataFrame(results), pd.DataFrame(samples)


def ranks_of(results, samples, **kwargs) -> dict[str, int]:
    ranks = significance_ranks(results, samples, **kwargs)
    return dict(zip(ranks["method"], ranks["significance_rank"], strict=True))


def base(n: int = 50, seeds: int = 2, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=n) for _ in range(seeds)]


# --------------------------------------------------------------------------- per-example values


def test_per_example_values_are_the_group_that_averages_to_the_value():
    values = base(n=5, seeds=1)
    results, samples = tables({"a": values})
    found = per_example_values(results, samples)
    assert list(found) == [("m", "d", "a", "score", 0)]
    np.testing.assert_array_equal(found["m", "d", "a", "score", 0], values[0])

    # No group averages to the value: the cell has none.
    assert per_example_values(results.assign(value=results["value"] + 1.0), samples) == {}
    # A value of 0 from samples that cancel still matches; a NaN value matches a NaN mean.
    zero, _ = tables({"a": [np.array([0.1, 0.2, -0.3])]})
    zero["value"] = 0.0
    _, zero_samples = tables({"a": [np.array([0.1, 0.2, -0.3])]})
    assert ("m", "d", "a", "score", 0) in per_example_values(zero, zero_samples)
    nan_results, nan_samples = tables({"a": [np.array([1.0, np.nan])]})
    assert ("m", "d", "a", "score", 0) in per_example_values(nan_results, nan_samples)
    assert per_example_values(results, pd.DataFrame()) == {}


# --------------------------------------------------------------------------- ranks


def test_identical_methods_tie_without_warnings():
    values = base()
    results, samples = tables({"a": values, "b": [v.copy() for v in values]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ranks_of(results, samples) == {"a": 1, "b": 1}


def test_a_method_better_on_every_example_ranks_first_alone():
    values = base()
    results, samples = tables(
        {"same": values, "also_same": base(seed=1), "better": [v + 1.0 for v in values]}
    )
    assert ranks_of(results, samples) == {"same": 2, "also_same": 2, "better": 1}
    ranks = significance_ranks(results, samples)
    assert set(ranks["rank_test"]) == {"Wilcoxon–Holm, 2 seeds × 50 examples"}
    p_values, _ = significance.pairwise_tests(results, samples)["m", "d", "feature", "score"]
    assert p_values.loc["same", "better"] < 1e-10
    assert p_values.loc["same", "also_same"] > 0.05
    # Results from before example methods have no kind: feature methods.
    untyped = results.drop(columns="method_kind")
    assert ranks_of(untyped, samples) == {"same": 2, "also_same": 2, "better": 1}


def test_a_method_of_another_kind_is_ranked_in_its_own_table():
    values = base()
    methods = {"same": values, "better": [v + 1.0 for v in values]}
    results, samples = tables(methods | {"other": [v + 5.0 for v in values]})
    results.loc[results["method"].eq("other"), "method_kind"] = "example"
    expected = {"same": 2, "better": 1, "other": 1}
    assert ranks_of(results, samples) == expected
    board = aggregate(results, samples).set_index("method")
    assert board["rank"].to_dict() == board["rank_by_mean"].to_dict() == expected
    assert board.loc["better", "rank_test"] == "Wilcoxon–Holm, 2 seeds × 50 examples"
    assert board.loc["other", "rank_test"].startswith("no test: fewer than 2 methods")


def test_lower_is_better_inverts_the_ranks():
    values = base()
    results, samples = tables({"same": values, "better": [v + 1.0 for v in values]}, "lower")
    assert ranks_of(results, samples) == {"same": 1, "better": 2}


def test_per_seed_values_from_two_seeds_cannot_separate_anything():
    values = base()
    results, _ = tables({"same": values, "better": [v + 1.0 for v in values]})
    ranks = significance_ranks(results, None)
    assert ranks["significance_rank"].tolist() == [1, 1]
    assert ranks["rank_test"].iloc[0].startswith("Wilcoxon–Holm, 2 seeds, per-seed values")
    # Unequal numbers of examples cannot be paired by position: per-seed values again.
    results, samples = tables({"same": values, "better": [v[:-1] + 1.0 for v in values]})
    assert set(significance_ranks(results, samples)["significance_rank"]) == {1}


def test_a_nan_mean_ranks_last():
    values = base()
    better = [v + 1.0 for v in values]
    broken = [values[0], np.full(50, np.nan)]
    results, samples = tables({"same": values, "better": better, "broken": broken})
    assert ranks_of(results, samples) == {"better": 1, "same": 2, "broken": 3}


def test_pairwise_rows_rank_zero_with_a_t_interval():
    results, samples = tables({"a": base()})
    pair = results.assign(model_b="m", method_b="b", metric="agreement", value=[0.5, 0.7])
    both = pd.concat([results, pair], ignore_index=True)
    ranks = significance_ranks(both, samples).set_index("method_b")
    assert ranks.loc["b", "significance_rank"] == 0
    assert ranks.loc["b", "rank_test"] == ""
    intervals = confidence_intervals(both, samples).set_index("method_b")
    assert intervals.loc["b", "ci_method"] == T_OVER_SEEDS
    assert intervals.loc["", "ci_method"] == BOOTSTRAP


# --------------------------------------------------------------------------- intervals


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_examples():
    widths = []
    for n in (50, 800):
        results, samples = tables({"a": base(n=n)})
        interval = confidence_intervals(results, samples).iloc[0]
        mean = results["value"].mean()
        assert interval["ci_method"] == BOOTSTRAP
        assert interval["ci_low"] < mean < interval["ci_high"]
        widths.append(interval["ci_high"] - interval["ci_low"])
        # A fixed seed: the same results give the same interval.
        again = confidence_intervals(results, samples).iloc[0]
        assert (again["ci_low"], again["ci_high"]) == (interval["ci_low"], interval["ci_high"])
    # The width of a mean's interval goes as 1 / sqrt(n): 16 times the examples, 1/4.
    assert widths[1] == pytest.approx(widths[0] / 4, rel=0.3)


def test_t_interval_over_seeds_matches_scipy():
    per_seed = [np.array([value]) for value in (0.2, 0.5, 0.4, 0.9)]
    results, _ = tables({"a": per_seed})
    interval = confidence_intervals(results, None).iloc[0]
    values = results["value"].to_numpy()
    expected = stats.t.interval(0.95, 3, loc=values.mean(), scale=stats.sem(values))
    assert interval["ci_method"] == T_OVER_SEEDS
    assert (interval["ci_low"], interval["ci_high"]) == pytest.approx(expected, rel=1e-12)
    one_seed, _ = tables({"a": per_seed[:1]})
    assert confidence_intervals(one_seed, None)[["ci_low", "ci_high"]].isna().all(axis=None)


# --------------------------------------------------------------------------- across models


def board_of(n_models: int) -> pd.DataFrame:
    results = []
    for index in range(n_models):
        shift = 0.01 * index
        methods = {"good": [np.array([0.9 + shift])], "fair": [np.array([0.5 + shift])]}
        methods["poor"] = [np.array([0.1 + shift])]
        results.append(tables(methods, with_samples=False, model=f"model{index}")[0])
    return aggregate(pd.concat(results, ignore_index=True))


def test_critical_difference_needs_three_models():
    assert critical_difference(board_of(2), "score") is None
    assert critical_difference(board_of(3), "another metric") is None
    figure, summary = critical_difference(board_of(3), "score")
    assert isinstance(figure, Figure)
    assert summary["average_ranks"] == {"good": 1.0, "fair": 2.0, "poor": 3.0}
    assert summary["blocks"] == ["model0 (d)", "model1 (d)", "model2 (d)"]
    # Three models, one order of three methods: Friedman's chi² at its maximum, n (k - 1).
    assert summary["friedman_statistic"] == pytest.approx(6.0)
    assert summary["nemenyi_p"].shape == (3, 3)
    assert "score" in figure.texts[0].get_text()


# --------------------------------------------------------------------------- latent shift


class ChannelSum(nn.Module):
    """One latent unit per pixel, its channels' sum: masking a pixel to black shifts the
    latent by the square of that sum."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1).flatten(1)


def test_latent_shift_per_example_areas_are_each_examples_own():
    generator = torch.Generator().manual_seed(0)
    # Small integers: every shift is exact in float32, so the areas below match closely.
    inputs = torch.randint(0, 4, (6, 3, 4, 5), generator=generator).float()
    attributions = torch.randn(inputs.shape, generator=generator)
    context = EvaluationContext(
        encoder=ChannelSum(),
        inputs=inputs,
        labels=torch.zeros(6, dtype=torch.long),
        attributions=attributions,
        baseline=Baseline(),
        train_inputs=inputs,
        train_labels=torch.zeros(6),
        batch_size=4,  # a chunk of one example at a time
        device=torch.device("cpu"),
        seed=0,
    )
    fractions = (0.25, 0.5, 1.0)  # 5, 10 and 20 of the 20 pixels
    result = LatentShift(fractions=fractions)(context)

    pixel_shifts = inputs.sum(dim=1).flatten(1).double().pow(2).numpy()  # [N, 20]
    order = attributions.abs().sum(dim=1).flatten(1).argsort(dim=1, descending=True).numpy()
    top = np.take_along_axis(pixel_shifts, order, axis=1).cumsum(axis=1)
    curves = np.stack([np.zeros(6), top[:, 4], top[:, 9], top[:, 19]], axis=1)
    areas = np.trapezoid(curves, [0.0, *fractions], axis=1)
    expected = areas / (pixel_shifts.sum(axis=1).mean() * fractions[-1])
    samples = np.array(result.samples["per-example normalised area"])
    np.testing.assert_allclose(samples, expected, rtol=1e-12)
    assert np.std(samples) > 0
    assert result.value == pytest.approx(samples.mean(), rel=1e-12)

    record = {"suite": "s", "model": "m", "dataset": "d", "method": "random"}
    record |= {"metric": "latent_shift", "seed": 0, "direction": "higher"}
    record |= {f: getattr(result, f) for f in ("value", "curve", "curve_axes", "samples")}
    tidy = records_to_tables([record | {"details": result.details}])
    found = per_example_values(tidy["results"], tidy["samples"])
    np.testing.assert_array_equal(found["m", "d", "random", "latent_shift", 0], samples)
