"""The command line end to end on the tiny suite (embedded data, CPU, seconds)."""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from suite_runs import run

from lfxbench.cli import _parser, main
from lfxbench.report.formats import FORMATS


@pytest.mark.slow
def test_run_writes_leaderboards_with_timing_and_reuses_caches(tiny_suite, tmp_path, capsys):
    assert run(tiny_suite, tmp_path) == 0
    run_dir = tmp_path / "runs" / "tiny"
    for name in (
        "results.csv",
        "curves.csv",
        "leaderboard.md",
        "leaderboard.csv",
        "leaderboard.html",
        "leaderboard.tex",
        "leaderboard.json",
        "figures/ae__latent_shift.png",
        "figures/ae__latent_shift.pdf",
        "run.json",
    ):
        assert (run_dir / name).is_file(), name

    results = pd.read_csv(run_dir / "results.csv")
    # 4 methods x 1 metric x 2 seeds, one tidy row each, with versions and hardware.
    assert len(results) == 8
    assert set(results["method"]) == {
        "saliency",
        "integrated_gradients",
        "input_magnitude",
        "random",
    }
    for column in (
        "value",
        "seed",
        "training_seconds",
        "attribution_seconds_per_example",
        "metric_seconds",
        "device",
        "torch_version",
        "captum_version",
    ):
        assert results[column].notna().all(), column
    # Each attribution (method x seed here) carries the calibration timed just before it.
    assert results["calibration_seconds"].nunique() == len(results)
    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert {"mean", "std", "rank", "attribution_ms_per_example", "metric_seconds"} <= set(board)
    assert {"ci_low", "ci_high", "ci_method", "rank_test", "rank_by_mean"} <= set(board)
    markdown = (run_dir / "leaderboard.md").read_text()
    quality, time = markdown.split("seeds): time")
    assert "latent_shift ↑" in quality and "latent_shift [s]" in time
    assert "attribution [ms/example]" in time

    models_before = sorted((tmp_path / "cache" / "models").iterdir())
    cells_before = {p: p.stat().st_mtime_ns for p in (run_dir / "cells").iterdir()}
    assert len(models_before) == 2  # one per seed
    capsys.readouterr()

    # A rerun recomputes nothing: no cell rewritten, no model trained.
    assert run(tiny_suite, tmp_path) == 0
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "cells").iterdir()} == cells_before
    assert sorted((tmp_path / "cache" / "models").iterdir()) == models_before
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "results.csv"), results)

    # A new run directory over the same caches trains nothing and reproduces the values.
    assert run(tiny_suite, tmp_path, "--run-name", "again") == 0
    again = pd.read_csv(tmp_path / "runs" / "again" / "results.csv")
    assert sorted((tmp_path / "cache" / "models").iterdir()) == models_before
    pd.testing.assert_series_equal(again["value"], results["value"])
    # A cached attribution keeps its seconds and the calibration they were measured with.
    for column in ("attribution_seconds", "calibration_seconds"):
        pd.testing.assert_series_equal(again[column], results[column])

    assert main(["bench", str(run_dir)]) == 0
    report = capsys.readouterr().out
    assert "examples/s" in report and "integrated_gradients" in report
    assert "Time by stage" in report and "attribution:" in report

    for fmt, marker in (
        ("md", "| method"),
        ("csv", "attribution_ms_per_example"),
        ("html", "<table"),
        ("latex", "\\toprule"),
        ("json", '"rows"'),
    ):
        assert main(["leaderboard", str(run_dir), "--format", fmt]) == 0
        assert marker in capsys.readouterr().out


@pytest.mark.slow
def test_interrupted_run_resumes_from_finished_cells(tiny_suite, tmp_path):
    assert run(tiny_suite, tmp_path) == 0
    cells = sorted((tmp_path / "runs" / "tiny" / "cells").iterdir())
    kept = {p: p.stat().st_mtime_ns for p in cells[1:]}
    cells[0].unlink()  # as if the run had stopped before the last cell was written
    assert run(tiny_suite, tmp_path) == 0
    assert cells[0].is_file()
    assert {p: p.stat().st_mtime_ns for p in cells[1:]} == kept


def test_malformed_suite_exits_2_naming_the_field(tiny_suite, tmp_path, capsys):
    text = tiny_suite.read_text().replace("n_steps: 8", "n_steps: eight")
    tiny_suite.write_text(text)
    assert run(tiny_suite, tmp_path) == 2
    err = capsys.readouterr().err
    assert "tiny.yaml" in err and "methods[1].params.n_steps" in err
    assert "Traceback" not in err


