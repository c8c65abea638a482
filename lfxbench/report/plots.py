"""Figures that say more than a table: curves, per-example box plots, agreement heat maps."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lfxbench.storage import atomic_write_bytes


def _save(figure: plt.Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_curves(curves: pd.DataFrame, figure_dir: Path) -> list[Path]:
    """``<metric>.png``: mean curve per method (band: spread over seeds), a panel per model."""
    written = []
    for metric, part in curves.groupby("metric", sort=False):
        grid = sns.relplot(
            data=part,
            x="x",
            y="y",
            hue="method",
            style="method",
            col="model",
            kind="line",
            markers=True,
            dashes=False,
            errorbar="sd",
            col_wrap=min(3, part["model"].nunique()),
            height=3.2,
            aspect=1.2,
            facet_kws={"sharey": False},
        )
        grid.set_axis_labels(part["x_label"].iloc[0], part["y_label"].iloc[0])
        grid.figure.suptitle(metric, y=1.02)
        written.append(_save(grid.figure, figure_dir / f"{metric}.png"))
    return written


def plot_samples(samples: pd.DataFrame, figure_dir: Path) -> list[Path]:
    """``<metric>_boxes.png``: per-example values by group (e.g. top / bottom M) and method."""
    written = []
    for metric, part in samples.groupby("metric", sort=False):
        with warnings.catch_warnings():
            # seaborn 0.13 passes matplotlib 3.11 a deprecated `vert=`; not ours to fix.
            warnings.filterwarnings("ignore", message="vert: bool was deprecated")
            grid = sns.catplot(
                data=part,
                x="group",
                order=list(dict.fromkeys(part["group"])),  # the metric's order, not A-Z
                y="value",
                hue="method",
                col="model",
                kind="box",
                col_wrap=min(2, part["model"].nunique()),
                height=3.4,
                aspect=1.8,
                fliersize=1,
            )
        grid.set_xticklabels(rotation=45, ha="right")
        grid.set_axis_labels("", metric)
        written.append(_save(grid.figure, figure_dir / f"{metric}_boxes.png"))
    return written


def plot_pairs(board: pd.DataFrame, figure_dir: Path) -> list[Path]:
    """``<metric>_<method>_heatmap.png``: mean agreement between every pair (over seeds)."""
    written = []
    pairs = board[board["model_b"].ne("")]
    for (metric, method), block in pairs.groupby(["metric", "method"], sort=False):
        across_models = block["model"].ne(block["model_b"])
        if across_models.any():
            block, first, second = block[across_models], "model", "model_b"
        else:
            first, second = "method", "method_b"
        names = list(dict.fromkeys([*block[first], *block[second]]))
        matrix = pd.DataFrame(1.0, index=names, columns=names)
        for record in block.itertuples():
            a, b = getattr(record, first), getattr(record, second)
            matrix.loc[a, b] = matrix.loc[b, a] = record.mean
        figure, axis = plt.subplots(figsize=(1.2 * len(names) + 2, 1.0 * len(names) + 1.5))
        sns.heatmap(matrix, annot=True, fmt=".2f", vmin=-1, vmax=1, cmap="vlag", ax=axis)
        axis.set_title(f"{metric}: {method}" if first == "model" else metric)
        name = method if first == "model" else "methods"
        written.append(_save(figure, figure_dir / f"{metric}_{name}_heatmap.png"))
    return written


def plot_trend(results: pd.DataFrame, parameter: str, figure_dir: Path) -> list[Path]:
    """``<metric>_vs_<parameter>.png``: box plots of each metric over the parameter's values
    (every model and seed a point), one colour per model family and objective."""
    import json

    single = results[results["model_b"] == ""]
    if "model_params" not in single:
        return []
    values = single["model_params"].map(lambda text: json.loads(text).get(parameter))
    data = single.assign(**{parameter: values})[values.notna()]
    data = data.assign(family=data["model_name"] + " / " + data["objective"].astype(str))
    written = []
    for metric, part in data.groupby("metric", sort=False):
        if part[parameter].nunique() < 2:
            continue
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="vert: bool was deprecated")
            grid = sns.catplot(
                data=part,
                x=parameter,
                y="value",
                hue="family",
                col="method",
                kind="box",
                height=3.2,
                aspect=1.2,
            )
        grid.set_axis_labels(parameter, metric)
        written.append(_save(grid.figure, figure_dir / f"{metric}_vs_{parameter}.png"))
    return written
