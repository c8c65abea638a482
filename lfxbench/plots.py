"""Figures that say more than a table: one seaborn line plot per curve-producing metric."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lfxbench.storage import atomic_write_bytes


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
        buffer = io.BytesIO()
        grid.figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(grid.figure)
        path = figure_dir / f"{metric}.png"
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)
    return written
