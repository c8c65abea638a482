"""The GPU check: what a lent accelerator should measure, in one run, into one JSON file.

    benchmarks/gpu.sh [--device cuda] [--output gpu_check.json] [--quick]

1. ``examples``: ``suites/examples_1000.yaml`` (the paper's 1,000 × 1,000 example-importance
   workload) on the device with LiSSA added at the reference code's settings (too slow for
   that suite on a CPU): each method's attribution time, its similarity rate at 5 %, and
   the Spearman agreement of LiSSA and the Krylov solver.
2. ``precision``: ``suites/paper_smoke.yaml`` on the device twice, as written (bfloat16
   autocast in training wherever a recipe allows it) and with every recipe in float32,
   two seeds each: every (model, method, metric) mean, the difference between the two, and
   the seed spread it should stay within.
3. ``side_by_side``: 20 seeds of the MNIST autoencoder trained one after another and as one
   stacked model (``lfxbench.execution.ensemble``), interleaved, the time of each and the largest
   weight difference between the two.

``--quick`` shrinks every workload (fewer examples, epochs, seeds and models) so that the
script can be checked end to end on a CPU in a few minutes; its numbers are then only a
proof that it runs. Runs use a fresh cache under the output's folder, so every time is a
cold time.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

REPOSITORY = Path(__file__).resolve().parent.parent
SUITES = REPOSITORY / "suites"


def run_suite(suite: dict[str, Any], work: Path, device: str) -> pd.DataFrame:
    """``lfxbench run`` on a suite given as a dict; its tidy results."""
    path = work / f"{suite['name']}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    command = [
        sys.executable, "-m", "lfxbench.cli", "run", str(path), "--out", str(work / "runs"),
        "--cache-dir", str(work / "cache"), "--device", device, "--quiet",
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPOSITORY)
    return pd.read_csv(work / "runs" / suite["name"] / "results.csv")


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((SUITES / f"{name}.yaml").read_text())


LISSA = {
    "id": "influence_lissa",
    "name": "influence_functions",
    "params": {"solver": "lissa", "recursion_depth": 100, "hessian_batch_size": 300,
               "damping": 1e-3, "scale": 1e3},
}  # fmt: skip


def examples_check(work: Path, device: str, quick: bool) -> dict[str, Any]:
    suite = load("examples_1000")
    suite["methods"].append(copy.deepcopy(LISSA))
    if quick:
        suite["name"] = "examples_quick"
        suite["examples"] = {"n_corpus": 50, "n_test": 100}
        suite["models"][0]["recipe"]["epochs"] = 2
        for method in suite["methods"]:
            if isinstance(method, dict) and "recursion_depth" in method.get("params", {}):
                method["params"]["recursion_depth"] = 5  # both solvers: one polynomial
    results = run_suite(suite, work, device)
    cells = results[results["method_b"].isna()]
    similarity = cells[cells["metric"] == "similarity_rate"].set_index("method")
    methods = {
        method: {
            "attribution_seconds": float(row["attribution_seconds"]),
            "similarity_rate_top_5%": float(row["value"]),
        }
        for method, row in similarity.iterrows()
    }
    pairs = results[results["metric"] == "spearman_agreement"]
    solvers = pairs[
        pairs[["method", "method_b"]].isin(["influence_krylov", "influence_lissa"]).all(axis=1)
    ]
    return {
        "suite": suite["name"],
        "training_seconds": float(cells["training_seconds"].iloc[0]),
        "methods": methods,
        "all_but_lissa_seconds": sum(
            m["attribution_seconds"] for name, m in methods.items() if name != "influence_lissa"
        ),
        "solver_spearman_per_example": float(solvers["value"].iloc[0]),
    }


def precision_check(work: Path, device: str, quick: bool) -> dict[str, Any]:
    base = load("paper_smoke")
    base["seeds"] = [0, 1]
    if quick:
        base["models"] = [m for m in base["models"] if m["id"] == "mnist_dae"]
        base["models"][0]["recipe"]["epochs"] = 2
        base["examples"] = {"n_corpus": 100, "n_test": 50}
        base["methods"] = ["saliency", "deep_knn", "tracin"]
        for metric in base["metrics"]:
            metric["models"] = ["mnist_dae"]
    variants = {}
    for precision in ("bf16", "fp32"):
        suite = copy.deepcopy(base)
        suite["name"] = f"paper_smoke_{precision}"
        for model in suite["models"]:
            if precision == "fp32":
                model["recipe"]["mixed_precision"] = False
        variants[precision] = run_suite(suite, work, device)
    key = ["model", "method", "metric"]
    tables = {
        name: frame[frame["method_b"].isna()].groupby(key)["value"].agg(["mean", "std"])
        for name, frame in variants.items()
    }
    joined = tables["bf16"].join(tables["fp32"], lsuffix="_bf16", rsuffix="_fp32")
    joined["difference"] = joined["mean_bf16"] - joined["mean_fp32"]
    joined["seed_spread"] = joined[["std_bf16", "std_fp32"]].max(axis=1)
    joined["within_spread"] = joined["difference"].abs() <= 2 * joined["seed_spread"]
    training = {
        name: float(frame.drop_duplicates(["model", "seed"])["training_seconds"].sum())
        for name, frame in variants.items()
    }
    rows = joined.reset_index().to_dict(orient="records")
    return {
        "training_seconds": training,
        "cells": len(rows),
        "within_two_seed_spreads": int(joined["within_spread"].sum()),
        "rows": rows,
    }


def side_by_side_check(device: str, quick: bool) -> dict[str, Any]:
    from lfxbench.datasets.mnist import mnist_5k
    from lfxbench.execution.ensemble import train_side_by_side
    from lfxbench.execution.training import train_model
    from lfxbench.models.mnist_autoencoder import MnistAutoencoder
    from lfxbench.recipe import Recipe

    n_models, epochs, n_images = (4, 1, 500) if quick else (20, 3, 4000)
    data = mnist_5k(n_train=n_images, n_test=10)
    recipe = Recipe(objective="denoising", noise_std=0.3, epochs=epochs, batch_size=200)
    seeds = list(range(n_models))
    torch_device = torch.device(device)

    def synchronised() -> float:
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)
        return time.perf_counter()

    def sequential() -> list[MnistAutoencoder]:
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = MnistAutoencoder(latent_dim=4)
            train_model(model, data.train_inputs, data.train_labels, recipe, seed, torch_device)
            models.append(model)
        return models

    def stacked() -> list[MnistAutoencoder]:
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            models.append(MnistAutoencoder(latent_dim=4))
        train_side_by_side(
            models, data.train_inputs, data.train_labels, recipe, seeds, torch_device
        )
        return models

    times: dict[str, list[float]] = {"sequential": [], "side_by_side": []}
    trained: dict[str, list[MnistAutoencoder]] = {}
    for _ in range(2):  # interleaved, A/B twice: the first pair also warms the device up
        for name, train in (("sequential", sequential), ("side_by_side", stacked)):
            start = synchronised()
            trained[name] = train()
            times[name].append(synchronised() - start)
    difference = max(
        (a - b).abs().max().item()
        for first, second in zip(trained["sequential"], trained["side_by_side"], strict=True)
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
        if a.is_floating_point()
    )
    return {
        "models": n_models,
        "epochs": epochs,
        "images": n_images,
        "seconds": times,
        "speedup_min": min(times["sequential"]) / min(times["side_by_side"]),
        "max_weight_difference": difference,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--output", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--quick", action="store_true", help="small workloads (CPU check)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here: pass --device cpu (with --quick on a CPU)")
    report: dict[str, Any] = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "quick": args.quick,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_", dir=args.output.parent) as folder:
        work = Path(folder)
        checks = (
            ("examples", lambda: examples_check(work, args.device, args.quick)),
            ("precision", lambda: precision_check(work, args.device, args.quick)),
            ("side_by_side", lambda: side_by_side_check(args.device, args.quick)),
        )
        for name, check in checks:
            start = time.perf_counter()
            report[name] = check()
            report[name]["wall_seconds"] = time.perf_counter() - start
            # Written after every check: a run cut short keeps what it measured.
            partial = args.output.with_suffix(".partial")
            partial.write_text(json.dumps(report, indent=2, default=float))
            partial.replace(args.output)
    print(
        json.dumps({k: v for k, v in report.items() if k != "precision"}, indent=2, default=float)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