def test_unknown_method_suggests_the_closest_name(tiny_suite, tmp_path, capsys):
    tiny_suite.write_text(tiny_suite.read_text().replace("- saliency", "- salency"))
    assert run(tiny_suite, tmp_path) == 2
    err = capsys.readouterr().err
    assert "methods[0].name" in err and "did you mean 'saliency'" in err


def test_missing_suite_file_exits_2(tmp_path, capsys):
    assert run(tmp_path / "nope.yaml", tmp_path) == 2
    assert "does not exist" in capsys.readouterr().err


def test_missing_mnist_files_name_the_file(tiny_suite, tmp_path, capsys):
    embedded = "- name: mnist_5k\n    params: {n_train: 200, n_test: 24}"
    real = "- name: mnist\n    id: mnist_5k"
    tiny_suite.write_text(tiny_suite.read_text().replace(embedded, real))
    assert run(tiny_suite, tmp_path, "--data-dir", str(tmp_path / "empty")) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and str(tmp_path / "empty") in err


def test_list_prints_every_registry(capsys):
    for what, expected in (
        ("methods", "integrated_gradients"),
        ("metrics", "latent_shift"),
        ("models", "mnist_autoencoder"),
        ("datasets", "mnist_5k"),
    ):
        assert main(["list", what]) == 0
        assert expected in capsys.readouterr().out


def test_leaderboard_formats_are_the_renderers_formats():
    # The CLI spells the list out so that its start-up does not import pandas.
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    board = commands.choices["leaderboard"]
    choices = next(a.choices for a in board._actions if "--format" in a.option_strings)
    assert tuple(choices) == FORMATS


def test_validate_counts_cells(tiny_suite, capsys):
    assert main(["validate", str(tiny_suite)]) == 0
    assert "8 cells, 0 pairs" in capsys.readouterr().out


@pytest.mark.slow
def test_example_importance_and_agreement_across_encoders(tmp_path, capsys):
    suite = tmp_path / "tiny_pretext.yaml"
    shutil.copy(Path(__file__).parent / "data" / "tiny_pretext.yaml", suite)
    assert run(suite, tmp_path) == 0
    run_dir = tmp_path / "runs" / "tiny_pretext"
    results = pd.read_csv(run_dir / "results.csv", keep_default_na=False)
    single = results[results["model_b"] == ""]
    pairs = results[results["model_b"] != ""]
    # similarity rate: 2 models x 2 example methods x 2 seeds
    assert len(single) == 8 and set(single["metric"]) == {"similarity_rate"}
    assert set(single["n_examples"].astype(int)) == {20}
    # agreement: 1 pair of models x 3 methods x 2 seeds
    assert len(pairs) == 6
    assert set(zip(pairs["model"], pairs["model_b"], strict=True)) == {
        ("denoising", "classification")
    }
    samples = pd.read_csv(run_dir / "samples.csv")
    assert {"top 5%", "bottom 5%"} <= set(samples["group"])
    markdown = (run_dir / "leaderboard.md").read_text()
    assert "pearson_agreement across models: example methods" in markdown
    assert "| deep_knn " in markdown.split("pearson_agreement across models: example")[1]
    assert "example importance" in markdown
    for figure in (
        "denoising__similarity_rate__boxes.png",
        "pearson_agreement__deep_knn__models.png",
    ):
        assert (run_dir / "figures" / figure).is_file()
    # the rate of the nearest neighbours beats chance on real digits
    by_method = single.groupby("method")["value"].mean()
    assert by_method["deep_knn"] > by_method["random_examples"]


@pytest.mark.slow
def test_same_suite_and_seed_give_identical_quality_numbers(tiny_suite, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):  # separate caches: everything is recomputed
        assert (
            main(
                [
                    "run",
                    str(tiny_suite),
                    "--out",
                    str(folder),
                    "--cache-dir",
                    str(folder / "cache"),
                    "--quiet",
                ]
            )
            == 0
        )
    one = pd.read_csv(first / "tiny" / "results.csv")
    two = pd.read_csv(second / "tiny" / "results.csv")
    pd.testing.assert_series_equal(one["value"], two["value"], check_exact=True)
    assert (one["training_seconds"] != two["training_seconds"]).any()  # really retrained


