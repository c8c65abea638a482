"""Paper-ready figures of a run: curves, per-example box plots, agreement heat maps, trends;
each a PDF and a 300-dpi PNG named by its ids (``<model>__<metric>.pdf``), none replacing
another. ``run_styles`` gives each method one look, the same in every figure of a run."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lfxbench.report.figure_style import (
    PAPER,
    Styles,
    display_name,
    method_styles,
    new_figure,
    run_styles,
    save_figure,
    styles_of,
)
from lfxbench.report.leaderboard import pair_order

_RATE_GROUP = re.compile(r"(top|bottom) (\d+)%")  # the groups of `similarity_rate`


def chance_rates(samples: pd.DataFrame, styles: Styles) -> dict[str, float]:
    """Per model, the similarity rate that a random ranking expects. The top 100% is the
    whole corpus: the share of it with the explained example's label, whatever the ranking
    (1 / number of classes on balanced labels); a top a% and a bottom (100 - a)% (any method)
    cover it too. Else the random example baseline's mean (every group) estimates it."""
    chances: dict[str, float] = {}
    if samples.empty:
        return chances
    rates = samples[samples["model_b"].eq("") & samples["group"].str.fullmatch(_RATE_GROUP)]
    for model, part in rates.groupby("model"):
        means = part.groupby("group")["value"].mean()
        for found in filter(None, map(_RATE_GROUP.fullmatch, means.index)):
            rest, share = f"bottom {100 - int(found[2])}%", int(found[2]) / 100
            if found[1] == "top" and (rest in means or share == 1):
                chances[model] = share * means[found[0]] + (1 - share) * means.get(rest, 0.0)
                break
        else:
            baseline = part["method"].map(lambda m: styles.get(m, {}).get("baseline", False))
            if part.loc[baseline.astype(bool), "value"].notna().any():
                chances[model] = float(part.loc[baseline.astype(bool), "value"].mean())
    return chances


def _chance_line(axis, chance: float):
    label = f"Chance (same label at random): {chance:.2f}"
    return axis.axhline(chance, color="black", ls=":", lw=1.2, zorder=1, label=label, gid="chance")


def plot_curves(curves: pd.DataFrame, figure_dir: Path, styles=None, chances=None) -> list[Path]:
    """``<model>__<metric>``: each method's mean curve over seeds (band: ± std), random
    baselines dashed grey, similarity rates with their chance (``chances`` per model, else
    from the curves: at the whole corpus, else the random baseline's)."""
    if curves.empty:
        return []
    styles, written = styles_of(styles, curves["method"]), []
    rate = curves["metric"].eq("similarity_rate") | curves["y_label"].eq("similarity rate")
    if chances is None:  # a curve is the top M's rate; at x = 1 that of the whole corpus
        top = curves[rate].assign(group=curves["x"].map("top {:.0%}".format), value=curves["y"])
        chances = chance_rates(top, styles)
    for (model, metric), part in curves.groupby(["model", "metric"], sort=False):
        figure, (axis,) = new_figure(4.2, 3.0)
        for (method, *partners), line in part.groupby(["method", "model_b", "method_b"]):
            style = styles.get(method) or method_styles([method])[method]
            stats = line.groupby("x")["y"].agg(["mean", "std"]).sort_index()
            label = " vs ".join([style["label"], *filter(None, partners)])
            axis.plot(
                stats.index, stats["mean"], color=style["color"], ls=style["linestyle"],
                marker=style["marker"], ms=style["markersize"], fillstyle="none", alpha=0.9,
                lw=style["linewidth"], zorder=style["zorder"], label=label, gid=f"method:{method}",
            )  # fmt: skip
            if line["seed"].nunique() > 1 and part["method"].nunique() <= 5:  # more: a blur
                low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
                axis.fill_between(stats.index, low, high, color=style["color"], alpha=0.12, lw=0)
        if rate[part.index].all() and model in chances:
            _chance_line(axis, chances[model])
        xlabel, ylabel = map(display_name, part[["x_label", "y_label"]].iloc[0])
        axis.set(xlabel=xlabel, ylabel=ylabel, title=f"{display_name(metric)}: {model}")
        handles = axis.get_legend_handles_labels()[0]
        written += save_figure(figure, figure_dir, (model, metric), handles)
    return written


