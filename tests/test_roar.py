"""ROAR: removing the features that carry the signal hurts more than removing random ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from suite_runs import run

from lfxbench.metrics.roar import remove_top
from lfxbench.ranking import feature_ranks

DATA = Path(__file__).parent / "data"


def test_remove_top_replaces_the_highest_ranked_features_by_the_baseline():
    inputs = torch.arange(1.0, 9.0).view(2, 4)
    attributions = torch.tensor([[0.1, 0.9, 0.5, 0.0], [3.0, 2.0, 1.0, 0.0]])
    removed = remove_top(inputs, feature_ranks(attributions), torch.zeros_like(inputs), 0.5)
    assert removed.tolist() == [[1.0, 0.0, 0.0, 4.0], [0.0, 0.0, 7.0, 8.0]]


def test_remove_top_removes_whole_pixels_and_counts_pixels():
    inputs = torch.ones(1, 3, 2, 2)
    attributions = torch.zeros(1, 3, 2, 2)
    attributions[0, 2, 1, 0] = -5.0  # one channel of one pixel carries the attribution
    attributions[0, 0, 0, 1] = 1.0
    removed = remove_top(inputs, feature_ranks(attributions), torch.zeros_like(inputs), 0.5)
    # 50 % of 4 pixels: the two attributed ones, every channel of each.
    assert removed[0].sum(dim=0).tolist() == [[3.0, 0.0], [0.0, 3.0]]


@pytest.mark.slow
def test_roar_ranks_the_oracle_above_random_on_a_toy_with_known_signal(tmp_path):
    for name in ("roar_toy.yaml", "roar_toy.py"):
        shutil.copy(DATA / name, tmp_path / name)
    assert run(tmp_path / "roar_toy.yaml", tmp_path) == 0
    results = pd.read_csv(tmp_path / "runs" / "roar_toy" / "results.csv")
    value = results.set_index(["method", "seed"])["value"]
    for seed in (0, 1):
        # only features 0-3 carry signal: retraining without them costs their variance
        assert value["toy_oracle", seed] > 0.04
        assert value["toy_oracle", seed] > value["random", seed] + 0.03
    curves = pd.read_csv(tmp_path / "runs" / "roar_toy" / "curves.csv")
    oracle = curves[(curves["method"] == "toy_oracle") & (curves["seed"] == 0)]
    assert oracle["x"].tolist() == [0.0, 0.25, 0.5] and oracle["y"].iloc[1] > 0.05
    assert (tmp_path / "runs" / "roar_toy" / "figures" / "toy__roar.png").is_file()