@pytest.mark.slow
def test_every_model_family_of_the_paper_runs_end_to_end(tmp_path):
    suite = tmp_path / "tiny_zoo.yaml"
    shutil.copy(Path(__file__).parent / "data" / "tiny_zoo.yaml", suite)
    assert run(suite, tmp_path) == 0
    results = pd.read_csv(tmp_path / "runs" / "tiny_zoo" / "results.csv")
    assert set(results["model"]) == {"ecg", "simclr", "mnist"}
    assert results["value"].notna().all()
    shift = results[results["metric"] == "latent_shift"].set_index(["model", "method"])["value"]
    for model in ("ecg", "simclr", "mnist"):
        assert shift[model, "integrated_gradients"] > shift[model, "random"], model


def test_loss_based_methods_skip_a_contrastive_objective(tmp_path, capsys):
    from lfxbench.suite import load_suite

    suite = tmp_path / "contrastive.yaml"
    text = (Path(__file__).parent / "data" / "tiny_zoo.yaml").read_text()
    suite.write_text(text.replace("  - deep_knn", "  - deep_knn\n  - tracin"))
    cells = load_suite(suite).cells()
    tracin_models = {cell.model.id for cell in cells if cell.method.name == "tracin"}
    assert tracin_models == {"ecg", "mnist"}  # NT-Xent has no loss of one example
    assert main(["validate", str(suite)]) == 0
    assert "skipped: tracin on simclr" in capsys.readouterr().out


@pytest.mark.slow
def test_vae_study_path_per_unit_attributions_and_unit_metrics(tmp_path):
    suite = tmp_path / "tiny_vae.yaml"
    shutil.copy(Path(__file__).parent / "data" / "tiny_vae.yaml", suite)
    assert run(suite, tmp_path) == 0
    results = pd.read_csv(tmp_path / "runs" / "tiny_vae" / "results.csv")
    units = results[results["method"] == "per_unit"]
    assert set(units["metric"]) == {"unit_pearson", "attribution_entropy"}
    assert len(units) == 2 * 2 * 2  # models x seeds x unit metrics
    entropy = units[units["metric"] == "attribution_entropy"]["value"]
    assert ((entropy >= 0) & (entropy <= math.log(6) + 1e-9)).all()  # d_H = 6
    assert set(results[results["method"] == "gradient_shap"]["metric"]) == {"latent_shift"}
    trend_table = pd.read_csv(tmp_path / "runs" / "tiny_vae" / "trends.csv")
    assert set(trend_table["metric"]) == {"unit_pearson", "attribution_entropy", "latent_shift"}
    assert (trend_table["n"] == 4).all() and trend_table["spearman_rho"].between(-1, 1).all()
    figures = tmp_path / "runs" / "tiny_vae" / "figures"
    assert (figures / "unit_pearson__vs_beta.png").is_file()
    assert "trends with beta" in (tmp_path / "runs" / "tiny_vae" / "leaderboard.md").read_text()


@pytest.mark.slow
def test_other_label_free_families_run_beside_captum_and_reach_the_leaderboard(tmp_path):
    suite = tmp_path / "tiny_families.yaml"
    shutil.copy(Path(__file__).parent / "data" / "tiny_families.yaml", suite)
    assert run(suite, tmp_path) == 0
    run_dir = tmp_path / "runs" / "tiny_families"
    results = pd.read_csv(run_dir / "results.csv")
    feature_methods = {"saliency", "relax", "u_relax", "cocoa", "embedding_attribution"}
    feature_metrics = {
        "latent_shift",
        "noise_score",
        "faithfulness_correlation",
        "sparseness",
        "complexity",
        "model_parameter_randomisation",
    }
    localisation = {"pointing_game", "top_k_intersection", "relevance_rank"}
    scored = results.groupby("model")[["method", "metric"]].apply(
        lambda cells: set(zip(cells["method"], cells["metric"], strict=True))
    )
    expected = {(m, k) for m in feature_methods for k in feature_metrics}
    expected.add(("layer_units", "variance_score"))
    assert scored["mnist_ae"] == expected
    assert scored["sprites"] == expected | {(m, k) for m in feature_methods for k in localisation}
    assert results["value"].notna().all()
    on_masks = results[results["metric"].isin(localisation)]["value"]
    assert on_masks.between(0, 1).all()
    randomisation = pd.read_csv(run_dir / "curves.csv").query(
        "metric == 'model_parameter_randomisation'"
    )
    assert (randomisation.groupby(["model", "method"])["x"].max() >= 3).all()
    board = (run_dir / "leaderboard.md").read_text()
    assert "relax" in board and "pointing_game" in board and "variance_score" in board