def _boxes(axis, frame: pd.DataFrame, x: str, hue: str, order: list, styles, points=False):
    """Boxes of ``value``: per ``x`` (in ``order``) one per ``hue`` (in the styles' order),
    ``points`` drawn over them; the legend's handles."""
    handles, ticks, position = {}, [], 0.0
    jitter = np.random.default_rng(0)  # points spread the same way on every run
    values = {key: rows["value"].to_numpy(float) for key, rows in frame.groupby([x, hue])}
    for name in order:
        start = position
        for method in (m for m in styles if (name, m) in values):
            data, style, position = values[name, method], styles[method], position + 1
            data = data[np.isfinite(data)]
            if not len(data):
                continue
            box = axis.boxplot(
                [data], positions=[position], widths=0.75, patch_artist=True, manage_ticks=False,
                showfliers=not points, medianprops={"color": "black", "lw": 1.0},
                flierprops={"markersize": 1.5, "alpha": 0.5, "markeredgecolor": style["color"]},
            )["boxes"][0]  # fmt: skip
            box.set(facecolor=style["color"], alpha=0.55 if points else 0.8, edgecolor="0.2")
            box.set(gid=f"method:{method}", hatch="////" if style["baseline"] else None)
            if points:
                spread = position + jitter.uniform(-0.18, 0.18, len(data))
                axis.plot(spread, data, "o", ms=2.5, color=style["color"], mec="0.2", mew=0.3)
            look = {"facecolor": box.get_facecolor(), "hatch": box.get_hatch()}
            handles.setdefault(method, Patch(label=style["label"], edgecolor="0.2", **look))
        ticks.append((start + 1 + position) / 2)
        position += 0.8  # a gap between groups
    long = max(map(len, map(str, order))) > 3.5 * position / len(order)  # characters a box spans
    axis.set_xticks(ticks, order, rotation=30 if long else 0, ha="right" if long else "center")
    axis.set_xlim(0.2, position + 0.2)
    return list(handles.values())


def plot_samples(samples: pd.DataFrame, figure_dir: Path, styles=None, chances=None) -> list[Path]:
    """``<model>__<metric>__boxes``: per-example values, a box per group (e.g. top / bottom
    M) and method, similarity rates with their chance; agreements a box per pair, across
    models ``<metric>__models__boxes``, methods ``<model>__<metric>__<kind>_methods__boxes``."""
    if samples.empty:
        return []
    styles = styles_of(styles, set(samples["method"]) | set(samples["method_b"]))
    written, chances = [], chance_rates(samples, styles) if chances is None else chances
    # Per sample its figure's ids (tab-joined) and box group; of an agreement: the pair.
    single = samples["model_b"].eq("")
    models = ~single & samples["model"].ne(samples["model_b"])
    label = {name: style["label"] for name, style in styles.items()}
    kind = samples["method"].map({name: style["kind"] for name, style in styles.items()})
    keys = samples["model"] + "\t" + samples["metric"] + "\t" + kind + "_methods"
    keys = keys.where(~models, samples["metric"] + "\tmodels")
    keys = keys.where(~single, samples["model"] + "\t" + samples["metric"])
    pair = samples["method"].map(label)  # beside a box per other method (its colour)
    pair = pair.where(~models, samples["model"] + " vs " + samples["model_b"])
    samples = samples.assign(group=samples["group"].where(single, pair))
    for key, part in samples.groupby(keys, sort=False):
        ids = key.split("\t")
        model, metric = ("", ids[0]) if ids[1] == "models" else (ids[0], ids[1])
        order = list(dict.fromkeys(part["group"]))  # the metric's order, not A-Z
        across = f" across {ids[-1].replace('_', ' ')}" if len(ids) > 2 or not model else ""
        title = f"{display_name(metric)}{across}" + (f": {model}" if model else "")
        hue = "method_b" if ids[-1].endswith("_methods") else "method"
        figure, (axis,) = new_figure(max(3.6, 1.3 + 0.2 * part.groupby(["group", hue]).ngroups), 3)
        handles = _boxes(axis, part, "group", hue, order, styles)
        rates = bool(model) and all(_RATE_GROUP.fullmatch(name) for name in order)
        if rates and model in chances:
            handles.append(_chance_line(axis, chances[model]))
        xlabel = "Most (top) and least (bottom) important M of the corpus" if rates else ""
        xlabel = "Method compared with each other one (its colour)" if hue == "method_b" else xlabel
        axis.set(xlabel=xlabel, ylabel=display_name(metric), title=title)
        written += save_figure(figure, figure_dir, (*ids, "boxes"), handles)
    return written


