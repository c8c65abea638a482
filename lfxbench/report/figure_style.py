"""How a run's figures look and are saved: one colour, marker and line style per method
(the same in every figure of a run), words for ids, paper-sized fonts, and each figure as a
PDF and a 300-dpi PNG named by its ids."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from lfxbench.storage import atomic_write_bytes

FORMATS, DPI = ("pdf", "png"), 300
BASELINES = ("random", "random_examples")  # registered names of the random baselines
_GREYS = ("#949494", "#7f7f7f", "#c7c7c7")  # the baselines' colour is no other method's
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
# Dashed is the baselines' line, dotted the chance line. Three tiers, thick and solid below
# to thin and broken on top: coinciding curves still show each (open markers nest by size).
LINESTYLES = ("-", "-.", (0, (4, 1, 1, 1, 1, 1)))
LINEWIDTHS, MARKERSIZES = (2.4, 1.7, 1.2), (6.5, 5.0, 3.8)
# Sized to be read at a column's width; TrueType in the PDF: text an editor can change.
PAPER = {
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,
}
WORDS = {
    "shap": "SHAP",
    "knn": "kNN",
    "roar": "ROAR",
    "relax": "RELAX",
    "cocoa": "COCOA",
    "tracin": "TracIn",
    "simplex": "SimplEx",
    "deeplift": "DeepLift",
    "pearson": "Pearson",
    "spearman": "Spearman",
    "cam": "CAM",
    "lissa": "LiSSA",
    "quantus": "Quantus",
    "x": "×",
}
NAMES = {"u_relax": "U-RELAX", "top_k_intersection": "Top-k intersection", "beta": "β"}
LEGEND = {"loc": "outside right center", "frameon": False}  # centred: clear of the title
Styles = Mapping[str, dict[str, Any]]


def display_name(identifier: str) -> str:
    """Words for an id (metric and method classes have no display name): "Latent shift"."""
    words = " ".join(WORDS.get(w.lower(), w) for w in identifier.split("_") if w) or identifier
    return NAMES.get(identifier, words[:1].upper() + words[1:])


def method_styles(
    methods: Iterable[str], baselines: Iterable[str] = (), kinds: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Method -> ``color``, ``marker``, ``linestyle``, ``zorder``, ``label``, ``baseline``,
    ``kind``, dealt out in sorted order: the same methods always get the same styles."""
    import seaborn as sns

    names, baselines, kinds = sorted(set(methods)), set(baselines), kinds or {}
    others = [name for name in names if name not in baselines]
    palette = [c for c in sns.color_palette("colorblind").as_hex() if c not in _GREYS]
    if len(others) > len(palette):
        tab20 = map(matplotlib.colors.to_hex, matplotlib.colormaps["tab20"].colors)
        palette = [c for c in tab20 if c not in _GREYS]
    styles = {
        name: {
            "color": palette[i % len(palette)],
            "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % 3],
            "linewidth": LINEWIDTHS[i % 3],
            "markersize": MARKERSIZES[i % 3],
            "zorder": 3 + i % 3 * len(others) + i,
        }
        for i, name in enumerate(others)
    }
    for name in baselines & set(names):
        styles[name] = {
            "color": "0.45",
            "marker": "",
            "linestyle": "--",
            "linewidth": 1.4,
            "markersize": 0,
            "zorder": 2,
        }
    for name, style in styles.items():
        label = display_name(name) + (" (baseline)" if name in baselines else "")
        style.update(label=label, baseline=name in baselines, kind=kinds.get(name, "feature"))
    return {name: styles[name] for name in names}


def run_styles(results: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The styles of every method of a run's ``results`` table, built once for all figures."""
    methods = (set(results["method"]) | set(results.get("method_b", ()))) - {""}
    registered = results.get("method_name", results["method"])
    baselines = set(results.loc[registered.isin(BASELINES), "method"])
    kinds = results.get("method_kind", pd.Series("feature", index=results.index))
    return method_styles(methods, baselines, dict(zip(results["method"], kinds, strict=True)))


def styles_of(styles: Styles | None, methods: Iterable[str]) -> Styles:
    names = set(methods) - {""}  # a table alone: its ids stand for the registered names
    return styles if styles is not None else method_styles(names, names & set(BASELINES))


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1):
    # Not through pyplot: no global figure manager keeps it, nothing is left to close.
    with matplotlib.rc_context(PAPER):
        figure = Figure(figsize=(width, height), layout="constrained")
        return figure, figure.subplots(rows, cols, squeeze=False, sharey=True).ravel()


def save_figure(figure: Figure, figure_dir: Path, ids: tuple, handles=(), title=None) -> list[Path]:
    """The legend beside the axes, then ``<ids>.pdf`` and ``.png`` (300 dpi), atomically."""
    if handles:
        ncol = math.ceil(len(handles) / 12)
        longest = max(len(str(text)) for text in [title, *(h.get_label() for h in handles)])
        # Room for the legend beside the axes, not taken from them.
        figure.set_figwidth(figure.get_figwidth() + ncol * (0.065 * longest + 0.6))
        with matplotlib.rc_context(PAPER):
            figure.legend(handles=handles, ncol=ncol, title=title, **LEGEND)
    # Ids are already [A-Za-z0-9_.+-]; anything else (a path separator) must not reach a path.
    stem = "__".join(re.sub(r"[^A-Za-z0-9_.+-]", "-", i).strip(".") or "-" for i in ids)
    written = []
    for fmt in FORMATS:
        buffer = io.BytesIO()
        # No dates in the files: the same tables give byte-identical figures.
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        figure.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
        figure.set_layout_engine("none")  # laid out once: the second format keeps it
        written.append(Path(figure_dir) / f"{stem}.{fmt}")
        atomic_write_bytes(written[-1], buffer.getvalue())
    return written
