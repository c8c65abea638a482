"""Paper-ready figures: both formats at 300 dpi, one file per id, one look per method."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from PIL import Image

from lfxbench.report import figure_style, plots
from lfxbench.report.leaderboard import aggregate
from lfxbench.report.results import records_to_tables

MODELS = {"ae_one": 1.0, "ae_two": 4.0}  # id -> beta
FEATURE = {"saliency": "saliency", "integrated_gradients": "integrated_gradients", "rand": "random"}
EXAMPLE = {"deep_knn": "deep_knn", "random_examples": "random_examples"}
CHANCE = 0.1  # ten balanced classes


def record(model, method, metric, seed, value, **extra):
    names = FEATURE | EXAMPLE
    return {
        "suite": "toy",
        "model": model,
        "dataset": "digits",
        "method": method,
        "metric": metric,
        "model_b": "",
        "method_b": "",
        "seed": seed,
        "value": value,
        "direction": "higher",
        "method_name": names[method],
        "method_kind": "feature" if method in FEATURE else "example",
        "metric_name": metric,
        "model_name": "toy_vae",
        "model_params": json.dumps({"beta": MODELS[model]}),
        "objective": "beta_vae",
        "metric_seconds": 0.0,
        "curve": [],
        "curve_axes": ("x", "y"),
        "samples": {},
        "details": {},
    } | extra


def run_records() -> list[dict]:
    """Two models, two seeds: feature curves and samples, similarity rates of example
    methods, agreements across models and (per kind of method) across methods."""
    rng = np.random.default_rng(0)
    records = []
    for model in MODELS:
        for seed in (0, 1):
            for i, method in enumerate(FEATURE):
                shift = [(x, x ** (1 + i)) for x in (0.0, 0.5, 1.0)]
                axes = ("fraction of features masked", "latent shift")
                records.append(
                    record(model, method, "latent_shift", seed, 0.5, curve=shift, curve_axes=axes)
                )
                gini = {"per-example Gini index": rng.uniform(0, 1, 8).tolist()}
                records.append(record(model, method, "sparseness", seed, 0.4, samples=gini))
            for lift, method in ((0.3, "deep_knn"), (0.0, "random_examples")):
                # top 50% and bottom 50% split the corpus: their mean is the chance rate
                groups = {
                    "top 10%": CHANCE + lift,
                    "bottom 10%": CHANCE - lift / 4,
                    "top 50%": CHANCE + lift / 3,
                    "bottom 50%": CHANCE - lift / 3,
                }
                samples = {g: (v + rng.normal(0, 0.01, 8)).tolist() for g, v in groups.items()}
                curve = [(0.1, groups["top 10%"]), (0.5, groups["top 50%"])]
                axes = ("fraction of the corpus (top M)", "similarity rate")
                records.append(
                    record(
                        model,
                        method,
                        "similarity_rate",
                        seed,
                        curve[0][1],
                        curve=curve,
                        curve_axes=axes,
                        samples=samples,
                    )
                )
            for first, second in (
                ("saliency", "integrated_gradients"),
                ("deep_knn", "random_examples"),
            ):
                values = {"per-example pearson": rng.uniform(-1, 1, 8).tolist()}
                records.append(
                    record(
                        model,
                        first,
                        "agreement",
                        seed,
                        0.2,
                        method_b=second,
                        model_b=model,
                        samples=values,
                    )
                )
    for seed in (0, 1):
        values = {"per-example pearson": rng.uniform(0, 1, 8).tolist()}
        records.append(
            record(
                "ae_one",
                "saliency",
                "agreement_models",
                seed,
                0.6,
                model_b="ae_two",
                method_b="saliency",
                samples=values,
            )
        )
    return records


EXPECTED = {
    *(f"{model}__{metric}" for model in MODELS for metric in ("latent_shift", "similarity_rate")),
    *(
        f"{model}__{metric}__boxes"
        for model in MODELS
        for metric in ("sparseness", "similarity_rate")
    ),
    *(f"{model}__agreement__{kind}_methods" for model in MODELS for kind in ("feature", "example")),
    *(f"{m}__agreement__{k}_methods__boxes" for m in MODELS for k in ("feature", "example")),
    "agreement_models__saliency__models",
    "agreement_models__models__boxes",
    *(f"{metric}__vs_beta" for metric in ("latent_shift", "sparseness", "similarity_rate")),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Every figure of the toy run (drawn once for the module's tests) in a scratch folder,
    with the figures kept by their ids."""
    drawn, finish = {}, plots.save_figure

    def keep(figure, figure_dir, ids, *args, **kwargs):
        drawn["__".join(ids)] = figure
        return finish(figure, figure_dir, ids, *args, **kwargs)

    figure_dir = tmp_path_factory.mktemp("run") / "figures"
    tables = records_to_tables(run_records())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save_figure", keep)
        written = plots.plot_run(tables, aggregate(tables["results"]), figure_dir, ["beta"])
    return tables, written, drawn, figure_dir


def lines(figure, gid: str) -> list[Line2D]:
    return [line for axis in figure.axes for line in axis.get_lines() if line.get_gid() == gid]


def boxes(figure, gid: str) -> list:
    return [patch for axis in figure.axes for patch in axis.patches if patch.get_gid() == gid]