def _heat_map(block: pd.DataFrame, first: str, second: str, label, title: str) -> Figure:
    names = pair_order(block[first], block[second])
    index = {name: i for i, name in enumerate(names)}
    means, stds = np.eye(len(names)), np.zeros((len(names), len(names)))
    for row in block.itertuples():
        i, j = index[getattr(row, first)], index[getattr(row, second)]
        means[i, j] = means[j, i] = row.mean
        stds[i, j] = stds[j, i] = row.std if row.n_seeds > 1 else 0.0
    figure, (axis,) = new_figure(0.62 * len(names) + 2.2, 0.62 * len(names) + 1.4)
    image = axis.imshow(means, cmap="RdBu_r", vmin=-1, vmax=1)
    with matplotlib.rc_context(PAPER):
        for (i, j), value in np.ndenumerate(means):
            text = f"{round(value, 2) + 0.0:.2f}" + (f"\n±{stds[i, j]:.2f}" if stds[i, j] else "")
            colour = "white" if abs(value) > 0.6 else "black"
            axis.text(j, i, text, ha="center", va="center", color=colour, fontsize=7)
        seeds = int(block["n_seeds"].max())
        label_of = f"Mean over {seeds} seed{'s' if seeds != 1 else ''}"
        figure.colorbar(image, ax=axis, shrink=0.8, label=label_of)
    axis.set_xticks(range(len(names)), map(label, names), rotation=35, ha="right")
    axis.set_yticks(range(len(names)), map(label, names))
    axis.spines[:].set_visible(False)
    figure.suptitle(title)
    return figure


def plot_pairs(board: pd.DataFrame, figure_dir: Path, styles: Styles | None = None) -> list[Path]:
    """Heat maps of the mean agreement over seeds: across models ``<metric>__<method>__models``,
    across methods one per kind of method ``<model>__<metric>__<kind>_methods``."""
    pairs, written = board[board["model_b"].ne("")], []
    across_models = pairs["model"].ne(pairs["model_b"])
    for (metric, method), block in pairs[across_models].groupby(["metric", "method"], sort=False):
        title = f"{display_name(metric)} across models: {display_name(method)}"
        figure = _heat_map(block, "model", "model_b", str, title)
        written += save_figure(figure, figure_dir, (metric, method, "models"))
    within = pairs[~across_models]
    styles = styles_of(styles, set(within["method"]) | set(within["method_b"]))
    within = within.assign(kind=within.get("method_kind", "feature"))
    for (model, metric, kind), block in within.groupby(["model", "metric", "kind"], sort=False):
        title = f"{display_name(metric)} across {kind} methods: {model}"
        figure = _heat_map(block, "method", "method_b", lambda n: styles[n]["label"], title)
        written += save_figure(figure, figure_dir, (model, metric, f"{kind}_methods"))
    return written


def plot_trend(results: pd.DataFrame, parameter: str, figure_dir: Path) -> list[Path]:
    """``<metric>__vs_<parameter>``: box plots of a metric over the parameter's values, a
    panel per method, a box per model family (zoo entry and objective), seeds as points."""
    single = results[results["model_b"].eq("")] if "model_b" in results else results
    if "model_params" not in single or single.empty:
        return []
    values = single["model_params"].map(lambda text: json.loads(text).get(parameter))
    data = single.assign(level=values)[values.notna()]
    data = data.assign(family=data["model_name"] + " / " + data["objective"].astype(str))
    families = method_styles(data["family"])
    styles, written = {name: style | {"label": name} for name, style in families.items()}, []
    for metric, part in data.groupby("metric", sort=False):
        levels = sorted(part["level"].unique())
        if len(levels) < 2:
            continue
        part = part.assign(level=part["level"].map("{:g}".format))
        methods = list(dict.fromkeys(part["method"]))
        cols, rows = min(3, len(methods)), math.ceil(len(methods) / 3)
        width = max(3.0, 0.9 + 0.35 * len(levels) * part["family"].nunique())
        figure, axes = new_figure(width * cols, 2.8 * rows, rows, cols)
        for axis, method in zip(axes, methods, strict=False):
            chosen = part[part["method"].eq(method)]
            order = [f"{level:g}" for level in levels]
            handles = _boxes(axis, chosen, "level", "family", order, styles, points=True)
            axis.set(title=display_name(method), xlabel=display_name(parameter))
        for axis in axes[len(methods) :]:
            axis.set_visible(False)
        axes[0].set_ylabel(display_name(metric))
        figure.suptitle(f"{display_name(metric)} against {display_name(parameter)}")
        ids, title = (metric, f"vs_{parameter}"), "Model / objective"
        written += save_figure(figure, figure_dir, ids, handles, title)
    return written


def plot_run(tables: Mapping[str, pd.DataFrame], board, figure_dir: Path, trends=()) -> list[Path]:
    """Every figure of a run (``records_to_tables``, its board, trend parameters), one style
    per method (``run_styles``) and one chance rate per model (``chance_rates``)."""
    styles = run_styles(tables["results"])
    chances = chance_rates(tables["samples"], styles)
    written = plot_curves(tables["curves"], figure_dir, styles, chances)
    written += plot_samples(tables["samples"], figure_dir, styles, chances)
    written += plot_pairs(board, figure_dir, styles)
    for parameter in trends:
        written += plot_trend(tables["results"], parameter, figure_dir)
    return written
