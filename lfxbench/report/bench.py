"""``lfxbench bench RUN_DIR``: where a run's time went, as throughput per stage.

Reads the tidy results (every stage is timed in the run itself, CUDA synchronised) and
reports training per model, attribution per model and method (examples per second, peak
device memory on CUDA) and metric time per metric.
"""

from __future__ import annotations

import pandas as pd

from lfxbench.report.results import RESULT_COLUMNS

# The timings it reads, which every record of `lfxbench run` carries.
BENCH_COLUMNS = (
    *RESULT_COLUMNS,
    "suite",
    "device_name",
    "training_seconds",
    "training_epochs",
    "attribution_seconds",
    "n_examples",
    "metric_seconds",
)


def throughput_report(results: pd.DataFrame) -> str:
    single = results[results["model_b"] == ""]
    device = ", ".join(sorted(results["device_name"].dropna().astype(str).unique()))
    parts = [f"# Throughput of {results['suite'].iloc[0]} on {device}\n"]

    per_model_seed = single.drop_duplicates(["model", "seed"])
    training = per_model_seed.groupby("model").agg(
        seeds=("seed", "nunique"),
        seconds=("training_seconds", "mean"),
        epochs=("training_epochs", "mean"),
    )
    training["epochs/s"] = training["epochs"] / training["seconds"]
    parts.append("## Training (mean per seed)\n\n" + training.to_markdown(floatfmt=".3g") + "\n")

    per_explanation = single.drop_duplicates(["model", "method", "seed"])
    columns = {"seconds": ("attribution_seconds", "mean"), "examples": ("n_examples", "mean")}
    if "attribution_peak_memory_mb" in per_explanation:
        columns["peak MiB"] = ("attribution_peak_memory_mb", "max")
    attribution = per_explanation.groupby(["model", "method"]).agg(**columns)
    attribution["examples/s"] = attribution["examples"] / attribution["seconds"]
    if "peak MiB" in attribution and attribution["peak MiB"].isna().all():
        attribution = attribution.drop(columns="peak MiB")  # only CUDA reports it
    parts.append(
        "## Attribution (mean per seed; computed once, shared by every metric)\n\n"
        + attribution.reset_index().to_markdown(index=False, floatfmt=".4g")
        + "\n"
    )

    metrics = results.groupby("metric").agg(
        cells=("value", "size"),
        seconds_per_cell=("metric_seconds", "mean"),
        total_seconds=("metric_seconds", "sum"),
    )
    parts.append("## Metrics\n\n" + metrics.to_markdown(floatfmt=".3g") + "\n")

    stages = {
        "training": per_model_seed["training_seconds"].sum(),
        "attribution": per_explanation["attribution_seconds"].sum(),
        "metrics": results["metric_seconds"].sum(),
    }
    total = sum(stages.values())
    lines = [
        f"- {name}: {seconds:.1f} s ({seconds / total:.0%})" for name, seconds in stages.items()
    ]
    parts.append("## Time by stage\n\n" + "\n".join(lines) + "\n")
    return "\n".join(parts)