def test_every_figure_of_both_models_in_both_formats_and_none_overwritten(run):
    _, written, _, figure_dir = run
    expected = {f"{stem}.{fmt}" for stem in EXPECTED for fmt in ("pdf", "png")}
    assert sorted(path.name for path in written) == sorted(expected)  # each written once
    assert {path.name for path in figure_dir.iterdir()} == expected
    for path in written:
        head = path.read_bytes()[:8]
        assert head.startswith(b"%PDF" if path.suffix == ".pdf" else b"\x89PNG"), path.name
    with Image.open(figure_dir / "ae_two__latent_shift.png") as image:
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert plt.get_fignums() == []  # nothing left open in pyplot


def test_a_method_looks_the_same_in_every_figure_and_baselines_are_grey_and_dashed(run):
    tables, _, drawn, _ = run
    styles = figure_style.run_styles(tables["results"])
    saliency = styles["saliency"]["color"]
    for model in MODELS:
        (line,) = lines(drawn[f"{model}__latent_shift"], "method:saliency")
        assert to_hex(line.get_color()) == saliency
        (box,) = boxes(drawn[f"{model}__sparseness__boxes"], "method:saliency")
        assert to_hex(box.get_facecolor()) == saliency
    (knn_line,) = lines(drawn["ae_one__similarity_rate"], "method:deep_knn")
    knn_boxes = boxes(drawn["ae_two__similarity_rate__boxes"], "method:deep_knn")
    assert len(knn_boxes) == 4  # one per group
    assert {to_hex(box.get_facecolor()) for box in knn_boxes} == {to_hex(knn_line.get_color())}
    colours = [style["color"] for style in styles.values() if not style["baseline"]]
    assert len(set(colours)) == len(colours)
    # The random baselines, registered as random (whatever their id) and random_examples:
    for figure, gid in (
        ("ae_one__latent_shift", "method:rand"),
        ("ae_two__similarity_rate", "method:random_examples"),
    ):
        (line,) = lines(drawn[figure], gid)
        assert line.get_linestyle() == "--" and to_hex(line.get_color()) == to_hex("0.45")
    others = drawn["ae_one__latent_shift"].axes[0].get_lines()
    assert sum(to_hex(line.get_color()) == to_hex("0.45") for line in others) == 1
    assert boxes(drawn["ae_one__sparseness__boxes"], "method:rand")[0].get_hatch()


def test_similarity_rates_carry_the_chance_line_from_the_corpus_split(run):
    _, _, drawn, _ = run
    for figure in ("ae_one__similarity_rate", "ae_two__similarity_rate__boxes"):
        (line,) = lines(drawn[figure], "chance")
        assert line.get_ydata() == pytest.approx([CHANCE, CHANCE], abs=0.01)
        assert line.get_linestyle() == ":" and "Chance" in line.get_label()
    assert not lines(drawn["ae_one__latent_shift"], "chance")
    legend = drawn["ae_one__similarity_rate__boxes"].legends[0]
    assert any(text.get_text().startswith("Chance") for text in legend.get_texts())


def test_chance_rate_sources_whole_corpus_then_split_then_random_baseline():
    styles = figure_style.method_styles(["knn", "random_examples"], baselines=["random_examples"])

    def samples(groups: dict[str, float], method="knn", model="m"):
        rows = [(model, method, group, value) for group, value in groups.items()]
        return pd.DataFrame(rows, columns=["model", "method", "group", "value"]).assign(
            model_b="", method_b=""
        )

    whole = samples({"top 5%": 0.9, "top 100%": 0.25, "bottom 100%": 0.25})
    assert plots.chance_rates(whole, styles) == {"m": pytest.approx(0.25)}
    split = samples({"top 20%": 0.5, "bottom 80%": 0.0})  # 20% of 1 and 80% of 0
    assert plots.chance_rates(split, styles) == {"m": pytest.approx(0.1)}
    baseline = pd.concat(
        [samples({"top 5%": 0.9}), samples({"top 5%": 0.3, "bottom 5%": 0.1}, "random_examples")]
    )
    assert plots.chance_rates(baseline, styles) == {"m": pytest.approx(0.2)}
    assert plots.chance_rates(samples({"top 5%": 0.9}), styles) == {}


def test_styles_are_fixed_by_the_sorted_names_and_stay_apart_beyond_the_palette():
    names = [f"method_{i:02d}" for i in range(15)]
    styles = figure_style.method_styles(reversed(names), baselines=["method_03"])
    assert styles == figure_style.method_styles(names, baselines=["method_03"])
    others = [styles[name] for name in names if name != "method_03"]
    assert len({style["color"] for style in others}) == len(others)  # tab20 past 9 methods
    assert styles["method_03"]["linestyle"] == "--"
    assert all(style["linestyle"] not in ("--", ":") for style in others)


def test_display_names_are_words():
    assert plots.display_name("latent_shift") == "Latent shift"
    assert plots.display_name("similarity_rate") == "Similarity rate"
    assert plots.display_name("gradient_shap") == "Gradient SHAP"
    assert plots.display_name("beta") == "β"


def test_single_tables_plot_without_a_run_and_ids_stay_inside_the_folder(tmp_path):
    tables = records_to_tables(
        [r for r in run_records() if r["metric"] == "latent_shift" and r["model"] == "ae_one"]
    )
    curves = tables["curves"].assign(model="../outside")
    (pdf, png) = plots.plot_curves(curves, tmp_path)
    assert pdf.parent == png.parent == tmp_path and png.name == "-outside__latent_shift.png"
